/**
 * The sidebar's controller: server status, the current session, its event
 * stream and the reduced conversation. React components only read `state`
 * and call the methods here.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { AgentApi, ApiError, ISession, IStatus } from './api';
import { EMPTY_STATE, IBaseEvent, IConversationState, isRunning, reduceAll } from './events';
import { ConnectionStatus, SessionStream } from './stream';
import { DEFAULT_SETTINGS, IAgentSettings } from './tokens';

export type Phase = 'idle' | 'loading' | 'setup' | 'ready' | 'error';

export interface IAgentViewState {
  phase: Phase;
  status: IStatus | null;
  /** Why the status or session could not be loaded (phase 'error'). */
  error: string | null;
  session: ISession | null;
  conversation: IConversationState;
  connection: ConnectionStatus;
  connectionDetail: string | null;
  /** A cancel was sent and the turn has not finished yet. */
  stopping: boolean;
  /** A prompt sent while the server had not echoed any event yet. */
  awaitingEcho: boolean;
  settings: IAgentSettings;
}

const STORAGE_PREFIX = 'jupyterlab-ide-agent:last-session:';

export class AgentModel {
  constructor(readonly api: AgentApi = new AgentApi()) {
    this._storageKey = STORAGE_PREFIX + api.serverSettings.baseUrl;
  }

  get state(): IAgentViewState {
    return this._state;
  }

  get stateChanged(): ISignal<this, IAgentViewState> {
    return this._stateChanged;
  }

  /** Whether a turn is running in the current session. */
  get running(): boolean {
    const s = this._state;
    if (s.conversation.lastSeq === 0 && s.session?.running) {
      return true; // replay not received yet
    }
    return isRunning(s.conversation) || s.awaitingEcho;
  }

  /** Load the status and, when ready, the last session (first open of the sidebar). */
  async start(): Promise<void> {
    if (this._state.phase === 'idle') {
      await this.refresh();
    }
  }

  /** Re-read the status; (re)open a session when the server is ready. */
  async refresh(): Promise<void> {
    this._update({ phase: 'loading', error: null });
    let status: IStatus;
    try {
      status = await this.api.status();
    } catch (error) {
      this._update({ phase: 'error', error: describe(error, 'Could not reach the IDE Agent server extension') });
      return;
    }
    if (!status.ready) {
      this._closeStream();
      this._update({ phase: 'setup', status });
      return;
    }
    this._update({ status });
    if (this._state.session && this._stream && !this._stream.isDisposed) {
      this._update({ phase: 'ready' });
      return;
    }
    await this._openLastSession();
  }

  /** Start a fresh conversation. */
  async newSession(): Promise<void> {
    if (this._state.phase !== 'ready') {
      await this.refresh();
      if ((this._state.phase as Phase) !== 'ready') {
        return;
      }
    }
    try {
      this._attach(await this.api.createSession());
    } catch (error) {
      this._update({ error: describe(error, 'Could not create a session') });
    }
  }

  sendPrompt(text: string): boolean {
    const trimmed = text.trim();
    if (!trimmed || !this._stream) {
      return false;
    }
    const message: Record<string, unknown> = { type: 'prompt', text: trimmed };
    if (this._state.settings.mainModel) {
      message.model = this._state.settings.mainModel;
    }
    this._stream.send(message as { type: 'prompt' });
    this._update({ awaitingEcho: true, error: null });
    return true;
  }

  cancel(): void {
    if (this._stream && this.running) {
      this._stream.send({ type: 'cancel' });
      this._update({ stopping: true });
    }
  }

  reconnect(): void {
    this._stream?.reconnectNow();
  }

  dismissError(): void {
    this._update({ error: null });
  }

  setSettings(settings: Partial<IAgentSettings>): void {
    this._update({ settings: { ...this._state.settings, ...settings } });
  }

  dispose(): void {
    this._closeStream();
    Signal.clearData(this);
  }

  private async _openLastSession(): Promise<void> {
    const lastId = readStorage(this._storageKey);
    let session: ISession | null = null;
    try {
      if (lastId) {
        try {
          session = await this.api.getSession(lastId);
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 404)) {
            throw error;
          }
        }
      }
      session = session ?? (await this.api.createSession());
    } catch (error) {
      this._update({ phase: 'error', error: describe(error, 'Could not open a session') });
      return;
    }
    this._attach(session);
  }

  private _attach(session: ISession): void {
    this._closeStream();
    writeStorage(this._storageKey, session.id);
    this._update({
      phase: 'ready',
      error: null,
      session,
      conversation: EMPTY_STATE,
      stopping: false,
      awaitingEcho: false
    });
    this._stream = new SessionStream({
      url: afterSeq => this.api.streamUrl(session.id, afterSeq),
      lastSeq: () => this._state.conversation.lastSeq,
      WebSocket: this.api.serverSettings.WebSocket,
      onEvents: events => this._onEvents(session.id, events),
      onStatus: (connection, detail) => {
        this._update({ connection, connectionDetail: detail ?? null });
        if (connection === 'closed') {
          void this._checkSessionStillExists(session.id);
        }
      }
    });
  }

  /**
   * After a dropped socket: if the server no longer knows the session (it was
   * deleted, or the server restarted without it), start a new one instead of
   * reconnecting forever.
   */
  private async _checkSessionStillExists(id: string): Promise<void> {
    if (this._checking) {
      return;
    }
    this._checking = true;
    try {
      await this.api.getSession(id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && this._state.session?.id === id) {
        try {
          this._attach(await this.api.createSession());
          this._update({ error: 'The server no longer had the previous session; this is a new one.' });
        } catch (createError) {
          this._update({ error: describe(createError, 'Could not create a session') });
        }
      }
      // other errors (server down): keep reconnecting
    } finally {
      this._checking = false;
    }
  }

  private _onEvents(sessionId: string, events: IBaseEvent[]): void {
    if (this._state.session?.id !== sessionId) {
      return;
    }
    const mine = events.filter(e => !e.session_id || e.session_id === sessionId);
    // A protocol error meant for this client only (e.g. a refused prompt) has no
    // seq: it is not part of the session's log, so show it as a banner.
    const rejected = mine.find(e => e.type === 'error' && typeof e.seq !== 'number');
    if (rejected) {
      this._update({ error: String(rejected.message ?? 'The server refused the message.'), awaitingEcho: false });
    }
    const conversation = reduceAll(this._state.conversation, mine);
    if (conversation === this._state.conversation) {
      return;
    }
    const running = isRunning(conversation);
    const echoed = mine.some(e => e.type === 'user_message' || e.type === 'queued' || e.type === 'error');
    this._update({
      conversation,
      stopping: running ? this._state.stopping : false,
      awaitingEcho: echoed ? false : this._state.awaitingEcho,
      session: this._state.session
    });
  }

  private _closeStream(): void {
    this._stream?.dispose();
    this._stream = null;
  }

  private _update(patch: Partial<IAgentViewState>): void {
    this._state = { ...this._state, ...patch };
    this._stateChanged.emit(this._state);
  }

  private _state: IAgentViewState = {
    phase: 'idle',
    status: null,
    error: null,
    session: null,
    conversation: EMPTY_STATE,
    connection: 'closed',
    connectionDetail: null,
    stopping: false,
    awaitingEcho: false,
    settings: DEFAULT_SETTINGS
  };
  private _stream: SessionStream | null = null;
  private _checking = false;
  private readonly _storageKey: string;
  private readonly _stateChanged = new Signal<this, IAgentViewState>(this);
}

function describe(error: unknown, prefix: string): string {
  if (error instanceof ApiError) {
    if (error.status === 404) {
      return `${prefix}: the server extension is not enabled (404). Run \`jupyter server extension enable jupyterlab_ide_agent\` and restart.`;
    }
    return `${prefix}: ${error.message}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `${prefix}: ${message}`;
}

function readStorage(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeStorage(key: string, value: string): void {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // private mode or quota: the session is simply not remembered
  }
}
