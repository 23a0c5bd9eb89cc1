/**
 * REST client for the server extension, under `{base_url}ide-agent/`.
 *
 * `ServerConnection.makeRequest` adds the base URL's token and the XSRF header,
 * so these calls work behind JupyterHub and with token or cookie auth alike.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

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
  created: string;
  updated: string;
  running: boolean;
  usage: ISessionUsage;
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

  private async _request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const settings = this.serverSettings;
    const url = URLExt.join(settings.baseUrl, API_NAMESPACE, path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, settings);
    } catch (error) {
      throw new ServerConnection.NetworkError(error as TypeError);
    }
    const text = await response.text();
    let data: any = null;
    if (text.length > 0) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      const message =
        (data && typeof data === 'object' && (data.message || data.reason || data.error)) ||
        `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, String(message));
    }
    return data as T;
  }
}
