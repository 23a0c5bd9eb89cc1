import React, { useEffect, useLayoutEffect, useRef, useState } from 'react';

import { formatTokens } from '../format';
import { AgentModel, IAgentViewState } from '../model';
import { IRuleFile, rulesLabel, rulesTooltip } from '../rules';

function RuleRow(props: { file: IRuleFile; open: ((path: string) => void) | null }): JSX.Element {
  const { file, open } = props;
  const openPath = file.openPath;
  const facts = [
    file.scope,
    `${formatTokens(file.tokens)} tok`,
    file.tokens === 0 ? 'left out' : file.truncated ? 'truncated' : ''
  ].filter(Boolean);
  return (
    <li className={`jp-IDEAgent-rule jp-mod-${file.scope}`} data-path={file.path}>
      {openPath && open ? (
        <button className="jp-IDEAgent-rulePath jp-mod-openable" title={`Open ${openPath}`} onClick={() => open(openPath)}>
          {file.path}
        </button>
      ) : (
        <span className="jp-IDEAgent-rulePath" title={file.path}>
          {file.path}
        </span>
      )}
      <span className="jp-IDEAgent-ruleFacts">{facts.join(' · ')}</span>
    </li>
  );
}

/**
 * "Rules: 2" in the header: which rule files (the user's, the project's
 * AGENTS.md) the session's turns read. Clicking lists them with their scope
 * and size; a project file opens in JupyterLab. Refreshed from the server
 * whenever the list is opened, so an edit shows without sending a prompt.
 */
export function RulesIndicator(props: { model: AgentModel; state: IAgentViewState }): JSX.Element | null {
  const { model, state } = props;
  const [open, setOpen] = useState(false);
  // The popover's look is in style/rules.css; only its place is computed here, once it is rendered,
  // from where its containing block turned out to be (hidden until then).
  const [place, setPlace] = useState<React.CSSProperties>({ visibility: 'hidden' });
  const wrap = useRef<HTMLSpanElement>(null);
  const popover = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    if (!open || !wrap.current || !popover.current) {
      return;
    }
    // rendered at (0, 0) of its containing block: that block's origin is where it landed
    const origin = popover.current.getBoundingClientRect();
    const button = wrap.current.getBoundingClientRect();
    const panel = (wrap.current.closest('.jp-IDEAgent') ?? document.body).getBoundingClientRect();
    setPlace({
      top: button.bottom + 2 - origin.top,
      left: panel.left + 6 - origin.left,
      width: Math.max(160, panel.width - 12)
    });
  }, [open]);
  useEffect(() => {
    if (!open) {
      return;
    }
    const onDown = (event: MouseEvent): void => {
      if (wrap.current && !wrap.current.contains(event.target as Node)) {
        setOpen(false);
      }
    };
    const onKey = (event: KeyboardEvent): void => {
      if (event.key === 'Escape') {
        setOpen(false);
      }
    };
    const close = (): void => setOpen(false);
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey);
    window.addEventListener('resize', close);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey);
      window.removeEventListener('resize', close);
    };
  }, [open]);

  const rules = state.rules;
  const label = rulesLabel(rules);
  if (!rules || !label) {
    return null;
  }
  const warn = rules.warnings.length > 0 || rules.capped;
  const toggle = (): void => {
    if (!open) {
      void model.refreshRules();
      setPlace({ visibility: 'hidden' });
    }
    setOpen(!open);
  };
  const openFile = model.openFile
    ? (path: string): void => {
        setOpen(false);
        model.openFile?.(path);
      }
    : null;
  return (
    <span className="jp-IDEAgent-rules" ref={wrap}>
      <button
        className={`jp-IDEAgent-rulesButton${warn ? ' jp-mod-warn' : ''}`}
        title={rulesTooltip(rules)}
        aria-expanded={open}
        onClick={toggle}
      >
        {label}
        {warn ? ' ⚠' : ''}
      </button>
      {open && (
        <div className="jp-IDEAgent-rulesPopover" style={place} ref={popover} role="dialog" aria-label="Active rules">
          <ul className="jp-IDEAgent-rulesList">
            {rules.files.map(file => (
              <RuleRow key={`${file.scope}:${file.path}`} file={file} open={openFile} />
            ))}
          </ul>
          {!rules.files.length && <div className="jp-IDEAgent-rulesEmpty">No rule file is read.</div>}
          <div className="jp-IDEAgent-rulesBudget">
            {formatTokens(rules.totalTokens)} of {formatTokens(rules.budgetTokens)} tokens allowed for rules
            {rules.capped ? ' (capped)' : ''}
          </div>
          {rules.warnings.map((w, i) => (
            <div key={i} className="jp-IDEAgent-rulesWarning">
              ⚠ {w}
            </div>
          ))}
        </div>
      )}
    </span>
  );
}
