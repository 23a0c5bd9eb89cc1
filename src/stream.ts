/**
 * One session's WebSocket: connects with `after_seq`, reconnects with backoff
 * resuming after the last `seq` the caller has seen, queues outgoing messages
 * while the socket is down.
 */
import { IBaseEvent } from './events';

export type ConnectionStatus = 'connecting' | 'open' | 'closed';

export interface IClientMessage {
  type: 'prompt' | 'cancel' | string;
  [key: string]: unknown;
}

export interface IStreamOptions {
  /** Build the URL for a (re)connection resuming after `afterSeq`. */
  url: (afterSeq: number) => string;
  /** The highest seq the caller has applied (read at each reconnection). */
  lastSeq: () => number;
  onEvents: (events: IBaseEvent[]) => void;
  onStatus: (status: ConnectionStatus, detail?: string) => void;
  /** The WebSocket constructor (ServerConnection settings provide one). */
  WebSocket?: typeof WebSocket;
}

const MAX_BACKOFF_MS = 10000;

export class SessionStream {
  constructor(private readonly _options: IStreamOptions) {
    this._connect();
  }

  get status(): ConnectionStatus {
    return this._status;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Send now if open, otherwise as soon as the socket (re)opens. */
  send(message: IClientMessage): void {
    const data = JSON.stringify(message);
    if (this._ws && this._ws.readyState === WebSocket.OPEN) {
      this._ws.send(data);
    } else {
      this._pending.push(data);
      if (this._status === 'closed') {
        this.reconnectNow();
      }
    }
  }

  /** Skip the backoff wait (e.g. the user pressed "Reconnect"). */
  reconnectNow(): void {
    if (this._disposed || (this._ws && this._ws.readyState <= WebSocket.OPEN)) {
      return;
    }
    window.clearTimeout(this._timer);
    this._connect();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    window.clearTimeout(this._timer);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close();
    }
    this._pending = [];
  }

  private _setStatus(status: ConnectionStatus, detail?: string): void {
    this._status = status;
    this._options.onStatus(status, detail);
  }

  private _connect(): void {
    if (this._disposed) {
      return;
    }
    this._setStatus('connecting');
    const Ctor = this._options.WebSocket ?? WebSocket;
    let ws: WebSocket;
    try {
      ws = new Ctor(this._options.url(this._options.lastSeq()));
    } catch (error) {
      this._scheduleReconnect(String(error));
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      this._attempt = 0;
      this._setStatus('open');
      const pending = this._pending;
      this._pending = [];
      for (const data of pending) {
        ws.send(data);
      }
    };
    ws.onmessage = (msg: MessageEvent) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(String(msg.data));
      } catch {
        return; // not JSON: ignore
      }
      const events = (Array.isArray(parsed) ? parsed : [parsed]).filter(
        (e): e is IBaseEvent => !!e && typeof e === 'object' && typeof (e as IBaseEvent).type === 'string'
      );
      if (events.length) {
        this._options.onEvents(events);
      }
    };
    ws.onclose = (event: CloseEvent) => {
      if (this._ws !== ws) {
        return;
      }
      this._ws = null;
      const detail = event.reason || (event.code !== 1000 ? `code ${event.code}` : undefined);
      this._scheduleReconnect(detail);
    };
    ws.onerror = () => {
      // onclose follows and schedules the reconnection.
    };
  }

  private _scheduleReconnect(detail?: string): void {
    if (this._disposed) {
      return;
    }
    this._setStatus('closed', detail);
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this._attempt) * (0.75 + Math.random() * 0.5);
    this._attempt += 1;
    this._timer = window.setTimeout(() => this._connect(), delay);
  }

  private _ws: WebSocket | null = null;
  private _status: ConnectionStatus = 'connecting';
  private _pending: string[] = [];
  private _attempt = 0;
  private _timer = 0;
  private _disposed = false;
}
