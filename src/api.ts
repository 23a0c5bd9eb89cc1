/**
 * REST client for the server extension, under `{base_url}ide-agent/`.
 *
 * `ServerConnection.makeRequest` adds the base URL's token and the XSRF header,
 * so these calls work behind JupyterHub and with token or cookie auth alike.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IFileSearch } from './attachments';

export const API_NAMESPACE = 'ide-agent';

export interface IProviderStatus {
  name: string;
  kind: string;
  configured: boolean;
  missing: string | null;
}

export interface IStatus {
  version: string;
  ready: boolean;
  main_model: string;
  providers: IProviderStatus[];
  problems: string[];
}

export interface ISessionUsage {
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
}

export interface ISession {
  id: string;
  title: string;
  /** Seconds since the epoch (the server's `time.time()`). */
  created: number;
  updated: number;
  running: boolean;
  last_seq?: number;
  usage: ISessionUsage;
}

/** One background command of the session (workspace/processes.py `check`). */
export interface IProcessState {
  /** A local process's pid, or a Ray job's id ("ray-..."). */
  pid: number | string;
  command: string;
  cwd?: string;
  /** running | exited | interrupted | killed */
  status: string;
  exit_code: number | null;
  started?: number;
  ended?: number | null;
  runtime_s: number;
  cpu_percent: number | null;
  rss_mb: number | null;
  processes?: number;
  log_path?: string;
  output_lines?: number;
  tail: string[];
}

/** One notebook the agent knows (host/base.py `notebook_states` merged with tool results). */
export interface INotebookState {
  notebook: string;
  kernel_id?: string | null;
  kernel_status?: string | null;
  execution_count?: number;
  cell_count?: number | null;
}

export interface IFileChange {
  path: string;
  action: string;
  by: string;
  at: number;
}

/** GET sessions/{id}/workspace (workspace/state.py `to_json`). */
export interface IWorkspaceState {
  root: string;
  elapsed_s: number;
  files: { count: number; truncated: boolean };
  changes: IFileChange[];
  notebooks: INotebookState[];
  processes: IProcessState[];
}

/** An HTTP error from the agent's API, with the status code kept for callers. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export class AgentApi {
  constructor(readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  status(): Promise<IStatus> {
    return this._request<IStatus>('status');
  }

  /** GET files?q=: the workspace's files and notebooks for the prompt's `@` completion, best match first. */
  searchFiles(query: string, limit = 50): Promise<IFileSearch> {
    return this._request<IFileSearch>(`files?q=${encodeURIComponent(query)}&limit=${limit}`);
  }

  async listSessions(): Promise<ISession[]> {
    const reply = await this._request<{ sessions: ISession[] }>('sessions');
    return reply.sessions;
  }

  createSession(title?: string): Promise<ISession> {
    return this._request<ISession>('sessions', {
      method: 'POST',
      body: JSON.stringify(title ? { title } : {})
    });
  }

  getSession(id: string): Promise<ISession> {
    return this._request<ISession>(URLExt.join('sessions', encodeURIComponent(id)));
  }

  renameSession(id: string, title: string): Promise<ISession> {
    return this._request<ISession>(URLExt.join('sessions', encodeURIComponent(id)), {
      method: 'PATCH',
      body: JSON.stringify({ title })
    });
  }

  async deleteSession(id: string): Promise<void> {
    await this._request<unknown>(URLExt.join('sessions', encodeURIComponent(id)), {
      method: 'DELETE'
    });
  }

  workspace(id: string): Promise<IWorkspaceState> {
    return this._request<IWorkspaceState>(URLExt.join('sessions', encodeURIComponent(id), 'workspace'));
  }

  /** GET sessions/{id}/rules: the rule files the next turn reads (parse with `parseRules`, src/rules.ts). */
  rules(id: string): Promise<unknown> {
    return this._request<unknown>(URLExt.join('sessions', encodeURIComponent(id), 'rules'));
  }

  /** SIGINT, then SIGTERM, then SIGKILL (the server's grace periods); `force`: SIGKILL at once. */
  interruptProcess(id: string, pid: number | string, force = false): Promise<IProcessState> {
    return this._request<IProcessState>(
      URLExt.join('sessions', encodeURIComponent(id), 'processes', String(pid), 'interrupt'),
      { method: 'POST', body: JSON.stringify({ force }) }
    );
  }

  /** The WebSocket URL of a session's event stream, resuming after `afterSeq`. */
  streamUrl(id: string, afterSeq: number): string {
    const settings = this.serverSettings;
    let url =
      URLExt.join(settings.wsUrl, API_NAMESPACE, 'sessions', encodeURIComponent(id), 'stream') +
      `?after_seq=${Math.max(0, Math.floor(afterSeq))}`;
    // Like @jupyterlab/services does for kernel channels: browsers cannot set
    // headers on a WebSocket, so the token travels in the query string.
    if (settings.appendToken && settings.token) {
      url += `&token=${encodeURIComponent(settings.token)}`;
    }
    return url;
  }

  private _request<T>(path: string, init: RequestInit = {}): Promise<T> {
    return requestApi<T>(this.serverSettings, path, init);
  }
}

/**
 * One call of the extension's REST API (`{baseUrl}ide-agent/{path}`): the JSON
 * reply, or an ApiError with the server's message. Shared by every API client
 * of the sidebar (sessions, MCP servers, ...).
 */
export async function requestApi<T>(
  settings: ServerConnection.ISettings,
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const body = (data && typeof data === 'object' ? data : {}) as {
      message?: string;
      reason?: string;
      error?: string;
    };
    throw new ApiError(
      response.status,
      String(body.message || body.reason || body.error || `${response.status} ${response.statusText}`)
    );
  }
  return data as T;
}
