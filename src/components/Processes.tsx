import { caretDownIcon, caretRightIcon, refreshIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { INotebookState } from '../api';
import { formatDuration, formatMegabytes } from '../format';
import { formatCluster, IJobState, isActive, IWorkspaceView, jobsOf, WorkspaceModel } from '../workspace';

function useWorkspace(model: WorkspaceModel): IWorkspaceView {
  const [view, setView] = useState(model.view);
  useEffect(() => {
    const onChange = (_: WorkspaceModel, next: IWorkspaceView): void => setView(next);
    model.changed.connect(onChange);
    setView(model.view);
    return () => {
      model.changed.disconnect(onChange);
    };
  }, [model]);
  return view;
}

function ProcessRow(props: { proc: IJobState; interrupting: boolean; onInterrupt: () => void }): JSX.Element {
  const { proc, interrupting, onInterrupt } = props;
  const running = isActive(proc);
  const ray = proc.target === 'ray';
  const facts = [
    typeof proc.cpu_percent === 'number' && running ? `CPU ${Math.round(proc.cpu_percent)}%` : '',
    running ? formatMegabytes(proc.rss_mb) : '',
    ray && running && proc.cluster ? `cluster ${formatCluster(proc.cluster)}` : '',
    formatDuration(proc.runtime_s),
    typeof proc.output_lines === 'number' ? `${proc.output_lines.toLocaleString()} lines` : '',
    !running && proc.exit_code !== null && proc.exit_code !== undefined ? `exit ${proc.exit_code}` : ''
  ].filter(Boolean);
  const tail = (proc.tail ?? []).join('\n').trimEnd();
  const where = ray ? `Ray job on ${proc.address ?? 'the cluster'}` : `pid ${proc.pid}`;
  return (
    <div className={`jp-IDEAgent-process jp-mod-${proc.status}`} data-pid={proc.pid} data-target={proc.target ?? 'local'}>
      <div className="jp-IDEAgent-processHeader">
        {ray && (
          <span className="jp-IDEAgent-ensembleBadge jp-IDEAgent-rayBadge" title={where}>
            ray
          </span>
        )}
        <span className="jp-IDEAgent-processStatus">{proc.status}</span>
        <code className="jp-IDEAgent-processCommand" title={`${proc.command}\n${where}${proc.cwd ? `, in ${proc.cwd}` : ''}`}>
          {proc.command}
        </code>
      </div>
      <div className="jp-IDEAgent-processFacts">
        {ray && proc.dashboard_url ? (
          <a href={proc.dashboard_url} target="_blank" rel="noopener noreferrer" title="Open it on the Ray dashboard">
            {proc.pid}
          </a>
        ) : (
          <span>pid {proc.pid}</span>
        )}
        {facts.map(f => (
          <span key={f}>{f}</span>
        ))}
        <span className="jp-IDEAgent-spacer" />
        {running && (
          <button
            className="jp-IDEAgent-interrupt jp-mod-styled jp-mod-warn"
            disabled={interrupting}
            onClick={onInterrupt}
            title={
              ray
                ? 'Stop the Ray job (Ray sends its driver SIGTERM, then SIGKILL)'
                : 'SIGINT, then SIGTERM, then SIGKILL to the whole process group'
            }
          >
            {interrupting ? 'Interrupting…' : 'Interrupt'}
          </button>
        )}
      </div>
      {proc.stale && (
        <div className="jp-IDEAgent-processesError" title={proc.stale}>
          The cluster did not answer; this is the last known state.
        </div>
      )}
      {ray && proc.status === 'failed' && !tail && proc.message && (
        <pre className="jp-IDEAgent-processTail">{proc.message}</pre>
      )}
      {tail && <pre className="jp-IDEAgent-processTail">{tail}</pre>}
    </div>
  );
}

function NotebookRow(props: { nb: INotebookState }): JSX.Element {
  const { nb } = props;
  const status = nb.kernel_status ?? 'no kernel';
  return (
    <div className="jp-IDEAgent-notebook" data-notebook={nb.notebook}>
      <span className={`jp-IDEAgent-kernelDot jp-mod-${status.replace(/\s+/g, '-')}`} title={`kernel: ${status}`} />
      <span className="jp-IDEAgent-notebookPath" title={nb.notebook}>
        {nb.notebook}
      </span>
      <span className="jp-IDEAgent-notebookFacts">
        {status}
        {typeof nb.cell_count === 'number' ? ` · ${nb.cell_count} cells` : ''}
        {nb.execution_count ? ` · [${nb.execution_count}]` : ''}
      </span>
    </div>
  );
}

/**
 * The workspace at a glance: the session's background scripts and Ray jobs (CPU, memory,
 * runtime, output tail, Interrupt) and the notebooks the agent works in with
 * their kernel state. Collapsed to one summary line by default.
 */
export function ProcessesPanel(props: { model: WorkspaceModel }): JSX.Element {
  const { model } = props;
  const view = useWorkspace(model);
  const [open, setOpen] = useState(false);
  const processes = jobsOf(view.state);
  const notebooks = view.state?.notebooks ?? [];
  const running = processes.filter(isActive).length;

  useEffect(() => {
    model.setExpanded(open);
  }, [model, open]);

  // newest first: a finished script sinks below the running ones
  const sorted = [...processes].sort(
    (a, b) => Number(isActive(b)) - Number(isActive(a)) || (b.started ?? 0) - (a.started ?? 0)
  );
  const summary = [
    running ? `${running} running` : processes.length ? `${processes.length} finished` : 'no scripts',
    notebooks.length ? `${notebooks.length} notebook${notebooks.length > 1 ? 's' : ''}` : ''
  ]
    .filter(Boolean)
    .join(' · ');

  return (
    <div className={`jp-IDEAgent-processes${open ? ' jp-mod-open' : ''}`}>
      <div className="jp-IDEAgent-processesBar">
        <button
          className="jp-IDEAgent-processesToggle"
          onClick={() => setOpen(!open)}
          aria-expanded={open}
          title={open ? 'Hide the processes' : 'Show the scripts and notebooks of this session'}
        >
          {open ? <caretDownIcon.react tag="span" /> : <caretRightIcon.react tag="span" />}
          <span className="jp-IDEAgent-processesTitle">Processes</span>
          <span className={`jp-IDEAgent-processesSummary${running ? ' jp-mod-running' : ''}`}>{summary}</span>
        </button>
        {open && <ToolbarButtonComponent icon={refreshIcon} tooltip="Refresh" onClick={() => model.poke()} />}
      </div>
      {open && (
        <div className="jp-IDEAgent-processesBody">
          {view.error && <div className="jp-IDEAgent-processesError">{view.error}</div>}
          {sorted.length === 0 && <div className="jp-IDEAgent-processesEmpty">No scripts started in this session.</div>}
          {sorted.map(proc => (
            <ProcessRow
              key={String(proc.pid)}
              proc={proc}
              interrupting={view.interrupting.includes(proc.pid)}
              onInterrupt={() => void model.interrupt(proc.pid)}
            />
          ))}
          {notebooks.length > 0 && (
            <div className="jp-IDEAgent-notebooks">
              <div className="jp-IDEAgent-sectionTitle">Notebooks</div>
              {notebooks.map(nb => (
                <NotebookRow key={nb.notebook} nb={nb} />
              ))}
            </div>
          )}
        </div>
      )}
    </div>
  );
}
