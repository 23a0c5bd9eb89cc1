import React, { useLayoutEffect, useRef } from 'react';

import { summarizeContext } from '../context';
import { IConversationState, ITurn, ITurnUsage, TurnItem } from '../events';
import { formatCost, formatTokens } from '../format';
import { EnsembleView } from './Ensemble';
import { Markdown } from './Markdown';
import { AttachmentChip } from './Mentions';
import { ToolCard } from './ToolCard';

export interface IConversationProps {
  conversation: IConversationState;
  showReasoning: boolean;
  running: boolean;
  approvalsSent: Readonly<Record<string, 'run' | 'skip'>>;
  onApprove: (callId: string, decision: 'run' | 'skip') => void;
}

type ItemProps = Omit<IConversationProps, 'running'>;

function UsageLine(props: { usage: ITurnUsage }): JSX.Element {
  const { usage } = props;
  const parts = [`${usage.inputTokens.toLocaleString()} in`, `${usage.outputTokens.toLocaleString()} out`];
  if (usage.reasoningTokens) {
    parts.push(`${usage.reasoningTokens.toLocaleString()} reasoning`);
  }
  if (usage.cachedTokens) {
    parts.push(`${usage.cachedTokens.toLocaleString()} cached`);
  }
  return (
    <div className="jp-IDEAgent-usage" title={usage.model ?? undefined}>
      {parts.join(' · ')} · {formatCost(usage.costUsd)}
      {usage.calls > 1 ? ` · ${usage.calls} model calls` : ''}
    </div>
  );
}

const DONE_NOTE: Record<string, string> = {
  cancelled: 'Stopped.',
  error: 'The turn ended with an error.',
  max_steps: 'Stopped after the maximum number of steps.'
};

function Item(props: { item: TurnItem } & ItemProps): JSX.Element | null {
  const { item, conversation, showReasoning, approvalsSent, onApprove } = props;
  switch (item.kind) {
    case 'user': {
      const chip = summarizeContext(item.context);
      return (
        <div className="jp-IDEAgent-user">
          {chip && (
            <div className="jp-IDEAgent-contextChip jp-mod-sent" title="Context sent with this prompt">
              {chip}
            </div>
          )}
          {item.attachments.length > 0 && (
            <div className="jp-IDEAgent-attachRow jp-mod-sent">
              {item.attachments.map(a => (
                <AttachmentChip key={`${a.type}:${a.path}:${a.cell_ids?.join(',') ?? ''}`} attachment={a} />
              ))}
            </div>
          )}
          {item.text}
        </div>
      );
    }
    case 'text':
      return (
        <div className="jp-IDEAgent-assistant">
          <Markdown text={item.text} />
        </div>
      );
    case 'reasoning':
      return showReasoning ? (
        <details className="jp-IDEAgent-reasoning">
          <summary>Reasoning</summary>
          <div className="jp-IDEAgent-reasoningText">{item.text}</div>
        </details>
      ) : null;
    case 'tool':
      return (
        <ToolCard
          item={item}
          consultation={item.consultationId ? conversation.consultations[item.consultationId] : undefined}
          sentDecision={approvalsSent[item.callId]}
          onApprove={onApprove}
          showReasoning={showReasoning}
        />
      );
    case 'ensemble': {
      const c = conversation.consultations[item.consultationId];
      return c ? <EnsembleView consultation={c} showReasoning={showReasoning} direct={c.turnId === null} /> : null;
    }
    case 'compaction':
      return (
        <div className="jp-IDEAgent-note">
          Earlier messages were summarized to save context
          {item.tokensBefore !== null && item.tokensAfter !== null
            ? ` (${formatTokens(item.tokensBefore)} → ${formatTokens(item.tokensAfter)} tokens)`
            : ''}
          .
        </div>
      );
    case 'error':
      return (
        <div className="jp-IDEAgent-error" role="alert">
          <strong>Error{item.provider ? ` from ${item.provider}` : ''}</strong>
          {item.errorKind ? <span className="jp-IDEAgent-errorKind"> ({item.errorKind})</span> : null}: {item.message}
          {item.retryable ? <span className="jp-IDEAgent-errorRetry"> Retryable.</span> : null}
        </div>
      );
    case 'queued':
      return <div className="jp-IDEAgent-queued">Queued: {item.text}</div>;
    default:
      return null;
  }
}

function Turn(props: { turn: ITurn; last: boolean } & IConversationProps): JSX.Element {
  const { turn, last, running, ...rest } = props;
  const agentTurn = turn.kind === 'turn';
  return (
    <div className={`jp-IDEAgent-turn${agentTurn ? '' : ' jp-mod-consultation'}`} data-turn-id={turn.id}>
      {turn.items.map(item => (
        <Item key={`${item.kind}-${item.seq}`} item={item} {...rest} />
      ))}
      {agentTurn && last && running && turn.done === undefined && (
        <div className="jp-IDEAgent-working" aria-live="polite">
          <span className="jp-IDEAgent-dot" />
          {turn.items.some(i => i.kind === 'tool' && i.approval === 'pending')
            ? 'Waiting for you: Run or Skip.'
            : 'Working…'}
        </div>
      )}
      {turn.done && DONE_NOTE[turn.done] && <div className="jp-IDEAgent-doneNote">{DONE_NOTE[turn.done]}</div>}
      {turn.usage && <UsageLine usage={turn.usage} />}
    </div>
  );
}

/** The scrolling list of turns and consultations; sticks to the bottom unless the user scrolled up. */
export function Conversation(props: IConversationProps): JSX.Element {
  const { conversation } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  useLayoutEffect(() => {
    const node = scroller.current;
    if (node && stick.current) {
      node.scrollTop = node.scrollHeight;
    }
  });

  const onScroll = (): void => {
    const node = scroller.current;
    if (node) {
      stick.current = node.scrollHeight - node.scrollTop - node.clientHeight < 40;
    }
  };

  let lastAgent = -1;
  conversation.turns.forEach((t, i) => {
    if (t.kind === 'turn') {
      lastAgent = i;
    }
  });

  return (
    <div className="jp-IDEAgent-conversation" ref={scroller} onScroll={onScroll}>
      {conversation.turns.length === 0 ? (
        <div className="jp-IDEAgent-empty">
          Ask the agent to explore data, edit and run notebooks, or start long-running scripts. Right-click a
          notebook cell to ask about it or to explain or fix its error.
        </div>
      ) : (
        conversation.turns.map((turn, i) => <Turn key={turn.id} turn={turn} last={i === lastAgent} {...props} />)
      )}
    </div>
  );
}
