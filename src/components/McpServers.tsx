import { caretDownIcon, caretRightIcon, refreshIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useMemo, useState } from 'react';

import { IMcpListing, IMcpServer, McpApi, mcpSummary } from '../mcp';
import { AgentModel } from '../model';

/** While the panel is open: servers start and fail at model steps, so look again now and then. */
const OPEN_POLL_MS = 4000;

const STATE_LABEL: Record<string, string> = {
  stopped: 'starts when needed',
  starting: 'starting…',
  running: 'connected',
  error: 'failed',
  disabled: 'off',
  invalid: 'invalid entry'
};

function ServerRow(props: {
  server: IMcpServer;
  busy: boolean;
  onToggle: (enabled: boolean) => void;
  onConnect: () => void;
}): JSX.Element {
  const { server, busy, onToggle, onConnect } = props;
  const canConnect = server.enabled && (server.state === 'stopped' || server.state === 'error');
  return (
    <div className={`jp-IDEAgent-mcpServer jp-mod-${server.state}`} data-server={server.name}>
      <div className="jp-IDEAgent-mcpServerHeader">
        <span className="jp-IDEAgent-mcpDot" title={server.state} />
        <span className="jp-IDEAgent-mcpName">{server.name}</span>
        <span className="jp-IDEAgent-mcpState">{STATE_LABEL[server.state] ?? server.state}</span>
        <span className="jp-IDEAgent-spacer" />
        <label
          className="jp-IDEAgent-mcpSwitch"
          title={server.state === 'invalid' ? 'Fix the entry to turn it on' : server.enabled ? 'Turn off' : 'Turn on'}
        >
          <input
            type="checkbox"
            role="switch"
            aria-label={`MCP server ${server.name}`}
            checked={server.enabled}
            disabled={busy || server.state === 'invalid'}
            onChange={e => onToggle(e.currentTarget.checked)}
          />
          <span className="jp-IDEAgent-mcpSwitchTrack" />
        </label>
      </div>
      <div
        className="jp-IDEAgent-mcpTarget"
        title={`${server.transport === 'http' ? 'streamable HTTP' : 'stdio'} · from ${
          server.source === 'file' ? 'the per-user MCP file' : 'c.IDEAgent.mcp_servers'
        } · ${server.timeout} s per call`}
      >
        <span className="jp-IDEAgent-mcpTransport">{server.transport}</span>
        <code>{server.target}</code>
      </div>
      {server.error && <pre className="jp-IDEAgent-mcpError">{server.error}</pre>}
      {server.tools.length > 0 && (
        <div className="jp-IDEAgent-mcpTools">
          {server.tools.map(tool => (
            <span
              key={tool.name}
              className={`jp-IDEAgent-mcpTool${tool.read_only ? ' jp-mod-readOnly' : ''}`}
              title={`${tool.qualified_name}${tool.read_only ? ' (read-only: runs without asking)' : ''}\n${tool.description}`}
            >
              {tool.name}
            </span>
          ))}
        </div>
      )}
      {canConnect && (
        <button className="jp-IDEAgent-mcpConnect jp-mod-styled" disabled={busy} onClick={onConnect}>
          {busy ? 'Connecting…' : server.state === 'error' ? 'Retry' : 'Connect now'}
        </button>
      )}
    </div>
  );
}

/**
 * The MCP servers the agent can use: state, tools, and an on/off switch per
 * server (kept per user across restarts). Collapsed to one line by default;
 * hidden when no server is configured.
 */
export function McpServersPanel(props: { model: AgentModel }): JSX.Element | null {
  const { model } = props;
  const api = useMemo(() => new McpApi(model.api.serverSettings), [model]);
  const [listing, setListing] = useState<IMcpListing | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState<string[]>([]);

  const refresh = useCallback(async () => {
    try {
      setListing(await api.list());
      setError(null);
    } catch (e) {
      setError(`MCP servers unavailable: ${(e as Error).message ?? e}`);
    }
  }, [api]);

  // on mount, and whenever a turn ends (servers start and fail during turns)
  useEffect(() => {
    void refresh();
    let running = model.running;
    const onChange = (): void => {
      if (running && !model.running) {
        void refresh();
      }
      running = model.running;
    };
    model.stateChanged.connect(onChange);
    return () => {
      model.stateChanged.disconnect(onChange);
    };
  }, [model, refresh]);

  useEffect(() => {
    if (!open) {
      return;
    }
    void refresh();
    const timer = window.setInterval(() => void refresh(), OPEN_POLL_MS);
    return () => window.clearInterval(timer);
  }, [open, refresh]);

  const act = async (name: string, call: () => Promise<IMcpServer>): Promise<void> => {
    setBusy(b => [...b, name]);
    try {
      const row = await call();
      setListing(l => (l ? { ...l, servers: l.servers.map(s => (s.name === row.name ? row : s)) } : l));
      setError(null);
    } catch (e) {
      setError(`${name}: ${(e as Error).message ?? e}`);
    } finally {
      setBusy(b => b.filter(n => n !== name));
    }
  };

  if (!listing || (listing.servers.length === 0 && listing.problems.length === 0)) {
    return null;
  }
  const failing = listing.servers.some(s => s.enabled && s.state === 'error') || listing.problems.length > 0;
  return (
    <div className={`jp-IDEAgent-mcp${open ? ' jp-mod-open' : ''}`}>
      <div className="jp-IDEAgent-mcpBar">
        <button
          className="jp-IDEAgent-mcpToggle"
          onClick={() => setOpen(!open)}
          aria-expanded={open}
          title={open ? 'Hide the MCP servers' : 'Show the MCP servers and their tools'}
        >
          {open ? <caretDownIcon.react tag="span" /> : <caretRightIcon.react tag="span" />}
          <span className="jp-IDEAgent-mcpTitle">MCP</span>
          <span className={`jp-IDEAgent-mcpSummary${failing ? ' jp-mod-error' : ''}`}>{mcpSummary(listing)}</span>
        </button>
        {open && <ToolbarButtonComponent icon={refreshIcon} tooltip="Refresh" onClick={() => void refresh()} />}
      </div>
      {open && (
        <div className="jp-IDEAgent-mcpBody">
          {error && <div className="jp-IDEAgent-mcpProblem">{error}</div>}
          {listing.problems.map(p => (
            <div key={p} className="jp-IDEAgent-mcpProblem">
              {p}
            </div>
          ))}
          {listing.servers.map(server => (
            <ServerRow
              key={server.name}
              server={server}
              busy={busy.includes(server.name)}
              onToggle={enabled => void act(server.name, () => api.setEnabled(server.name, enabled))}
              onConnect={() => void act(server.name, () => api.connect(server.name))}
            />
          ))}
          {listing.config_file && (
            <div className="jp-IDEAgent-mcpHint" title={listing.config_file}>
              Add servers in <code>{listing.config_file}</code> or <code>c.IDEAgent.mcp_servers</code>.
            </div>
          )}
        </div>
      )}
    </div>
  );
}
