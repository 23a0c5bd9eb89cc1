/**
 * The sidebar's controller: server status, the session list, the current
 * session, its event stream and the reduced conversation, the prompt's
 * attached context and mode. React components only read `state` and call the
 * methods here; the commands call them too.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { AgentApi, ApiError, ISession, IStatus } from './api';
import {
  addAttachment,
  attachmentsFull,
  IAttachActions,
  IAttachedContext,
  IAttachment,
  INotebookOffer,
  MAX_ATTACHMENTS,
  removeAttachment,
  wireContext
} from './attachments';
import { contextAsText } from './context';
import { EMPTY_STATE, IBaseEvent, IConversationState, isRunning, reduceAll } from './events';
import { IActiveRules, parseRules } from './rules';
import { ConnectionStatus, SessionStream } from './stream';
import { DEFAULT_SETTINGS, IAgentSettings, IPromptContext } from './tokens';
import { WorkspaceModel } from './workspace';

export type Phase = 'idle' | 'loading' | 'setup' | 'ready' | 'error';

/** What Send does: prompt the agent, or ask the ensemble directly. */
export type ComposeMode = 'agent' | 'ensemble';

export interface IAgentViewState {
  phase: Phase;
  status: IStatus | null;
  /** Why the status or session could not be loaded (phase 'error'), or a banner. */
  error: string | null;
  session: ISession | null;
  /** Every session of the server, most recently updated first. */
  sessions: ISession[];
  conversation: IConversationState;
  connection: ConnectionStatus;
  connectionDetail: string | null;
  /** A cancel was sent and the turn has not finished yet. */
  stopping: boolean;
  /** A prompt sent while the server had not echoed any event yet. */
  awaitingEcho: boolean;
  /** Context attached by a command ("ask about the selected cells") and the attachments (chips), sent with the next request. */
  context: IAttachedContext | null;
  /** The current notebook and its selected cells, for the prompt's one-click attach buttons. */
  notebookOffer: INotebookOffer | null;
  mode: ComposeMode;
  /** Decisions sent for approval requests, until their tool_result arrives. */
  approvalsSent: Readonly<Record<string, 'run' | 'skip'>>;
  settings: IAgentSettings;
  /** The session's rule files (REST when it opens, then each live `rules` event). */
  rules: IActiveRules | null;
}

const STORAGE_PREFIX = 'jupyterlab-ide-agent:last-session:';
const DEFAULT_TITLE = 'New session';

export class AgentModel {
  constructor(readonly api: AgentApi = new AgentApi()) {
    this._storageKey = STORAGE_PREFIX + api.serverSettings.baseUrl;
    this.workspace = new WorkspaceModel(api);
  }

  readonly workspace: WorkspaceModel;

  /** The prompt box's `@` completion and chips: files from the server, attachments kept in `state.context`. */
  readonly attach: IAttachActions = {
    search: query => this.api.searchFiles(query),
    add: attachment => {
      const list = this._state.context?.attachments ?? [];
      if (attachmentsFull(list, attachment)) {
        const error = `At most ${MAX_ATTACHMENTS} attachments per message: remove one to attach ${attachment.path}.`;
        this._update({ error });
        return;
      }
      this._setAttachments(addAttachment(list, attachment));
    },
    remove: attachment => this._setAttachments(removeAttachment(this._state.context?.attachments ?? [], attachment))
  };

  /** Opens a root-relative path in JupyterLab (the plugin sets it: `docmanager:open`); null: not clickable. */
  openFile: ((path: string) => void) | null = null;

  get state(): IAgentViewState {
    return this._state;
  }

  get stateChanged(): ISignal<this, IAgentViewState> {
    return this._stateChanged;
  }

  /** Whether a turn or a direct consultation is running in the current session. */
  get running(): boolean {
    const s = this._state;
    if (s.conversation.lastSeq === 0 && s.session?.running) {
      return true; // replay not received yet
    }
    return isRunning(s.conversation) || s.awaitingEcho;
  }

  get ready(): boolean {
    return this._state.phase === 'ready' && this._stream !== null;
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
      const message =
        error instanceof ApiError && error.status === 404
          ? 'The IDE Agent server extension is not enabled (404). Run `jupyter server extension enable jupyterlab_ide_agent` and restart the server.'
          : describe(error, 'Could not reach the IDE Agent server extension');
      this._update({ phase: 'error', error: message });
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

  // --- sessions ------------------------------------------------------------------------------
  async refreshSessions(): Promise<void> {
    try {
      const sessions = await this.api.listSessions();
      this._update({ sessions });
    } catch (error) {
      this._update({ error: describe(error, 'Could not list the sessions') });
    }
  }

  /** Start a fresh conversation. */
  async newSession(): Promise<void> {
    if (!(await this._ensureReady())) {
      return;
    }
    try {
      this._attach(await this.api.createSession());
      await this.refreshSessions();
    } catch (error) {
      this._update({ error: describe(error, 'Could not create a session') });
    }
  }

  async switchSession(id: string): Promise<void> {
    if (this._state.session?.id === id) {
      return;
    }
    try {
      this._attach(await this.api.getSession(id));
    } catch (error) {
      this._update({ error: describe(error, 'Could not open the session') });
      await this.refreshSessions();
    }
  }

  async renameSession(id: string, title: string): Promise<void> {
    const trimmed = title.trim();
    if (!trimmed) {
      return;
    }
    try {
      const renamed = await this.api.renameSession(id, trimmed);
      this._update({
        session: this._state.session?.id === id ? { ...this._state.session, title: renamed.title } : this._state.session,
        sessions: this._state.sessions.map(s => (s.id === id ? { ...s, title: renamed.title } : s))
      });
    } catch (error) {
      this._update({ error: describe(error, 'Could not rename the session') });
    }
  }

  /** Delete a session (its scripts stop); deleting the current one opens the next or a new one. */
  async deleteSession(id: string): Promise<void> {
    const current = this._state.session?.id === id ? this._state.session : null;
    if (current) {
      // The server closes the session's sockets as it deletes it: close ours
      // first, so that close is not taken for a lost session to replace.
      this._closeStream();
    }
    try {
      await this.api.deleteSession(id);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        this._update({ error: describe(error, 'Could not delete the session') });
        if (current) {
          this._attach(current);
        }
        return;
      }
    }
    const rest = this._state.sessions.filter(s => s.id !== id);
    this._update({ sessions: rest });
    if (current) {
      try {
        this._attach(rest.length ? await this.api.getSession(rest[0].id) : await this.api.createSession());
      } catch (error) {
        this._update({ phase: 'error', error: describe(error, 'Could not open a session') });
      }
    }
    await this.refreshSessions();
  }

  // --- requests --------------------------------------------------------------------------------
  /** Send what the prompt box holds (with the attached context) to the agent or the ensemble. */
  submit(text: string, mode: ComposeMode = this._state.mode): boolean {
    const context = this._state.context ?? undefined;
    const sent = mode === 'ensemble' ? this.consult(text, context) : this.prompt(text, context);
    if (sent) {
      this._update({ context: null, mode: 'agent' });
    }
    return sent;
  }

  /** Prompt the agent; `context` ({notebook, cells, ...}) travels with it. */
  prompt(text: string, context?: IPromptContext): boolean {
    const trimmed = text.trim();
    if (!trimmed || !this._stream) {
      return false;
    }
    const { settings } = this._state;
    const message: Record<string, unknown> = { type: 'prompt', text: trimmed, approval_mode: settings.approvalMode };
    const wire = wireContext(context);
    if (wire) {
      message.context = wire;
    }
    if (settings.mainModel) {
      message.model = settings.mainModel;
    }
    this._stream.send(message as { type: 'prompt' });
    this._update({ awaitingEcho: true, error: null });
    this._autoTitle(trimmed);
    return true;
  }

  /** Ask the ensemble directly (not through the agent); false when the setting turns it off. */
  consult(question: string, context?: IPromptContext): boolean {
    const trimmed = question.trim();
    if (!trimmed || !this._stream || !this._state.settings.ensemble) {
      return false;
    }
    const message: Record<string, unknown> = { type: 'ensemble', question: trimmed };
    const text = contextAsText(context);
    if (text) {
      message.context = text;
    }
    this._stream.send(message as { type: 'ensemble' });
    this._sentQuestions.push(trimmed);
    this._update({ error: null });
    this._autoTitle(trimmed);
    return true;
  }

  /** Answer an approval_request: the server runs or skips the call. */
  approve(callId: string, decision: 'run' | 'skip'): void {
    if (!this._stream) {
      return;
    }
    this._stream.send({ type: 'approval', call_id: callId, decision });
    this._update({ approvalsSent: { ...this._state.approvalsSent, [callId]: decision } });
  }

  cancel(): void {
    if (this._stream && this.running) {
      this._stream.send({ type: 'cancel' });
      this._update({ stopping: true });
    }
  }

  /** Set (or clear, with null) the command's context; the attachments (chips) stay. */
  attachContext(context: IPromptContext | null, mode: ComposeMode = this._state.mode): void {
    const attachments = this._state.context?.attachments;
    const next: IAttachedContext | null = attachments?.length ? { ...(context ?? {}), attachments } : context;
    this._update({ context: next, mode: mode === 'ensemble' && !this._state.settings.ensemble ? 'agent' : mode });
  }

  /** The current notebook and its selected cells changed (the plugin follows the notebook tracker). */
  setNotebookOffer(offer: INotebookOffer | null): void {
    const now = this._state.notebookOffer;
    const same =
      now === offer ||
      (now !== null && offer !== null && now.path === offer.path && now.firstIndex === offer.firstIndex &&
        now.cellIds.join() === offer.cellIds.join());
    if (!same) {
      this._update({ notebookOffer: offer });
    }
  }

  setMode(mode: ComposeMode): void {
    this._update({ mode: mode === 'ensemble' && !this._state.settings.ensemble ? 'agent' : mode });
  }

  /** Re-read the rule files the session's next turn will use (the header's "Rules" indicator). */
  async refreshRules(): Promise<void> {
    const id = this._state.session?.id;
    if (!id) {
      return;
    }
    try {
      const rules = parseRules(await this.api.rules(id));
      if (this._state.session?.id === id) {
        this._update({ rules });
      }
    } catch {
      // a server without the rules route: no indicator
    }
  }

  reconnect(): void {
    this._stream?.reconnectNow();
  }

  dismissError(): void {
    this._update({ error: null });
  }

  setSettings(settings: Partial<IAgentSettings>): void {
    const next = { ...this._state.settings, ...settings };
    this._update({ settings: next, mode: next.ensemble ? this._state.mode : 'agent' });
  }

  /** Wait until a session is open (opening the sidebar's first session if needed). */
  async whenReady(): Promise<boolean> {
    await this.start();
    return this._ensureReady();
  }

  dispose(): void {
    this._closeStream();
    this.workspace.dispose();
    Signal.clearData(this);
  }

  // --- internals -------------------------------------------------------------------------------
  private async _ensureReady(): Promise<boolean> {
    if (this._state.phase !== 'ready') {
      await this.refresh();
    }
    return (this._state.phase as Phase) === 'ready';
  }

  /** A session still called "New session" takes its first request's opening words as its title. */
  private _autoTitle(text: string): void {
    const session = this._state.session;
    if (!session || session.title !== DEFAULT_TITLE || this._state.conversation.turns.length > 0) {
      return;
    }
    const line = text.split('\n')[0];
    const title = line.length > 60 ? `${line.slice(0, 57).trimEnd()}…` : line;
    void this.renameSession(session.id, title);
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
    void this.refreshSessions();
  }

  private _attach(session: ISession): void {
    this._closeStream();
    writeStorage(this._storageKey, session.id);
    this._sentQuestions = [];
    this._update({
      phase: 'ready',
      error: null,
      session,
      conversation: EMPTY_STATE,
      stopping: false,
      awaitingEcho: false,
      approvalsSent: {},
      rules: null
    });
    this.workspace.setSession(session.id);
    void this.refreshRules();
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
          void this.refreshSessions();
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
    const before = this._state.conversation;
    let conversation = reduceAll(before, mine);
    if (conversation === before) {
      return;
    }
    conversation = this._nameDirectConsultations(before, conversation);
    const running = isRunning(conversation);
    const echoed = mine.some(e => e.type === 'user_message' || e.type === 'queued' || e.type === 'error');
    const approvalsSent = { ...this._state.approvalsSent };
    for (const e of mine) {
      if (e.type === 'tool_result' && typeof e.call_id === 'string') {
        delete approvalsSent[e.call_id];
      }
    }
    // replayed `rules` events (seq up to the session's when it opened) are older than the REST answer
    const rules = conversation.rules;
    const liveRules = rules && rules !== before.rules && rules.seq > (this._state.session?.last_seq ?? 0);
    this._update({
      conversation,
      approvalsSent,
      rules: liveRules ? rules : this._state.rules,
      stopping: running ? this._state.stopping : false,
      awaitingEcho: echoed ? false : this._state.awaitingEcho
    });
    if (mine.some(e => e.type === 'tool_result' || e.type === 'done')) {
      this.workspace.poke(); // a script started or ended, a kernel ran
    }
  }

  /**
   * Member events do not carry the question (only the verdict does): a direct
   * consultation that just appeared takes the oldest question this client sent
   * and has not matched yet, so its block is titled while it runs.
   */
  private _nameDirectConsultations(before: IConversationState, after: IConversationState): IConversationState {
    let consultations = after.consultations;
    for (const c of Object.values(after.consultations)) {
      if (c.turnId !== null || before.consultations[c.id]) {
        continue;
      }
      const sent = this._sentQuestions.shift();
      if (sent && !c.question) {
        consultations = { ...consultations, [c.id]: { ...c, question: sent } };
      }
    }
    return consultations === after.consultations ? after : { ...after, consultations };
  }

  private _setAttachments(attachments: IAttachment[]): void {
    const { attachments: _old, ...rest } = this._state.context ?? {};
    const context: IAttachedContext = attachments.length ? { ...rest, attachments } : rest;
    this._update({ context: Object.keys(context).length ? context : null });
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
    sessions: [],
    conversation: EMPTY_STATE,
    connection: 'closed',
    connectionDetail: null,
    stopping: false,
    awaitingEcho: false,
    context: null,
    notebookOffer: null,
    mode: 'agent',
    approvalsSent: {},
    settings: DEFAULT_SETTINGS,
    rules: null
  };
  private _stream: SessionStream | null = null;
  private _checking = false;
  private _sentQuestions: string[] = [];
  private readonly _storageKey: string;
  private readonly _stateChanged = new Signal<this, IAgentViewState>(this);
}

function describe(error: unknown, prefix: string): string {
  if (error instanceof ApiError) {
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
