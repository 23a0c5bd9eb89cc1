import React from 'react';

import { IConsultation, IVerdict, isFinal, progress } from '../ensemble';
import { formatCost, formatDuration, formatTokens } from '../format';
import { Markdown } from './Markdown';
import { MemberCard } from './MemberCard';

function List(props: { title: string; items: string[]; className: string }): JSX.Element | null {
  if (!props.items.length) {
    return null;
  }
  return (
    <div className={`jp-IDEAgent-verdictList ${props.className}`}>
      <div className="jp-IDEAgent-verdictListTitle">{props.title}</div>
      <ul>
        {props.items.map((item, i) => (
          <li key={i}>{item}</li>
        ))}
      </ul>
    </div>
  );
}

function Verdict(props: { verdict: IVerdict; answered: number; total: number }): JSX.Element {
  const { verdict, answered, total } = props;
  const facts = [
    `${answered}/${total} answered`,
    formatCost(verdict.costUsd),
    verdict.tokens ? `${formatTokens(verdict.tokens)} tokens` : '',
    formatDuration(verdict.wallTimeS)
  ].filter(Boolean);
  return (
    <div className={`jp-IDEAgent-verdict jp-mod-${verdict.status}`}>
      <div className="jp-IDEAgent-verdictHeader">
        <span className="jp-IDEAgent-verdictTitle">Verdict</span>
        {verdict.status !== 'ok' && <span className="jp-IDEAgent-verdictStatus">{verdict.status}</span>}
        <span className="jp-IDEAgent-spacer" />
        <span className="jp-IDEAgent-verdictFacts">{facts.join(' · ')}</span>
      </div>
      {verdict.note && <div className="jp-IDEAgent-verdictNote">{verdict.note}</div>}
      {verdict.error && <div className="jp-IDEAgent-verdictError">{verdict.error}</div>}
      {verdict.plan && (
        <div className="jp-IDEAgent-verdictPlan">
          <div className="jp-IDEAgent-verdictListTitle">{verdict.status === 'degraded' ? "The members' answers" : 'Plan'}</div>
          <Markdown text={verdict.plan} />
        </div>
      )}
      <List title="Agreements" items={verdict.agreements} className="jp-mod-agreements" />
      <List title="Disagreements" items={verdict.disagreements} className="jp-mod-disagreements" />
      {verdict.missing.length > 0 && (
        <div className="jp-IDEAgent-verdictMissing">
          <span className="jp-IDEAgent-verdictListTitle">Missing: </span>
          {verdict.missing.map((m, i) => (
            <span key={m.name}>
              {i > 0 && '; '}
              <strong>{m.name}</strong>
              {m.reason ? ` (${m.reason})` : ''}
            </span>
          ))}
        </div>
      )}
      {verdict.synthesizerModel && (
        <div className="jp-IDEAgent-verdictBy">Synthesized by {verdict.synthesizerModel}</div>
      )}
    </div>
  );
}

/** Where the consultation stands, shown above the members until the verdict replaces it. */
function Progress(props: { consultation: IConsultation }): JSX.Element {
  const c = props.consultation;
  const { done, total } = progress(c);
  let label: string;
  if (c.ended === 'cancelled') {
    label = 'Stopped before the verdict.';
  } else if (c.ended === 'error') {
    label = 'Ended without a verdict.';
  } else if (c.synthesizer && !isFinal(c.synthesizer.phase)) {
    label = `Synthesizing the answers${c.synthesizer.model ? ` with ${c.synthesizer.model}` : ''}…`;
  } else {
    label = total ? `Consulting ${total} models: ${done}/${total} done…` : 'Starting the consultation…';
  }
  return (
    <div className={`jp-IDEAgent-ensembleProgress${c.ended ? ' jp-mod-ended' : ''}`} aria-live="polite">
      {!c.ended && <span className="jp-IDEAgent-dot" />}
      {label}
    </div>
  );
}

/**
 * One consultation: the verdict on top once it is in (plan, agreements,
 * disagreements, missing members, cost), and one card per member with its
 * live state. `direct`: asked from the sidebar, so it shows its question.
 */
export function EnsembleView(props: { consultation: IConsultation; showReasoning: boolean; direct?: boolean }): JSX.Element {
  const { consultation: c, showReasoning, direct } = props;
  const answered = c.members.filter(m => m.phase === 'finished').length;
  return (
    <div className="jp-IDEAgent-ensemble" data-consultation-id={c.id}>
      {direct && (
        <div className="jp-IDEAgent-ensembleQuestion">
          <span className="jp-IDEAgent-ensembleBadge">Ensemble</span>
          {c.question ?? 'Direct consultation'}
        </div>
      )}
      {c.verdict ? (
        <Verdict verdict={c.verdict} answered={answered} total={c.members.length} />
      ) : (
        <Progress consultation={c} />
      )}
      <div className="jp-IDEAgent-members">
        {c.members.map(member => (
          <MemberCard key={member.name} member={member} showReasoning={showReasoning} settled={c.verdict !== null} />
        ))}
      </div>
    </div>
  );
}
