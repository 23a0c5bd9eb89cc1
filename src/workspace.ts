/**
 * The processes view's data: GET sessions/{id}/workspace, polled every
 * POLL_MS while the sidebar is visible and a script runs (IDLE_POLL_MS while
 * the panel is open and nothing runs), and fetched once whenever the agent
 * starts or stops something.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { AgentApi, IWorkspaceState } from './api';

const POLL_MS = 2000;
/** The panel is open but nothing runs: kernel states still change, slowly. Each
 * fetch makes the server rescan the workspace's mtimes, so not every 2 s. */
const IDLE_POLL_MS = 10000;

export interface IWorkspaceView {
  state: IWorkspaceState | null;
  error: string | null;
  /** pids the user asked to interrupt, until the server reports them ended. */
  interrupting: number[];
}

export class WorkspaceModel {
  constructor(private readonly _api: AgentApi) {}

  get view(): IWorkspaceView {
    return this._view;
  }

  get changed(): ISignal<this, IWorkspaceView> {
    return this._changed;
  }

  /** Number of processes still running. */
  get running(): number {
    return this._view.state?.processes.filter(p => p.status === 'running').length ?? 0;
  }

  setSession(id: string | null): void {
    if (id === this._session) {
      return;
    }
    this._session = id;
    this._set({ state: null, error: null, interrupting: [] });
    this.poke();
  }

  /** The sidebar is shown or hidden: no polling while nobody looks. */
  setVisible(visible: boolean): void {
    this._visible = visible;
    this._schedule();
    if (visible) {
      this.poke();
    }
  }

  /** The processes panel is open: keep it fresh even when nothing runs (kernels change too). */
  setExpanded(expanded: boolean): void {
    this._expanded = expanded;
    if (expanded) {
      this.poke();
    } else {
      this._schedule();
    }
  }

  /** Fetch now (coalesced with a fetch in flight). */
  poke(): void {
    if (!this._session) {
      return;
    }
    if (this._inflight) {
      this._again = true;
      return;
    }
    void this._fetch();
  }

  async interrupt(pid: number): Promise<void> {
    const id = this._session;
    if (!id) {
      return;
    }
    this._set({ ...this._view, interrupting: [...this._view.interrupting, pid] });
    try {
      await this._api.interruptProcess(id, pid);
    } catch (error) {
      this._set({ ...this._view, error: `Could not interrupt ${pid}: ${(error as Error).message ?? error}` });
    } finally {
      this._set({ ...this._view, interrupting: this._view.interrupting.filter(p => p !== pid) });
      this.poke();
    }
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    this._session = null;
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    const id = this._session!;
    this._inflight = true;
    window.clearTimeout(this._timer);
    try {
      const state = await this._api.workspace(id);
      if (id === this._session) {
        this._set({ ...this._view, state, error: null });
      }
    } catch (error) {
      if (id === this._session) {
        this._set({ ...this._view, error: `Workspace state unavailable: ${(error as Error).message ?? error}` });
      }
    } finally {
      this._inflight = false;
      if (this._again) {
        this._again = false;
        this.poke();
      } else {
        this._schedule();
      }
    }
  }

  private _schedule(): void {
    window.clearTimeout(this._timer);
    if (this._session && this._visible && (this.running > 0 || this._expanded)) {
      this._timer = window.setTimeout(() => this.poke(), this.running > 0 ? POLL_MS : IDLE_POLL_MS);
    }
  }

  private _set(view: IWorkspaceView): void {
    this._view = view;
    this._changed.emit(view);
  }

  private _view: IWorkspaceView = { state: null, error: null, interrupting: [] };
  private _session: string | null = null;
  private _visible = false;
  private _expanded = false;
  private _inflight = false;
  private _again = false;
  private _timer = 0;
  private readonly _changed = new Signal<this, IWorkspaceView>(this);
}
