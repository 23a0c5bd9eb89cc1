/**
 * The processes view's data: GET sessions/{id}/workspace, polled every
 * POLL_MS while the sidebar is visible and a script runs (IDLE_POLL_MS while
 * the panel is open and nothing runs), and fetched once whenever the agent
 * starts or stops something. Local processes and Ray jobs come in one list;
 * a Ray job's `pid` is its job id ("ray-...").
 */
import { ISignal, Signal } from '@lumino/signaling';

import { AgentApi, IProcessState, IWorkspaceState } from './api';

/** A local process's pid, or a Ray job's id. */
export type ProcessId = number | string;

/** One row of the processes view: a local process or a Ray job (workspace/ray_jobs.py `row`). */
export interface IJobState extends IProcessState {
  target?: 'local' | 'ray';
  /** Ray's own status: PENDING RUNNING STOPPED SUCCEEDED FAILED. */
  ray_status?: string;
  message?: string;
  address?: string;
  dashboard_url?: string;
  /** The cluster's resource use: {resource: [used, total]}. */
  cluster?: Record<string, [number, number]> | null;
  /** Why the last status refresh failed (the status shown is the last one known). */
  stale?: string | null;
}

/** Statuses of something that still runs (or waits to): it can be interrupted and is polled. */
const ACTIVE = new Set(['running', 'pending', 'submitting']);

export function isActive(proc: Pick<IJobState, 'status'>): boolean {
  return ACTIVE.has(proc.status);
}

/** Every process and Ray job of the state. */
export function jobsOf(state: IWorkspaceState | null): IJobState[] {
  return state?.processes ?? [];
}

/** {CPU: [1, 8], GPU: [0, 1], memory: [...]} -> "CPU 1/8 · GPU 0/1" (counted resources only). */
export function formatCluster(cluster: IJobState['cluster']): string {
  return Object.entries(cluster ?? {})
    .filter(([name]) => name !== 'memory' && name !== 'object_store_memory')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, [used, total]]) => `${name} ${+used.toFixed(2)}/${+total.toFixed(2)}`)
    .join(' · ');
}

const POLL_MS = 2000;
/** The panel is open but nothing runs: kernel states still change, slowly. Each
 * fetch makes the server rescan the workspace's mtimes, so not every 2 s. */
const IDLE_POLL_MS = 10000;

export interface IWorkspaceView {
  state: IWorkspaceState | null;
  error: string | null;
  /** pids (and Ray job ids) the user asked to interrupt, until the server reports them ended. */
  interrupting: ProcessId[];
}

export class WorkspaceModel {
  constructor(private readonly _api: AgentApi) {}

  get view(): IWorkspaceView {
    return this._view;
  }

  get changed(): ISignal<this, IWorkspaceView> {
    return this._changed;
  }

  /** Number of processes and Ray jobs still running (or waiting to start). */
  get running(): number {
    return jobsOf(this._view.state).filter(isActive).length;
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

  async interrupt(pid: ProcessId): Promise<void> {
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
