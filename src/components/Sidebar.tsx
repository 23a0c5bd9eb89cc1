import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { addIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { AgentModel, IAgentViewState } from '../model';
import { Conversation, formatCost } from './Conversation';
import { PromptBox } from './PromptBox';
import { SetupCard } from './SetupCard';

function useModelState(model: AgentModel): IAgentViewState {
  const [state, setState] = useState(model.state);
  useEffect(() => {
    const onChange = (_: AgentModel, next: IAgentViewState): void => setState(next);
    model.stateChanged.connect(onChange);
    setState(model.state);
    return () => {
      model.stateChanged.disconnect(onChange);
    };
  }, [model]);
  return state;
}

function Header(props: { model: AgentModel; state: IAgentViewState }): JSX.Element {
  const { model, state } = props;
  // The model the server reports; the mainModel setting is sent with each
  // prompt as a request the server may honour.
  const modelName = state.status?.main_model || '';
  const requested = state.settings.mainModel;
  const modelTitle =
    requested && requested !== modelName ? `Server default: ${modelName}; settings request ${requested}` : modelName;
  const cost = state.conversation.sessionCostUsd ?? state.session?.usage?.cost_usd;
  return (
    <div className="jp-IDEAgent-header">
      <div className="jp-IDEAgent-title">
        <span className="jp-IDEAgent-name">IDE Agent</span>
        {modelName && (
          <span className="jp-IDEAgent-model" title={modelTitle}>
            {modelName}
          </span>
        )}
      </div>
      <div className="jp-IDEAgent-sessionLine">
        {state.session && (
          <>
            <span
              className={`jp-IDEAgent-connection jp-mod-${state.connection}`}
              title={`Connection: ${state.connection}${state.connectionDetail ? ` (${state.connectionDetail})` : ''}`}
            />
            <span className="jp-IDEAgent-sessionTitle" title={state.session.id}>
              {state.session.title || 'Untitled session'}
            </span>
            {cost !== undefined && cost !== null && <span className="jp-IDEAgent-sessionCost">{formatCost(cost)}</span>}
          </>
        )}
        <span className="jp-IDEAgent-spacer" />
        {state.phase === 'ready' && (
          <ToolbarButtonComponent
            icon={addIcon}
            tooltip="New session"
            className="jp-IDEAgent-newSession"
            onClick={() => void model.newSession()}
          />
        )}
      </div>
    </div>
  );
}

/** The whole sidebar; what it shows follows `model.state.phase`. */
export function Sidebar(props: { model: AgentModel; rendermime: IRenderMimeRegistry }): JSX.Element {
  const { model, rendermime } = props;
  const state = useModelState(model);
  const running = model.running;

  let body: JSX.Element;
  switch (state.phase) {
    case 'idle':
    case 'loading':
      body = <div className="jp-IDEAgent-loading">Connecting to the agent…</div>;
      break;
    case 'setup':
      body = <SetupCard status={state.status!} onRecheck={() => void model.refresh()} />;
      break;
    case 'error':
      body = (
        <div className="jp-IDEAgent-fatal" role="alert">
          <p>{state.error}</p>
          <button className="jp-mod-styled jp-mod-accept" onClick={() => void model.refresh()}>
            Retry
          </button>
        </div>
      );
      break;
    default:
      body = (
        <>
          {state.status && state.status.problems.length > 0 && (
            <details className="jp-IDEAgent-warnings">
              <summary>{state.status.problems.length} configuration warning(s)</summary>
              <ul>
                {state.status.problems.map((p, i) => (
                  <li key={i}>{p}</li>
                ))}
              </ul>
            </details>
          )}
          {state.connection === 'closed' && (
            <div className="jp-IDEAgent-banner" role="status">
              Disconnected{state.connectionDetail ? ` (${state.connectionDetail})` : ''}; reconnecting…{' '}
              <button className="jp-IDEAgent-link" onClick={() => model.reconnect()}>
                Reconnect now
              </button>
            </div>
          )}
          {state.error && (
            <div className="jp-IDEAgent-banner jp-mod-error" role="alert">
              {state.error}{' '}
              <button className="jp-IDEAgent-link" onClick={() => model.dismissError()}>
                Dismiss
              </button>
            </div>
          )}
          <Conversation
            conversation={state.conversation}
            rendermime={rendermime}
            showReasoning={state.settings.showReasoning}
            running={running}
          />
          <PromptBox
            running={running}
            stopping={state.stopping}
            disabled={!state.session}
            onSend={text => model.sendPrompt(text)}
            onStop={() => model.cancel()}
          />
        </>
      );
  }

  return (
    <div className="jp-IDEAgent-root">
      <Header model={model} state={state} />
      {body}
    </div>
  );
}
