/** Builders of server-shaped event logs for the reducer tests (no tests here). */
import { IBaseEvent } from '../events';

export class Log {
  readonly events: IBaseEvent[] = [];

  /** Append one event of `turn` (null: outside any turn, as the server sends direct consultations). */
  add(type: string, fields: Record<string, unknown> = {}, turn: string | null = 't1'): IBaseEvent {
    const event: IBaseEvent = { type, seq: this.events.length + 1, session_id: 's1', turn_id: turn, ts: this.events.length, ...fields };
    this.events.push(event);
    return event;
  }

  /** One member's life: started, reasoning and text deltas, finished. */
  member(cid: string, name: string, turn: string | null, answer: string, cost = 0.01): void {
    this.add('ensemble_member', { consultation_id: cid, member: name, state: 'started', model: `${name}:m`, timeout_s: 60 }, turn);
    this.add('ensemble_member', { consultation_id: cid, member: name, state: 'reasoning', text: 'hmm ' }, turn);
    this.add('ensemble_member', { consultation_id: cid, member: name, state: 'text', text: answer }, turn);
    this.add(
      'ensemble_member',
      {
        consultation_id: cid,
        member: name,
        state: 'finished',
        model: `${name}:m`,
        usage: { input_tokens: 100, output_tokens: 50, reasoning_tokens: 20, cached_tokens: 0 },
        cost_usd: cost,
        wall_time_s: 1.5
      },
      turn
    );
  }

  verdict(cid: string, turn: string | null, fields: Record<string, unknown> = {}): IBaseEvent {
    return this.add(
      'ensemble_verdict',
      {
        consultation_id: cid,
        question: 'How do I speed up my loader?',
        status: 'ok',
        plan: '1. Memory-map the **dataset**.',
        agreements: ['I/O bound'],
        disagreements: ['batch size'],
        members: ['openai', 'anthropic', 'xai', 'gemini'].map(name => ({
          name,
          model: `${name}:m`,
          status: 'finished',
          usage: { input_tokens: 100, output_tokens: 50 },
          cost_usd: 0.01
        })),
        missing: [],
        synthesizer: { name: 'synthesizer', model: 'openai:o3', usage: { input_tokens: 400, output_tokens: 100 }, cost_usd: 0.02 },
        cost_usd: 0.06,
        wall_time_s: 12.5,
        note: null,
        error: null,
        ...fields
      },
      turn
    );
  }
}

/** Everything a lively session does: a turn with a tool and an ensemble call, a direct consultation, a queued prompt. */
export function busySession(): IBaseEvent[] {
  const log = new Log();
  log.add('user_message', { text: 'speed up my loader', context: { notebook: 'a.ipynb', cells: [] } });
  log.add('reasoning_delta', { text: 'Think ' });
  log.add('reasoning_delta', { text: 'first.' });
  log.add('tool_call', { call_id: 'c1', name: 'ConsultEnsemble', arguments: { question: 'loader?' } });
  for (const name of ['openai', 'anthropic', 'xai', 'gemini']) {
    log.member('k1', name, 't1', `${name} says mmap`);
  }
  log.verdict('k1', 't1');
  log.add('tool_result', { call_id: 'c1', name: 'ConsultEnsemble', output: '# Ensemble verdict', is_error: false, duration_ms: 900, data: { cost_usd: 0.06 } });
  log.add('text_delta', { text: 'Use ' });
  log.add('queued', { text: 'next please' }, null);
  log.add('text_delta', { text: 'mmap.' });
  log.add('usage', { model: 'gpt-5', input_tokens: 10, output_tokens: 5, cost_usd: 0.001, session_cost_usd: 0.061, session_input_tokens: 10, session_output_tokens: 5 });
  log.add('done', { reason: 'completed' });
  log.add('user_message', { text: 'next please' }, 't2');
  log.member('k2', 'openai', null, 'direct answer');
  log.add('text_delta', { text: 'ok' }, 't2');
  log.member('k2', 'gemini', null, 'direct too');
  log.verdict('k2', null, { cost_usd: 0.03 });
  log.add('done', { reason: 'completed' }, 't2');
  return log.events;
}
