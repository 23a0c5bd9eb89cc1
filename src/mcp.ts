/**
 * The MCP servers of the Jupyter server, as `GET ide-agent/mcp` lists them
 * (names, transport, command or URL, state, last error, tools; never env or
 * header values), and the calls that switch one on or off and connect one.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { requestApi } from './api';

/** stopped: not started yet (servers start at the first model step that needs them). */
export type McpState = 'stopped' | 'starting' | 'running' | 'error' | 'disabled' | 'invalid';

export interface IMcpTool {
  /** The server's own name for the tool. */
  name: string;
  /** What the model calls it: `mcp__<server>__<tool>`. */
  qualified_name: string;
  /** Marked readOnlyHint by the server: runs without asking in approval mode. */
  read_only: boolean;
  description: string;
}

export interface IMcpServer {
  name: string;
  transport: 'stdio' | 'http';
  /** The command line (stdio) or scheme://host:port/path (HTTP). */
  target: string;
  /** Where it is configured: `c.IDEAgent.mcp_servers` or the per-user file. */
  source: 'config' | 'file';
  enabled: boolean;
  state: McpState;
  error: string | null;
  timeout: number;
  starts: number;
  tools: IMcpTool[];
}

export interface IMcpListing {
  servers: IMcpServer[];
  /** The per-user file (`{"mcpServers": {...}}`), or null when none is read. */
  config_file: string | null;
  /** Problems with that file (unreadable, not JSON). */
  problems: string[];
}

/** The collapsed panel's one line: "2 servers · 7 tools · 1 failing". */
export function mcpSummary(listing: IMcpListing): string {
  const on = listing.servers.filter(s => s.enabled);
  const tools = on.reduce((n, s) => n + s.tools.length, 0);
  const failing = listing.servers.filter(s => s.state === 'error' || s.state === 'invalid').length;
  return [
    `${on.length} of ${listing.servers.length} server${listing.servers.length === 1 ? '' : 's'} on`,
    tools ? `${tools} tool${tools === 1 ? '' : 's'}` : '',
    failing ? `${failing} failing` : ''
  ]
    .filter(Boolean)
    .join(' · ');
}

export class McpApi {
  constructor(readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  list(): Promise<IMcpListing> {
    return this._request<IMcpListing>('mcp');
  }

  /** On or off for this user (kept across restarts); off stops the server. */
  setEnabled(name: string, enabled: boolean): Promise<IMcpServer> {
    return this._request<IMcpServer>(URLExt.join('mcp', encodeURIComponent(name)), {
      method: 'PATCH',
      body: JSON.stringify({ enabled })
    });
  }

  /** Start (or restart) the server now and list its tools; a failure comes back in `error`. */
  connect(name: string): Promise<IMcpServer> {
    return this._request<IMcpServer>(URLExt.join('mcp', encodeURIComponent(name), 'connect'), {
      method: 'POST',
      body: '{}'
    });
  }

  private _request<T>(path: string, init: RequestInit = {}): Promise<T> {
    return requestApi<T>(this.serverSettings, path, init);
  }
}
