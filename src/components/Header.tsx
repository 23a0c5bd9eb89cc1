import { addIcon, caretDownIcon, caretUpIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { formatCost, formatTokens } from '../format';
import { AgentModel, IAgentViewState } from '../model';
import { RulesIndicator } from './Rules';
import { SessionList } from './Sessions';

/** The model the prompts ask for, and a warning when the server answered with another one. */
function ModelChip(props: { state: IAgentViewState }): JSX.Element | null {
  const { state } = props;
  const requested = state.settings.mainModel || state.status?.main_model || '';
  if (!requested) {
    return null;
  }
  const used = state.conversation.totals.model;
  const mismatch = !!used && requested.replace(/^[^:]+:/, '') !== used;
  const title = mismatch
    ? `Requested ${requested}, but the server answered with ${used} (its c.IDEAgent.main_model).`
    : used
      ? `Last call: ${used}`
      : `Server default: ${state.status?.main_model ?? ''}`;
  return (
    <span className={`jp-IDEAgent-model${mismatch ? ' jp-mod-mismatch' : ''}`} title={title}>
      {requested}
    </span>
  );
}

/** Session totals: tokens and money, main model and ensemble together. */
function Totals(props: { state: IAgentViewState }): JSX.Element | null {
  const { state } = props;
  const t = state.conversation.totals;
  const cost = state.conversation.sessionCostUsd ?? state.session?.usage?.cost_usd ?? null;
  const mainTokens = (t.inputTokens || state.session?.usage?.input_tokens || 0) + (t.outputTokens || state.session?.usage?.output_tokens || 0);
  const tokens = mainTokens + t.ensembleTokens;
  if (!tokens && !cost) {
    return null;
  }
  const title = [
    `Main model: ${t.inputTokens.toLocaleString()} input + ${t.outputTokens.toLocaleString()} output tokens`,
    t.ensembleTokens ? `Ensemble: ${t.ensembleTokens.toLocaleString()} tokens` : '',
    `Session cost: ${formatCost(cost)}${t.unpriced ? ' (some calls had no known price: at least this much)' : ''}`
  ]
    .filter(Boolean)
    .join('\n');
  return (
    <span className="jp-IDEAgent-totals" title={title}>
      <span className="jp-IDEAgent-totalTokens">{formatTokens(tokens)} tok</span>
      <span className="jp-IDEAgent-sessionCost">
        {t.unpriced ? '≥' : ''}
        {formatCost(cost ?? 0)}
      </span>
    </span>
  );
}

export function Header(props: { model: AgentModel; state: IAgentViewState }): JSX.Element {
  const { model, state } = props;
  const [listOpen, setListOpen] = useState(false);
  const toggle = (): void => {
    if (!listOpen) {
      void model.refreshSessions();
    }
    setListOpen(!listOpen);
  };
  return (
    <div className="jp-IDEAgent-header">
      <div className="jp-IDEAgent-title">
        <span className="jp-IDEAgent-name">IDE Agent</span>
        <ModelChip state={state} />
      </div>
      <div className="jp-IDEAgent-sessionLine">
        {state.session && (
          <>
            <span
              className={`jp-IDEAgent-connection jp-mod-${state.connection}`}
              title={`Connection: ${state.connection}${state.connectionDetail ? ` (${state.connectionDetail})` : ''}`}
            />
            <button
              className="jp-IDEAgent-sessionTitle"
              title={`${state.session.title}: show all sessions (switch, rename, delete)`}
              aria-expanded={listOpen}
              onClick={toggle}
            >
              <span className="jp-IDEAgent-sessionTitleText">{state.session.title || 'Untitled session'}</span>
              {listOpen ? <caretUpIcon.react tag="span" /> : <caretDownIcon.react tag="span" />}
            </button>
          </>
        )}
        <span className="jp-IDEAgent-spacer" />
        <RulesIndicator model={model} state={state} />
        <Totals state={state} />
        {state.phase === 'ready' && (
          <ToolbarButtonComponent
            icon={addIcon}
            tooltip="New session"
            className="jp-IDEAgent-newSession"
            onClick={() => {
              setListOpen(false);
              void model.newSession();
            }}
          />
        )}
      </div>
      {listOpen && state.phase === 'ready' && (
        <SessionList
          model={model}
          sessions={state.sessions}
          currentId={state.session?.id ?? null}
          onPicked={() => setListOpen(false)}
        />
      )}
    </div>
  );
}
