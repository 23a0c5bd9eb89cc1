import React from 'react';

import { IStatus } from '../api';

const CONFIG_EXAMPLE = `# ~/.jupyter/jupyter_server_config.py
c.IDEAgent.main_model = "openai:gpt-5"
c.IDEAgent.providers = {
  "openai": {"api_key": "sk-..."},
  # an OpenAI-compatible server:
  # "local": {"kind": "openai",
  #   "base_url": "http://127.0.0.1:8000/v1"},
}`;

/** Shown when the server says it is not ready: what is missing and how to fix it. */
export function SetupCard(props: { status: IStatus; onRecheck: () => void }): JSX.Element {
  const { status, onRecheck } = props;
  return (
    <div className="jp-IDEAgent-setup" role="alert">
      <h3>The agent needs a model provider</h3>
      <p>
        The main model is <code>{status.main_model || '(not set)'}</code>, and the server reports:
      </p>
      <ul className="jp-IDEAgent-problems">
        {status.problems.length ? (
          status.problems.map((problem, i) => <li key={i}>{problem}</li>)
        ) : (
          <li>No provider is configured.</li>
        )}
      </ul>
      {status.providers.length > 0 && (
        <div className="jp-IDEAgent-providers">
          Providers:{' '}
          {status.providers.map(p => (
            <span
              key={p.name}
              className={`jp-IDEAgent-provider ${p.configured ? 'jp-mod-configured' : 'jp-mod-missing'}`}
              title={p.configured ? `${p.name} (${p.kind}) is configured` : (p.missing ?? `${p.name} is not configured`)}
            >
              {p.configured ? '\u2713' : '\u2717'} {p.name}
            </span>
          ))}
        </div>
      )}
      <p>
        Either set the provider's API key in the environment of the Jupyter server (for example{' '}
        <code>OPENAI_API_KEY</code>, <code>ANTHROPIC_API_KEY</code>, <code>GEMINI_API_KEY</code>,{' '}
        <code>XAI_API_KEY</code>) or configure it in <code>jupyter_server_config.py</code>:
      </p>
      <pre className="jp-IDEAgent-config">{CONFIG_EXAMPLE}</pre>
      <p>Then restart the Jupyter server. Keys stay on the server; they never reach the browser.</p>
      <button className="jp-mod-styled jp-mod-accept" onClick={onRecheck}>
        Check again
      </button>
    </div>
  );
}
