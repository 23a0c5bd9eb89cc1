import React from 'react';

import { IToolItem } from '../events';

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

const STATUS_LABEL: Record<IToolItem['status'], string> = {
  running: 'running',
  done: 'done',
  error: 'error',
  cancelled: 'cancelled'
};

export function ToolCard(props: { item: IToolItem }): JSX.Element {
  const { item } = props;
  const args = asText(item.arguments);
  const output = asText(item.output);
  const { head, truncated } = preview(output);
  const duration =
    typeof item.durationMs === 'number'
      ? item.durationMs >= 1000
        ? `${(item.durationMs / 1000).toFixed(1)} s`
        : `${Math.round(item.durationMs)} ms`
      : null;
  return (
    <div className={`jp-IDEAgent-tool jp-mod-${item.status}`} data-call-id={item.callId}>
      <div className="jp-IDEAgent-toolHeader">
        <span className="jp-IDEAgent-toolStatus" aria-label={STATUS_LABEL[item.status]}>
          {STATUS_LABEL[item.status]}
        </span>
        <span className="jp-IDEAgent-toolName">{item.name}</span>
        <span className="jp-IDEAgent-toolSummary" title={args}>
          {summarize(item.arguments)}
        </span>
        {duration && <span className="jp-IDEAgent-toolDuration">{duration}</span>}
      </div>
      {args && (
        <details className="jp-IDEAgent-toolArgs">
          <summary>Arguments</summary>
          <pre>{args}</pre>
        </details>
      )}
      {item.output !== undefined && (
        <div className="jp-IDEAgent-toolResult">
          <pre>{head}</pre>
          {truncated && (
            <details>
              <summary>Full result ({output.length.toLocaleString()} characters)</summary>
              <pre>{output}</pre>
            </details>
          )}
        </div>
      )}
    </div>
  );
}
