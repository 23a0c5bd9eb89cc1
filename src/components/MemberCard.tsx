import React from 'react';

import { IMember, MemberPhase } from '../ensemble';
import { formatCost, formatDuration, formatTokens } from '../format';

const PHASE_LABEL: Record<MemberPhase, string> = {
  started: 'waiting',
  thinking: 'thinking',
  answering: 'answering',
  finished: 'done',
  failed: 'failed',
  stopped: 'stopped'
};

/** The last characters of a long streaming answer (the card stays small while it grows). */
const LIVE_TAIL = 600;

function usageLine(member: IMember): string {
  const parts: string[] = [];
  if (member.usage && member.usage.inputTokens + member.usage.outputTokens > 0) {
    parts.push(`${formatTokens(member.usage.inputTokens)} in`, `${formatTokens(member.usage.outputTokens)} out`);
    if (member.usage.reasoningTokens) {
      parts.push(`${formatTokens(member.usage.reasoningTokens)} reasoning`);
    }
  }
  if (member.phase === 'finished' || (member.costUsd !== null && member.costUsd > 0)) {
    parts.push(formatCost(member.costUsd));
  }
  if (member.wallTimeS !== null) {
    parts.push(formatDuration(member.wallTimeS));
  }
  return parts.join(' · ');
}

/**
 * One ensemble member: live state (waiting, thinking with its reasoning
 * collapsed, answering with the streamed text), then done with tokens and
 * cost, or failed with the reason. `settled`: the verdict is in, so the answer
 * folds away under the verdict.
 */
export function MemberCard(props: { member: IMember; showReasoning: boolean; settled: boolean }): JSX.Element {
  const { member, showReasoning, settled } = props;
  const live = member.phase === 'started' || member.phase === 'thinking' || member.phase === 'answering';
  const text = member.text;
  const usage = usageLine(member);
  return (
    <div className={`jp-IDEAgent-member jp-mod-${member.phase}`} data-member={member.name}>
      <div className="jp-IDEAgent-memberHeader">
        <span className="jp-IDEAgent-memberName">{member.name}</span>
        {member.model && (
          <span className="jp-IDEAgent-memberModel" title={member.model}>
            {member.model.replace(/^[^:]+:/, '')}
          </span>
        )}
        <span className="jp-IDEAgent-spacer" />
        <span className="jp-IDEAgent-memberState" aria-live="polite">
          {live && <span className="jp-IDEAgent-dot" />}
          {PHASE_LABEL[member.phase]}
        </span>
      </div>
      {member.reason && <div className="jp-IDEAgent-memberReason">{member.reason}</div>}
      {showReasoning && member.reasoning && (
        <details className="jp-IDEAgent-reasoning jp-IDEAgent-memberReasoning">
          <summary>Reasoning</summary>
          <div className="jp-IDEAgent-reasoningText">{member.reasoning}</div>
        </details>
      )}
      {text &&
        (settled || !live ? (
          <details className="jp-IDEAgent-memberAnswer" open={!settled && member.phase !== 'finished'}>
            <summary>{member.phase === 'finished' ? 'Answer' : 'Partial answer'}</summary>
            <div className="jp-IDEAgent-memberText">{text}</div>
          </details>
        ) : (
          <div className="jp-IDEAgent-memberText jp-mod-live">
            {text.length > LIVE_TAIL ? `…${text.slice(-LIVE_TAIL)}` : text}
          </div>
        ))}
      {usage && <div className="jp-IDEAgent-memberUsage">{usage}</div>}
    </div>
  );
}
