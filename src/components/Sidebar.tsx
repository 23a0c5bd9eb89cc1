import React, { useEffect, useState } from 'react';

import { lastAgentTurn } from '../events';
import { AgentModel, IAgentViewState } from '../model';
import { Conversation } from './Conversation';
import { Header } from './Header';
import { McpServersPanel } from './McpServers';
import { ProcessesPanel } from './Processes';
import { PromptBox } from './PromptBox';
import { IServices, ServicesContext } from './services';
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

function Banners(props: { model: AgentModel; state: IAgentViewState }): JSX.Element {
  const { model, state } = props;
  return (
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
    </>
  );
}

/** The whole sidebar; what it shows follows `model.state.phase`. */
export function Sidebar(props: { model: AgentModel; services: IServices }): JSX.Element {
  const { model, services } = props;
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
          <Banners model={model} state={state} />
          <Conversation
            conversation={state.conversation}
            showReasoning={state.settings.showReasoning}
            running={running}
            approvalsSent={state.approvalsSent}
            onApprove={(callId, decision) => model.approve(callId, decision)}
          />
          <McpServersPanel model={model} />
          <ProcessesPanel model={model.workspace} />
          <PromptBox
            running={running}
            turnRunning={lastAgentTurn(state.conversation)?.done === undefined && !!lastAgentTurn(state.conversation)}
            stopping={state.stopping}
            disabled={!state.session}
            mode={state.mode}
            ensemble={state.settings.ensemble}
            context={state.context}
            onSend={(text, mode) => model.submit(text, mode)}
            onStop={() => model.cancel()}
            onClearContext={() => model.attachContext(null, 'agent')}
            attach={model.attach}
            notebookOffer={state.notebookOffer}
          />
        </>
      );
  }

  return (
    <ServicesContext.Provider value={services}>
      <div className="jp-IDEAgent-root">
        <Header model={model} state={state} />
        {body}
      </div>
    </ServicesContext.Provider>
  );
}
