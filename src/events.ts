/**
 * The agent's event stream and a pure reducer from events to view state.
 *
 * Every event carries a per-session, monotonically increasing `seq`. The
 * reducer drops any event whose `seq` it has already seen, so the replay a
 * server sends after a reconnect (`after_seq` = last seq seen) can never
 * duplicate a message, a token, a tool card or a member's text. Unknown event
 * types are ignored (but their `seq` is still recorded).
 *
 * The timeline is a list of blocks: agent turns, and consultations of the
 * ensemble asked directly (events with `turn_id` null). A consultation the
 * agent asked for (its ConsultEnsemble tool) hangs off that tool card.
 *
 * This module imports nothing from JupyterLab so it can be unit tested in
 * plain Node.
 */
import { attachmentsOf, IAttachment } from './attachments';
import {
  applyMember,
  applyVerdict,
  endConsultation,
  IConsultation,
  isPending,
  newConsultation
} from './ensemble';
import { IActiveRules, parseRules } from './rules';

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
  /** The editor context sent with the prompt ({notebook, cells}), if any. */
  context: Record<string, unknown> | null;
  /** The files and notebooks attached to it (as the server read them: size, note, refused). */
  attachments: IAttachment[];
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

/**
 * Approval of a code-running call: `pending` while the server waits for Run /
 * Skip; then what happened (`run`, `skip`, `timeout`, or `cancelled` when the
 * turn was stopped before anyone answered).
 */
export type ApprovalState = 'pending' | 'run' | 'skip' | 'timeout' | 'cancelled';

export interface IToolItem {
  kind: 'tool';
  seq: number;
  callId: string;
  name: string;
  arguments: unknown;
  status: ToolStatus;
  output?: unknown;
  data?: unknown;
  durationMs?: number | null;
  approval?: ApprovalState;
  /** The consultation this ConsultEnsemble call streams. */
  consultationId?: string;
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

/** A consultation shown on its own (direct, or one whose tool card we never saw). */
export interface IEnsembleItem {
  kind: 'ensemble';
  seq: number;
  consultationId: string;
}

export interface ICompactionItem {
  kind: 'compaction';
  seq: number;
  messages: number | null;
  tokensBefore: number | null;
  tokensAfter: number | null;
}

export type TurnItem =
  | IUserItem
  | ITextItem
  | IReasoningItem
  | IToolItem
  | IErrorItem
  | IQueuedItem
  | IEnsembleItem
  | ICompactionItem;

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
  /** `consultation`: a direct ensemble consultation, not an agent turn. */
  kind: 'turn' | 'consultation';
  items: TurnItem[];
  usage: ITurnUsage | null;
  /** Set by the `done` event; undefined while the turn runs. */
  done?: DoneReason;
}

/** The session's totals as the server counts them, plus the ensemble's spend since. */
export interface ISessionTotals {
  /** Main-model tokens of the whole session (the last `usage` event's session totals). */
  inputTokens: number;
  outputTokens: number;
  /** Tokens spent by ensemble members and synthesizers (from the verdicts). */
  ensembleTokens: number;
  /** The last `usage` event's `session_cost_usd` (includes earlier consultations). */
  baseCostUsd: number | null;
  /** Verdict costs since that event (the server adds them to its total at once). */
  extraCostUsd: number;
  /** Some model call had no known price: the cost is a lower bound. */
  unpriced: boolean;
  /** The model of the last main-model call. */
  model: string | null;
}

export interface IConversationState {
  /** Highest `seq` applied; the `after_seq` to resume from. */
  lastSeq: number;
  turns: ITurn[];
  consultations: Readonly<Record<string, IConsultation>>;
  totals: ISessionTotals;
  /** The session's cost so far (main model + ensemble); null before anything was spent. */
  sessionCostUsd: number | null;
  /** The rule files of the latest `rules` event (sent when the set changes). */
  rules?: IActiveRules | null;
}

export const EMPTY_TOTALS: ISessionTotals = Object.freeze({
  inputTokens: 0,
  outputTokens: 0,
  ensembleTokens: 0,
  baseCostUsd: null,
  extraCostUsd: 0,
  unpriced: false,
  model: null
}) as ISessionTotals;

export const EMPTY_STATE: IConversationState = Object.freeze({
  lastSeq: 0,
  turns: [],
  consultations: Object.freeze({}),
  totals: EMPTY_TOTALS,
  sessionCostUsd: null
}) as IConversationState;

/** The latest agent turn (direct consultations are not turns). */
export function lastAgentTurn(state: IConversationState): ITurn | undefined {
  return findLast(state.turns, t => t.kind === 'turn');
}

/** Whether an agent turn or a direct consultation is still running. */
export function isRunning(state: IConversationState): boolean {
  const last = lastAgentTurn(state);
  if (last !== undefined && last.done === undefined) {
    return true;
  }
  return Object.values(state.consultations).some(c => c.turnId === null && isPending(c));
}

/** Tool calls waiting for the user's Run / Skip, oldest first. */
export function pendingApprovals(state: IConversationState): IToolItem[] {
  const out: IToolItem[] = [];
  for (const turn of state.turns) {
    for (const item of turn.items) {
      if (item.kind === 'tool' && item.approval === 'pending') {
        out.push(item);
      }
    }
  }
  return out;
}

function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function optNum(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
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
 * mutated, only the touched turn, item and consultation are copied.
 */
export function reduce(state: IConversationState, event: IBaseEvent): IConversationState {
  if (!event || typeof event !== 'object' || typeof event.type !== 'string') {
    return state;
  }
  const seq = typeof event.seq === 'number' ? event.seq : NaN;
  if (!Number.isFinite(seq) || seq <= state.lastSeq) {
    return state; // replayed or malformed: already applied
  }
  const explicitTurn = typeof event.turn_id === 'string' && event.turn_id ? event.turn_id : null;
  // Events outside a turn (e.g. `queued`, which the server sends with turn_id
  // null while another turn runs) attach to the latest agent turn.
  const turnId = explicitTurn ?? lastAgentTurn(state)?.id ?? 'no-turn';
  const base: IConversationState = { ...state, lastSeq: seq };

  switch (event.type) {
    case 'user_message': {
      const context = event.context && typeof event.context === 'object' ? (event.context as Record<string, unknown>) : null;
      return pushItem(base, turnId, { kind: 'user', seq, text: str(event.text), context, attachments: attachmentsOf(context) });
    }
    case 'text_delta':
      return appendDelta(base, turnId, 'text', seq, str(event.text));
    case 'reasoning_delta':
      return appendDelta(base, turnId, 'reasoning', seq, str(event.text));
    case 'tool_call':
      return pushItem(base, turnId, {
        kind: 'tool',
        seq,
        callId: str(event.call_id, `call-${seq}`),
        name: str(event.name, 'tool'),
        arguments: event.arguments,
        status: 'running'
      });
    case 'approval_request':
      return updateTool(base, turnId, seq, event, tool => ({
        ...tool,
        arguments: event.arguments ?? tool.arguments,
        approval: 'pending'
      }));
    case 'tool_result':
      return updateTool(base, turnId, seq, event, tool => ({
        ...tool,
        status: event.is_error ? 'error' : 'done',
        output: event.output,
        data: event.data,
        durationMs: typeof event.duration_ms === 'number' ? event.duration_ms : null,
        approval: tool.approval === 'pending' ? resolvedApproval(event) : tool.approval
      }));
    case 'usage':
      return applyUsage(base, turnId, event);
    case 'ensemble_member':
    case 'ensemble_verdict':
      return applyEnsemble(base, explicitTurn, seq, event);
    case 'compaction':
      return pushItem(base, turnId, {
        kind: 'compaction',
        seq,
        messages: optNum(event.messages),
        tokensBefore: optNum(event.tokens_before),
        tokensAfter: optNum(event.tokens_after)
      });
    case 'error': {
      const item: IErrorItem = {
        kind: 'error',
        seq,
        message: str(event.message, 'Unknown error'),
        errorKind: typeof event.kind === 'string' ? event.kind : null,
        provider: typeof event.provider === 'string' ? event.provider : null,
        retryable: event.retryable === true
      };
      if (!explicitTurn) {
        const ended = endDirectConsultation(base, event.kind === 'cancelled' ? 'cancelled' : 'error', item);
        if (ended) {
          return ended;
        }
      }
      return pushItem(base, turnId, item);
    }
    case 'rules': {
      const rules = parseRules(event, seq);
      return rules ? { ...base, rules } : base;
    }
    case 'queued':
      return pushItem(base, turnId, { kind: 'queued', seq, text: str(event.text) });
    case 'done':
      return finishTurn(base, turnId, str(event.reason, 'completed'));
    default:
      return base; // unknown type: record seq only
  }
}

/** What a pending approval became, from the call's tool_result. */
function resolvedApproval(event: IBaseEvent): ApprovalState {
  const data = event.data as Record<string, unknown> | null | undefined;
  const decision = data && typeof data === 'object' ? data.approval : undefined;
  if (decision === 'skip' || decision === 'timeout' || decision === 'run') {
    return decision;
  }
  // A result written when the turn ended (cancelled while waiting) carries no
  // data and no duration; a call that ran waited for a human first (> 0 ms).
  if (event.is_error && !data && event.duration_ms === 0) {
    return 'cancelled';
  }
  return 'run';
}

function applyUsage(state: IConversationState, turnId: string, event: IBaseEvent): IConversationState {
  const cost = typeof event.cost_usd === 'number' ? event.cost_usd : null;
  const next = updateTurn(state, turnId, turn => {
    const prev = turn.usage;
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
  const t = state.totals;
  const sessionCost = optNum(event.session_cost_usd);
  const totals: ISessionTotals = {
    ...t,
    inputTokens: optNum(event.session_input_tokens) ?? t.inputTokens + num(event.input_tokens),
    outputTokens: optNum(event.session_output_tokens) ?? t.outputTokens + num(event.output_tokens),
    baseCostUsd: sessionCost ?? t.baseCostUsd,
    extraCostUsd: sessionCost === null ? t.extraCostUsd : 0,
    unpriced: t.unpriced || cost === null,
    model: typeof event.model === 'string' ? event.model : t.model
  };
  return withTotals(next, totals);
}

function withTotals(state: IConversationState, totals: ISessionTotals): IConversationState {
  const spent = totals.baseCostUsd !== null || totals.extraCostUsd > 0;
  return { ...state, totals, sessionCostUsd: spent ? (totals.baseCostUsd ?? 0) + totals.extraCostUsd : null };
}

function applyEnsemble(
  state: IConversationState,
  turnId: string | null,
  seq: number,
  event: IBaseEvent
): IConversationState {
  const cid = str(event.consultation_id, 'consultation');
  let next = state;
  let consultation = state.consultations[cid];
  if (!consultation) {
    consultation = newConsultation(cid, turnId, seq);
    next = turnId ? attachToTool(next, turnId, cid, seq) : addBlock(next, cid, seq);
  }
  if (event.type === 'ensemble_member') {
    consultation = applyMember(consultation, event);
  } else {
    consultation = applyVerdict(consultation, event, seq);
    const v = consultation.verdict!;
    const t = next.totals;
    next = withTotals(next, {
      ...t,
      extraCostUsd: t.extraCostUsd + (v.costUsd ?? 0),
      ensembleTokens: t.ensembleTokens + v.tokens,
      unpriced: t.unpriced || v.costUsd === null
    });
  }
  return { ...next, consultations: { ...next.consultations, [cid]: consultation } };
}

/** The agent's ConsultEnsemble call streams this consultation: link it to that tool card. */
function attachToTool(state: IConversationState, turnId: string, cid: string, seq: number): IConversationState {
  return updateTurn(state, turnId, turn => {
    const items = turn.items.slice();
    const free = (i: TurnItem): i is IToolItem => i.kind === 'tool' && i.name === 'ConsultEnsemble' && !i.consultationId;
    let index = findLastIndex(items, i => free(i) && i.status === 'running');
    if (index < 0) {
      index = findLastIndex(items, free);
    }
    if (index >= 0) {
      items[index] = { ...(items[index] as IToolItem), consultationId: cid };
    } else {
      items.push({ kind: 'ensemble', seq, consultationId: cid });
    }
    return { ...turn, items };
  });
}

function addBlock(state: IConversationState, cid: string, seq: number): IConversationState {
  const block: ITurn = {
    id: `consultation:${cid}`,
    kind: 'consultation',
    items: [{ kind: 'ensemble', seq, consultationId: cid }],
    usage: null
  };
  return { ...state, turns: [...state.turns, block] };
}

/**
 * A session-level error (turn_id null) while a direct consultation runs is that
 * consultation's end (the server sends one per cancelled or failed task): the
 * oldest pending one ends and shows the error. Null when none is pending.
 */
function endDirectConsultation(
  state: IConversationState,
  how: 'cancelled' | 'error',
  item: IErrorItem
): IConversationState | null {
  const pending = Object.values(state.consultations)
    .filter(c => c.turnId === null && isPending(c))
    .sort((a, b) => a.seq - b.seq);
  if (!pending.length) {
    return null;
  }
  const c = pending[0];
  const next = pushItem(state, `consultation:${c.id}`, item);
  return { ...next, consultations: { ...next.consultations, [c.id]: endConsultation(c, how) } };
}

function finishTurn(state: IConversationState, turnId: string, reason: string): IConversationState {
  const next = updateTurn(state, turnId, turn => ({
    ...turn,
    done: reason,
    // A cancelled or failed turn leaves no tool card spinning forever.
    items: turn.items.map(item =>
      item.kind === 'tool' && item.status === 'running'
        ? { ...item, status: 'cancelled' as const, approval: item.approval === 'pending' ? ('cancelled' as const) : item.approval }
        : item
    )
  }));
  const stale = Object.values(next.consultations).filter(c => c.turnId === turnId && isPending(c));
  if (!stale.length) {
    return next;
  }
  const consultations = { ...next.consultations };
  for (const c of stale) {
    consultations[c.id] = endConsultation(c, reason === 'cancelled' ? 'cancelled' : 'error');
  }
  return { ...next, consultations };
}

/** Update the tool card of `event.call_id`, creating it if we never saw its call (truncated history). */
function updateTool(
  state: IConversationState,
  turnId: string,
  seq: number,
  event: IBaseEvent,
  update: (tool: IToolItem) => IToolItem
): IConversationState {
  const callId = str(event.call_id);
  return updateTurn(state, turnId, turn => {
    const index = findLastIndex(turn.items, item => item.kind === 'tool' && item.callId === callId);
    const items = turn.items.slice();
    if (index >= 0) {
      items[index] = update(items[index] as IToolItem);
    } else {
      items.push(
        update({ kind: 'tool', seq, callId, name: str(event.name, 'tool'), arguments: undefined, status: 'running' })
      );
    }
    return { ...turn, items };
  });
}

function pushItem(state: IConversationState, turnId: string, item: TurnItem): IConversationState {
  return updateTurn(state, turnId, turn => ({ ...turn, items: [...turn.items, item] }));
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
    turns.push(update({ id: turnId, kind: 'turn', items: [], usage: null }));
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

function findLast<T>(array: readonly T[], predicate: (value: T) => boolean): T | undefined {
  const index = findLastIndex(array, predicate);
  return index >= 0 ? array[index] : undefined;
}
