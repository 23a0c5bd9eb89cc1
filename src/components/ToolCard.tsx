import React from 'react';

import { IConsultation } from '../ensemble';
import { IToolItem } from '../events';
import { ApprovalOutcome, ApprovalPrompt } from './Approval';
import { EnsembleView } from './Ensemble';

const PREVIEW_CHARS = 1200;
const PREVIEW_LINES = 16;

function asText(value: unknown): string {
  if (value === undefined || value === null) {
    return '';
  }
  if (typeof value === 'string') {
    return value;
  }
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** A one-line summary of the arguments, e.g. `path="a.ipynb", operation="run"`. */
function summarize(args: unknown): string {
  if (!args || typeof args !== 'object' || Array.isArray(args)) {
    return asText(args).replace(/\s+/g, ' ');
  }
  return Object.entries(args as Record<string, unknown>)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? JSON.stringify(value) : asText(value)}`)
    .join(', ')
    .replace(/\s+/g, ' ');
}

function preview(text: string): { head: string; truncated: boolean } {
  let head = text;
  const lines = head.split('\n');
  if (lines.length > PREVIEW_LINES) {
    head = lines.slice(0, PREVIEW_LINES).join('\n');
  }
  if (head.length > PREVIEW_CHARS) {
    head = head.slice(0, PREVIEW_CHARS);
  }
  return { head, truncated: head.length < text.length };
}

function Result(props: { output: string; collapsed: boolean }): JSX.Element {
  const { output, collapsed } = props;
  if (collapsed) {
    return (
      <details className="jp-IDEAgent-toolResult">
        <summary>Result as the agent read it ({output.length.toLocaleString()} characters)</summary>
        <pre>{output}</pre>
      </details>
    );
  }
  const { head, truncated } = preview(output);
  return (
    <div className="jp-IDEAgent-toolResult">
      <pre>{head}</pre>
      {truncated && (
        <details>
          <summary>Full result ({output.length.toLocaleString()} characters)</summary>
          <pre>{output}</pre>
        </details>
      )}
    </div>
  );
}

export interface IToolCardProps {
  item: IToolItem;
  /** The consultation a ConsultEnsemble call streams. */
  consultation?: IConsultation;
  /** The decision this client sent for a pending approval. */
  sentDecision?: 'run' | 'skip';
  onApprove: (callId: string, decision: 'run' | 'skip') => void;
  showReasoning: boolean;
}

/** One tool call: name, arguments, live status, result (errors visible), approval, ensemble members. */
export function ToolCard(props: IToolCardProps): JSX.Element {
  const { item, consultation, sentDecision, onApprove, showReasoning } = props;
  const args = asText(item.arguments);
  const output = asText(item.output);
  const waiting = item.approval === 'pending';
  const skipped = item.approval === 'skip' || item.approval === 'timeout';
  const status = waiting ? 'waiting' : skipped ? 'skipped' : item.status;
  const duration =
    typeof item.durationMs === 'number'
      ? item.durationMs >= 1000
        ? `${(item.durationMs / 1000).toFixed(1)} s`
        : `${Math.round(item.durationMs)} ms`
      : null;
  // A skipped call is the user's choice, not a failure: no red card.
  return (
    <div className={`jp-IDEAgent-tool jp-mod-${status}`} data-call-id={item.callId} data-tool={item.name}>
      <div className="jp-IDEAgent-toolHeader">
        <span className="jp-IDEAgent-toolStatus" aria-label={status}>
          {status}
        </span>
        <span className="jp-IDEAgent-toolName">{item.name}</span>
        <span className="jp-IDEAgent-toolSummary" title={args}>
          {summarize(item.arguments)}
        </span>
        {duration && <span className="jp-IDEAgent-toolDuration">{duration}</span>}
      </div>
      {item.approval && <ApprovalOutcome approval={item.approval} />}
      {waiting && (
        <ApprovalPrompt item={item} sent={sentDecision} onDecide={decision => onApprove(item.callId, decision)} />
      )}
      {args && !waiting && (
        <details className="jp-IDEAgent-toolArgs">
          <summary>Arguments</summary>
          <pre>{args}</pre>
        </details>
      )}
      {consultation && <EnsembleView consultation={consultation} showReasoning={showReasoning} />}
      {item.output !== undefined && <Result output={output} collapsed={!!consultation?.verdict} />}
    </div>
  );
}
