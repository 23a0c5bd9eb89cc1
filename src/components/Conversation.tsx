import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import React, { useLayoutEffect, useRef } from 'react';

import { IConversationState, ITurn, ITurnUsage, TurnItem } from '../events';
import { Markdown } from './Markdown';
import { ToolCard } from './ToolCard';

export interface IConversationProps {
  conversation: IConversationState;
  rendermime: IRenderMimeRegistry;
  showReasoning: boolean;
  running: boolean;
}

export function formatCost(cost: number | null | undefined): string {
  if (cost === null || cost === undefined) {
    return 'cost unknown';
  }
  return cost < 0.01 && cost > 0 ? `$${cost.toFixed(4)}` : `$${cost.toFixed(2)}`;
}

function UsageLine(props: { usage: ITurnUsage }): JSX.Element {
  const { usage } = props;
  const parts = [
    `${usage.inputTokens.toLocaleString()} in`,
    `${usage.outputTokens.toLocaleString()} out`
  ];
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

function Item(props: { item: TurnItem } & Omit<IConversationProps, 'conversation' | 'running'>): JSX.Element | null {
  const { item, rendermime, showReasoning } = props;
  switch (item.kind) {
    case 'user':
      return <div className="jp-IDEAgent-user">{item.text}</div>;
    case 'text':
      return (
        <div className="jp-IDEAgent-assistant">
          <Markdown text={item.text} rendermime={rendermime} />
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
      return <ToolCard item={item} />;
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

function Turn(props: { turn: ITurn; last: boolean } & Omit<IConversationProps, 'conversation'>): JSX.Element {
  const { turn, last, running, ...rest } = props;
  return (
    <div className="jp-IDEAgent-turn" data-turn-id={turn.id}>
      {turn.items.map(item => (
        <Item key={`${item.kind}-${item.seq}`} item={item} {...rest} />
      ))}
      {last && running && turn.done === undefined && (
        <div className="jp-IDEAgent-working" aria-live="polite">
          <span className="jp-IDEAgent-dot" />
          Working…
        </div>
      )}
      {turn.done && DONE_NOTE[turn.done] && <div className="jp-IDEAgent-doneNote">{DONE_NOTE[turn.done]}</div>}
      {turn.usage && <UsageLine usage={turn.usage} />}
    </div>
  );
}

/** The scrolling list of turns; sticks to the bottom unless the user scrolled up. */
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

  return (
    <div className="jp-IDEAgent-conversation" ref={scroller} onScroll={onScroll}>
      {conversation.turns.length === 0 ? (
        <div className="jp-IDEAgent-empty">
          Ask the agent to explore data, edit and run notebooks, or start long-running scripts.
        </div>
      ) : (
        conversation.turns.map((turn, i) => (
          <Turn key={turn.id} turn={turn} last={i === conversation.turns.length - 1} {...props} />
        ))
      )}
    </div>
  );
}
