/**
 * The agent's event stream and a pure reducer from events to view state.
 *
 * Every event carries a per-session, monotonically increasing `seq`. The
 * reducer drops any event whose `seq` it has already seen, so the replay a
 * server sends after a reconnect (`after_seq` = last seq seen) can never
 * duplicate a message, a token or a tool card. Unknown event types are
 * ignored (but their `seq` is still recorded).
 *
 * This module imports nothing from JupyterLab so it can be unit tested in
 * plain Node.
 */

export interface IBaseEvent {
  type: string;
  session_id?: string;
  seq: number;
  turn_id?: string | null;
  ts?: number | string;
  [key: string]: unknown;
}

export type DoneReason = 'completed' | 'cancelled' | 'error' | 'max_steps' | string;

export interface IUserItem {
  kind: 'user';
  seq: number;
  text: string;
}

export interface ITextItem {
  kind: 'text';
  seq: number;
  text: string;
}

export interface IReasoningItem {
  kind: 'reasoning';
  seq: number;
  text: string;
}

export type ToolStatus = 'running' | 'done' | 'error' | 'cancelled';

export interface IToolItem {
  kind: 'tool';
  seq: number;
  callId: string;
  name: string;
  arguments: unknown;
  status: ToolStatus;
  output?: unknown;
  durationMs?: number | null;
}

export interface IErrorItem {
  kind: 'error';
  seq: number;
  message: string;
  errorKind?: string | null;
  provider?: string | null;
  retryable?: boolean;
}

export interface IQueuedItem {
  kind: 'queued';
  seq: number;
  text: string;
}

export type TurnItem = IUserItem | ITextItem | IReasoningItem | IToolItem | IErrorItem | IQueuedItem;

/** Token and cost totals of one turn (summed over its model calls). */
export interface ITurnUsage {
  inputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  cachedTokens: number;
  /** null when at least one call had no known price. */
  costUsd: number | null;
  model: string | null;
  calls: number;
}

export interface ITurn {
  id: string;
  items: TurnItem[];
  usage: ITurnUsage | null;
  /** Set by the `done` event; undefined while the turn runs. */
  done?: DoneReason;
}

export interface IConversationState {
  /** Highest `seq` applied; the `after_seq` to resume from. */
  lastSeq: number;
  turns: ITurn[];
  /** From the last `usage` event that carried it. */
  sessionCostUsd: number | null;
}

export const EMPTY_STATE: IConversationState = Object.freeze({
  lastSeq: 0,
  turns: [],
  sessionCostUsd: null
}) as IConversationState;

/** Whether the last turn is still running (it started and has no `done`). */
export function isRunning(state: IConversationState): boolean {
  const last = state.turns[state.turns.length - 1];
  return last !== undefined && last.done === undefined;
}

function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** Apply many events in order (used for history pages and batched socket frames). */
export function reduceAll(state: IConversationState, events: Iterable<IBaseEvent>): IConversationState {
  let next = state;
  for (const event of events) {
    next = reduce(next, event);
  }
  return next;
}

/**
 * Apply one event. Returns `state` itself when the event changes nothing
 * (already seen, malformed), otherwise a new state object; the input is never
 * mutated, only the touched turn and item are copied.
 */
export function reduce(state: IConversationState, event: IBaseEvent): IConversationState {
  if (!event || typeof event !== 'object' || typeof event.type !== 'string') {
    return state;
  }
  const seq = typeof event.seq === 'number' ? event.seq : NaN;
  if (!Number.isFinite(seq) || seq <= state.lastSeq) {
    return state; // replayed or malformed: already applied
  }
  // Events outside a turn (e.g. `queued`, which the server sends with turn_id
  // null while another turn runs) attach to the latest turn.
  const latest = state.turns[state.turns.length - 1];
  const turnId =
    typeof event.turn_id === 'string' && event.turn_id ? event.turn_id : latest ? latest.id : 'no-turn';
  const base: IConversationState = { ...state, lastSeq: seq };

  switch (event.type) {
    case 'user_message':
      return updateTurn(base, turnId, turn => ({
        ...turn,
        items: [...turn.items, { kind: 'user', seq, text: str(event.text) }]
      }));
    case 'text_delta':
      return appendDelta(base, turnId, 'text', seq, str(event.text));
    case 'reasoning_delta':
      return appendDelta(base, turnId, 'reasoning', seq, str(event.text));
    case 'tool_call': {
      const callId = str(event.call_id, `call-${seq}`);
      return updateTurn(base, turnId, turn => ({
        ...turn,
        items: [
          ...turn.items,
          {
            kind: 'tool',
            seq,
            callId,
            name: str(event.name, 'tool'),
            arguments: event.arguments,
            status: 'running'
          }
        ]
      }));
    }
    case 'tool_result': {
      const callId = str(event.call_id);
      return updateTurn(base, turnId, turn => {
        const index = findLastIndex(turn.items, item => item.kind === 'tool' && item.callId === callId);
        const result: Partial<IToolItem> = {
          status: event.is_error ? 'error' : 'done',
          output: event.output,
          durationMs: typeof event.duration_ms === 'number' ? event.duration_ms : null
        };
        const items = turn.items.slice();
        if (index >= 0) {
          items[index] = { ...(items[index] as IToolItem), ...result };
        } else {
          // A result whose call we never saw (e.g. history truncated): still show it.
          items.push({
            kind: 'tool',
            seq,
            callId,
            name: str(event.name, 'tool'),
            arguments: undefined,
            status: 'running',
            ...result
          });
        }
        return { ...turn, items };
      });
    }
    case 'usage': {
      const sessionCost = typeof event.session_cost_usd === 'number' ? event.session_cost_usd : base.sessionCostUsd;
      const next = updateTurn(base, turnId, turn => {
        const prev = turn.usage;
        const cost = typeof event.cost_usd === 'number' ? event.cost_usd : null;
        const usage: ITurnUsage = {
          inputTokens: (prev?.inputTokens ?? 0) + num(event.input_tokens),
          outputTokens: (prev?.outputTokens ?? 0) + num(event.output_tokens),
          reasoningTokens: (prev?.reasoningTokens ?? 0) + num(event.reasoning_tokens),
          cachedTokens: (prev?.cachedTokens ?? 0) + num(event.cached_tokens),
          costUsd: prev && prev.costUsd === null ? null : cost === null ? null : (prev?.costUsd ?? 0) + cost,
          model: typeof event.model === 'string' ? event.model : (prev?.model ?? null),
          calls: (prev?.calls ?? 0) + 1
        };
        return { ...turn, usage };
      });
      return { ...next, sessionCostUsd: sessionCost };
    }
    case 'error':
      return updateTurn(base, turnId, turn => ({
        ...turn,
        items: [
          ...turn.items,
          {
            kind: 'error',
            seq,
            message: str(event.message, 'Unknown error'),
            errorKind: typeof event.kind === 'string' ? event.kind : null,
            provider: typeof event.provider === 'string' ? event.provider : null,
            retryable: event.retryable === true
          }
        ]
      }));
    case 'queued':
      return updateTurn(base, turnId, turn => ({
        ...turn,
        items: [...turn.items, { kind: 'queued', seq, text: str(event.text) }]
      }));
    case 'done':
      return updateTurn(base, turnId, turn => ({
        ...turn,
        done: str(event.reason, 'completed'),
        // A cancelled or failed turn leaves no tool card spinning forever.
        items: turn.items.map(item =>
          item.kind === 'tool' && item.status === 'running' ? { ...item, status: 'cancelled' as const } : item
        )
      }));
    default:
      return base; // unknown type (ensemble_member, compaction...): record seq only
  }
}

function appendDelta(
  state: IConversationState,
  turnId: string,
  kind: 'text' | 'reasoning',
  seq: number,
  text: string
): IConversationState {
  if (!text) {
    return state;
  }
  return updateTurn(state, turnId, turn => {
    const items = turn.items.slice();
    const last = items[items.length - 1];
    if (last && last.kind === kind) {
      items[items.length - 1] = { ...last, text: last.text + text };
    } else {
      items.push({ kind, seq, text });
    }
    return { ...turn, items };
  });
}

function updateTurn(
  state: IConversationState,
  turnId: string,
  update: (turn: ITurn) => ITurn
): IConversationState {
  const index = findLastIndex(state.turns, turn => turn.id === turnId);
  const turns = state.turns.slice();
  if (index >= 0) {
    turns[index] = update(turns[index]);
  } else {
    turns.push(update({ id: turnId, items: [], usage: null }));
  }
  return { ...state, turns };
}

function findLastIndex<T>(array: readonly T[], predicate: (value: T) => boolean): number {
  for (let i = array.length - 1; i >= 0; i--) {
    if (predicate(array[i])) {
      return i;
    }
  }
  return -1;
}
