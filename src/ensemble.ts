/**
 * The ensemble's view state: one consultation = its members' live state, the
 * synthesizer's, then the verdict. Pure functions over `ensemble_member` and
 * `ensemble_verdict` events (see jupyterlab_ide_agent/ensemble/stream.py and
 * consult.py); no JupyterLab imports, unit tested in plain Node.
 *
 * Per member the server guarantees: `started`, then `reasoning` / `text`
 * deltas, then exactly one `finished` or `failed`, nothing after it.
 */

export const SYNTHESIZER = 'synthesizer';

/** What a member card shows. `stopped`: the consultation ended (cancelled) before it finished. */
export type MemberPhase = 'started' | 'thinking' | 'answering' | 'finished' | 'failed' | 'stopped';

export interface IMemberUsage {
  inputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

export interface IMember {
  name: string;
  model: string | null;
  phase: MemberPhase;
  reasoning: string;
  text: string;
  usage: IMemberUsage | null;
  costUsd: number | null;
  reason: string | null;
  wallTimeS: number | null;
  timeoutS: number | null;
}

export interface IVerdict {
  seq: number;
  /** ok (synthesized) | degraded (synthesizer failed: the plan is the members' answers) | failed */
  status: string;
  question: string | null;
  plan: string;
  agreements: string[];
  disagreements: string[];
  missing: { name: string; reason: string | null }[];
  costUsd: number | null;
  wallTimeS: number | null;
  note: string | null;
  error: string | null;
  synthesizerModel: string | null;
  /** Tokens of every member and the synthesizer together. */
  tokens: number;
}

export interface IConsultation {
  id: string;
  /** null for a consultation asked directly (not by the agent's ConsultEnsemble tool). */
  turnId: string | null;
  seq: number;
  question: string | null;
  /** Members in the order they first appeared (the synthesizer is kept apart). */
  members: IMember[];
  synthesizer: IMember | null;
  verdict: IVerdict | null;
  /** Set when it ended without a verdict (cancelled, or a server error). */
  ended: 'cancelled' | 'error' | null;
}

const FINAL: ReadonlySet<MemberPhase> = new Set<MemberPhase>(['finished', 'failed', 'stopped']);

export function isFinal(phase: MemberPhase): boolean {
  return FINAL.has(phase);
}

/** Whether the consultation is still under way (no verdict and not ended). */
export function isPending(c: IConsultation): boolean {
  return c.verdict === null && c.ended === null;
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function usageOf(value: unknown): IMemberUsage | null {
  if (!value || typeof value !== 'object') {
    return null;
  }
  const u = value as Record<string, unknown>;
  return {
    inputTokens: num(u.input_tokens) ?? 0,
    outputTokens: num(u.output_tokens) ?? 0,
    reasoningTokens: num(u.reasoning_tokens) ?? 0
  };
}

export function newConsultation(id: string, turnId: string | null, seq: number): IConsultation {
  return { id, turnId, seq, question: null, members: [], synthesizer: null, verdict: null, ended: null };
}

function newMember(name: string): IMember {
  return {
    name,
    model: null,
    phase: 'started',
    reasoning: '',
    text: '',
    usage: null,
    costUsd: null,
    reason: null,
    wallTimeS: null,
    timeoutS: null
  };
}

/** Apply one `ensemble_member` event. */
export function applyMember(c: IConsultation, event: Record<string, unknown>): IConsultation {
  const name = str(event.member);
  if (!name) {
    return c;
  }
  const isSynth = name === SYNTHESIZER;
  const before = isSynth ? c.synthesizer : c.members.find(m => m.name === name);
  let member = before ?? newMember(name);
  if (isFinal(member.phase)) {
    return c; // nothing comes after finished/failed
  }
  const text = str(event.text) ?? '';
  switch (event.state) {
    case 'started':
      member = {
        ...member,
        phase: 'started',
        model: str(event.model) ?? member.model,
        timeoutS: num(event.timeout_s) ?? member.timeoutS
      };
      break;
    case 'reasoning':
      member = { ...member, phase: 'thinking', reasoning: member.reasoning + text };
      break;
    case 'text':
      member = { ...member, phase: 'answering', text: member.text + text };
      break;
    case 'finished':
    case 'failed':
      member = {
        ...member,
        phase: event.state,
        model: str(event.model) ?? member.model,
        usage: usageOf(event.usage) ?? member.usage,
        costUsd: num(event.cost_usd),
        reason: event.state === 'failed' ? (str(event.reason) ?? 'failed') : null,
        wallTimeS: num(event.wall_time_s)
      };
      break;
    default:
      return c;
  }
  const question = c.question ?? str(event.question);
  if (isSynth) {
    return { ...c, question, synthesizer: member };
  }
  const members = before ? c.members.map(m => (m === before ? member : m)) : [...c.members, member];
  return { ...c, question, members };
}

/** Apply the `ensemble_verdict` event; members it lists but we never saw (truncated replay) are added. */
export function applyVerdict(c: IConsultation, event: Record<string, unknown>, seq: number): IConsultation {
  const summaries = Array.isArray(event.members) ? (event.members as Record<string, unknown>[]) : [];
  let members = c.members;
  let tokens = 0;
  for (const s of summaries) {
    const name = str(s?.name);
    if (!name) {
      continue;
    }
    const usage = usageOf(s.usage);
    tokens += usage ? usage.inputTokens + usage.outputTokens : 0;
    if (!members.some(m => m.name === name)) {
      const failed = s.status === 'failed';
      members = [
        ...members,
        {
          ...newMember(name),
          model: str(s.model),
          phase: failed ? 'failed' : 'finished',
          text: str(s.answer) ?? '',
          usage,
          costUsd: num(s.cost_usd),
          reason: failed ? (str(s.reason) ?? 'failed') : null,
          wallTimeS: num(s.wall_time_s)
        }
      ];
    }
  }
  const synth = event.synthesizer && typeof event.synthesizer === 'object' ? (event.synthesizer as Record<string, unknown>) : null;
  const synthUsage = synth ? usageOf(synth.usage) : null;
  tokens += synthUsage ? synthUsage.inputTokens + synthUsage.outputTokens : 0;
  const missing = Array.isArray(event.missing)
    ? (event.missing as Record<string, unknown>[])
        .filter(m => m && typeof m.name === 'string')
        .map(m => ({ name: m.name as string, reason: str(m.reason) }))
    : [];
  const verdict: IVerdict = {
    seq,
    status: str(event.status) ?? 'ok',
    question: str(event.question),
    plan: str(event.plan) ?? '',
    agreements: strings(event.agreements),
    disagreements: strings(event.disagreements),
    missing,
    costUsd: num(event.cost_usd),
    wallTimeS: num(event.wall_time_s),
    note: str(event.note),
    error: str(event.error),
    synthesizerModel: synth ? str(synth.model) : (c.synthesizer?.model ?? null),
    tokens
  };
  return { ...c, members, question: c.question ?? verdict.question, verdict };
}

/** The consultation ended without a verdict: members still running show as stopped. */
export function endConsultation(c: IConsultation, how: 'cancelled' | 'error'): IConsultation {
  if (!isPending(c)) {
    return c;
  }
  const stop = (m: IMember): IMember => (isFinal(m.phase) ? m : { ...m, phase: 'stopped' });
  return {
    ...c,
    ended: how,
    members: c.members.map(stop),
    synthesizer: c.synthesizer ? stop(c.synthesizer) : null
  };
}

/** How many members are done (finished or failed) out of how many. */
export function progress(c: IConsultation): { done: number; total: number } {
  return { done: c.members.filter(m => isFinal(m.phase)).length, total: c.members.length };
}
