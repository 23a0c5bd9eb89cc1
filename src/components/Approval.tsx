import React from 'react';

import { ApprovalState, IToolItem } from '../events';

interface IPreview {
  title: string;
  code: string;
  facts: [string, string][];
}

function text(value: unknown): string {
  if (value === undefined || value === null) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** What the user must see to decide: the code or command, and where it runs. */
export function approvalPreview(name: string, args: unknown): IPreview {
  const a = (args && typeof args === 'object' ? args : {}) as Record<string, unknown>;
  if (name === 'JupyterNotebook') {
    const facts: [string, string][] = [
      ['notebook', text(a.notebook_path)],
      ['operation', text(a.operation)]
    ];
    if (a.cell_id !== undefined) {
      facts.push(['cell', text(a.cell_id)]);
    } else if (a.index !== undefined) {
      facts.push(['index', text(a.index)]);
    }
    const code = text(a.source);
    const target = a.cell_id !== undefined || a.index !== undefined ? 'this cell' : 'this notebook';
    return { title: code ? 'Run this code in the notebook?' : `Run ${target} as it is?`, code, facts };
  }
  if (name === 'ExecuteScript') {
    const argv = Array.isArray(a.args) ? ` ${a.args.map(x => text(x)).join(' ')}` : '';
    const facts: [string, string][] = [];
    if (a.cwd && a.cwd !== '.') {
      facts.push(['cwd', text(a.cwd)]);
    }
    if (a.interpreter && a.interpreter !== 'auto') {
      facts.push(['interpreter', text(a.interpreter)]);
    }
    if (a.env_vars && typeof a.env_vars === 'object') {
      facts.push(['env', Object.keys(a.env_vars as object).join(', ')]);
    }
    return {
      title: a.command ? 'Run this shell command in the background?' : 'Run this script in the background?',
      code: a.command ? text(a.command) : `${text(a.script_path)}${argv}`,
      facts
    };
  }
  return { title: `Run ${name}?`, code: JSON.stringify(args ?? {}, null, 2), facts: [] };
}

const RESOLVED: Record<Exclude<ApprovalState, 'pending'>, string> = {
  run: 'Approved',
  skip: 'Skipped by you',
  timeout: 'Not run: no answer in time',
  cancelled: 'Not run: the turn was stopped'
};

/** Run / Skip for a code-running call the server holds until the user decides. */
export function ApprovalPrompt(props: {
  item: IToolItem;
  sent: 'run' | 'skip' | undefined;
  onDecide: (decision: 'run' | 'skip') => void;
}): JSX.Element {
  const { item, sent, onDecide } = props;
  const preview = approvalPreview(item.name, item.arguments);
  return (
    <div className="jp-IDEAgent-approval" role="group" aria-label={`Approve ${item.name}`}>
      <div className="jp-IDEAgent-approvalTitle">{preview.title}</div>
      {preview.facts.length > 0 && (
        <div className="jp-IDEAgent-approvalFacts">
          {preview.facts.map(([k, v]) => (
            <span key={k}>
              {k}: <code>{v}</code>
            </span>
          ))}
        </div>
      )}
      {preview.code && <pre className="jp-IDEAgent-approvalCode">{preview.code}</pre>}
      <div className="jp-IDEAgent-approvalButtons">
        <button
          className="jp-IDEAgent-approvalSkip jp-mod-styled jp-mod-reject"
          disabled={sent !== undefined}
          onClick={() => onDecide('skip')}
          title="Do not run it; the agent is told you skipped it"
        >
          {sent === 'skip' ? 'Skipping…' : 'Skip'}
        </button>
        <button
          className="jp-IDEAgent-approvalRun jp-mod-styled jp-mod-accept"
          disabled={sent !== undefined}
          onClick={() => onDecide('run')}
          title="Run it now"
        >
          {sent === 'run' ? 'Running…' : 'Run'}
        </button>
      </div>
    </div>
  );
}

export function ApprovalOutcome(props: { approval: ApprovalState }): JSX.Element | null {
  const { approval } = props;
  if (approval === 'pending') {
    return null;
  }
  return <span className={`jp-IDEAgent-approvalOutcome jp-mod-${approval}`}>{RESOLVED[approval]}</span>;
}
