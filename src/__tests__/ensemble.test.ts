/** Ensemble member states, the verdict, where consultations show, and the session's totals. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { IConsultation, progress } from '../ensemble';
import { EMPTY_STATE, IConversationState, IToolItem, isRunning, reduceAll } from '../events';
import { Log } from './log';

function only(state: IConversationState): IConsultation {
  const all = Object.values(state.consultations);
  assert.equal(all.length, 1);
  return all[0];
}

test('a member goes waiting -> thinking -> answering -> done, with its tokens and cost', () => {
  const log = new Log();
  const cid = 'k';
  const phases: string[] = [];
  log.add('ensemble_member', { consultation_id: cid, member: 'openai', state: 'started', model: 'openai:gpt-5', timeout_s: 600 }, null);
  log.add('ensemble_member', { consultation_id: cid, member: 'openai', state: 'reasoning', text: 'Let me ' }, null);
  log.add('ensemble_member', { consultation_id: cid, member: 'openai', state: 'reasoning', text: 'think.' }, null);
  log.add('ensemble_member', { consultation_id: cid, member: 'openai', state: 'text', text: 'Use ' }, null);
  log.add('ensemble_member', { consultation_id: cid, member: 'openai', state: 'text', text: 'mmap.' }, null);
  log.add(
    'ensemble_member',
    {
      consultation_id: cid,
      member: 'openai',
      state: 'finished',
      model: 'openai:gpt-5',
      usage: { input_tokens: 1200, output_tokens: 300, reasoning_tokens: 100 },
      cost_usd: 0.0123,
      wall_time_s: 4.2
    },
    null
  );
  let state = EMPTY_STATE;
  for (const event of log.events) {
    state = reduceAll(state, [event]);
    phases.push(only(state).members[0].phase);
  }
  assert.deepEqual(phases, ['started', 'thinking', 'thinking', 'answering', 'answering', 'finished']);
  const m = only(state).members[0];
  assert.equal(m.model, 'openai:gpt-5');
  assert.equal(m.timeoutS, 600);
  assert.equal(m.reasoning, 'Let me think.');
  assert.equal(m.text, 'Use mmap.');
  assert.deepEqual(m.usage, { inputTokens: 1200, outputTokens: 300, reasoningTokens: 100 });
  assert.equal(m.costUsd, 0.0123);
  assert.equal(m.wallTimeS, 4.2);
  assert.equal(m.reason, null);
});

test('a failed member keeps its reason; nothing after finished or failed changes it', () => {
  const log = new Log();
  log.add('ensemble_member', { consultation_id: 'k', member: 'xai', state: 'started' }, null);
  log.add('ensemble_member', { consultation_id: 'k', member: 'xai', state: 'text', text: 'partial' }, null);
  log.add('ensemble_member', { consultation_id: 'k', member: 'xai', state: 'failed', reason: 'timeout after 5 s', cost_usd: null }, null);
  log.add('ensemble_member', { consultation_id: 'k', member: 'xai', state: 'text', text: ' more' }, null);
  log.add('ensemble_member', { consultation_id: 'k', member: 'xai', state: 'finished' }, null);
  const m = only(reduceAll(EMPTY_STATE, log.events)).members[0];
  assert.equal(m.phase, 'failed');
  assert.equal(m.reason, 'timeout after 5 s');
  assert.equal(m.text, 'partial');
});

test('four members stream interleaved; the synthesizer is kept apart; the verdict lands on top', () => {
  const log = new Log();
  const names = ['openai', 'anthropic', 'xai', 'gemini'];
  for (const n of names) {
    log.add('ensemble_member', { consultation_id: 'k', member: n, state: 'started', model: `${n}:x` }, null);
  }
  for (const n of names) {
    log.add('ensemble_member', { consultation_id: 'k', member: n, state: 'text', text: `${n} answer` }, null);
  }
  let state = reduceAll(EMPTY_STATE, log.events);
  assert.deepEqual(progress(only(state)), { done: 0, total: 4 });
  assert.equal(isRunning(state), true, 'a direct consultation in flight counts as running');
  const rest = new Log();
  rest.events.push(...log.events);
  for (const n of names) {
    rest.add('ensemble_member', { consultation_id: 'k', member: n, state: n === 'xai' ? 'failed' : 'finished', reason: 'overloaded' }, null);
  }
  rest.add('ensemble_member', { consultation_id: 'k', member: 'synthesizer', state: 'started', model: 'openai:o3' }, null);
  rest.add('ensemble_member', { consultation_id: 'k', member: 'synthesizer', state: 'text', text: '## Plan' }, null);
  state = reduceAll(state, rest.events);
  let c = only(state);
  assert.deepEqual(
    c.members.map(m => [m.name, m.phase]),
    [
      ['openai', 'finished'],
      ['anthropic', 'finished'],
      ['xai', 'failed'],
      ['gemini', 'finished']
    ]
  );
  assert.equal(c.synthesizer?.phase, 'answering');
  assert.equal(c.verdict, null);
  rest.verdict('k', null, { missing: [{ name: 'xai', reason: 'overloaded' }] });
  state = reduceAll(state, rest.events);
  c = only(state);
  assert.equal(c.members.length, 4, 'the synthesizer is not a member card');
  assert.equal(c.verdict?.status, 'ok');
  assert.equal(c.verdict?.plan, '1. Memory-map the **dataset**.');
  assert.deepEqual(c.verdict?.agreements, ['I/O bound']);
  assert.deepEqual(c.verdict?.disagreements, ['batch size']);
  assert.deepEqual(c.verdict?.missing, [{ name: 'xai', reason: 'overloaded' }]);
  assert.equal(c.verdict?.costUsd, 0.06);
  assert.equal(c.verdict?.synthesizerModel, 'openai:o3');
  assert.equal(c.verdict?.tokens, 4 * 150 + 500);
  assert.equal(c.question, 'How do I speed up my loader?', 'the verdict names the question');
  assert.equal(isRunning(state), false);
});

test('the ConsultEnsemble tool card holds its consultation; no separate block', () => {
  const log = new Log();
  log.add('user_message', { text: 'hard question' });
  log.add('tool_call', { call_id: 'c1', name: 'ConsultEnsemble', arguments: { question: 'q' } });
  log.member('k', 'openai', 't1', 'a');
  log.member('k', 'gemini', 't1', 'b');
  log.verdict('k', 't1');
  log.add('tool_result', { call_id: 'c1', name: 'ConsultEnsemble', output: 'verdict text', is_error: false, duration_ms: 5 });
  const state = reduceAll(EMPTY_STATE, log.events);
  assert.equal(state.turns.length, 1);
  const tool = state.turns[0].items[1] as IToolItem;
  assert.equal(tool.kind, 'tool');
  assert.equal(tool.consultationId, 'k');
  assert.equal(tool.status, 'done');
  assert.equal(state.consultations.k.turnId, 't1');
  assert.equal(state.consultations.k.members.length, 4, 'members only the verdict listed are added');
});

test('members of a turn without a ConsultEnsemble card get an ensemble item in that turn', () => {
  const log = new Log();
  log.add('user_message', { text: 'x' });
  log.member('k', 'openai', 't1', 'a');
  const state = reduceAll(EMPTY_STATE, log.events);
  assert.deepEqual(
    state.turns[0].items.map(i => i.kind),
    ['user', 'ensemble']
  );
});

test('stopping a turn stops its consultation: members still working show stopped', () => {
  const log = new Log();
  log.add('user_message', { text: 'x' });
  log.add('tool_call', { call_id: 'c1', name: 'ConsultEnsemble', arguments: {} });
  log.member('k', 'openai', 't1', 'done already');
  log.add('ensemble_member', { consultation_id: 'k', member: 'gemini', state: 'started' });
  log.add('ensemble_member', { consultation_id: 'k', member: 'gemini', state: 'reasoning', text: '...' });
  log.add('tool_result', { call_id: 'c1', name: 'ConsultEnsemble', output: 'Cancelled by the user', is_error: true, duration_ms: 0 });
  log.add('done', { reason: 'cancelled' });
  const state = reduceAll(EMPTY_STATE, log.events);
  const c = state.consultations.k;
  assert.equal(c.ended, 'cancelled');
  assert.deepEqual(
    c.members.map(m => m.phase),
    ['finished', 'stopped']
  );
  assert.equal(isRunning(state), false);
});

test('a cancelled direct consultation ends with the session-level error the server sends', () => {
  const log = new Log();
  log.add('ensemble_member', { consultation_id: 'k', member: 'openai', state: 'started' }, null);
  log.add('ensemble_member', { consultation_id: 'k', member: 'openai', state: 'text', text: 'hal' }, null);
  log.add('error', { kind: 'cancelled', message: 'The consultation was cancelled.' }, null);
  const state = reduceAll(EMPTY_STATE, log.events);
  assert.equal(state.consultations.k.ended, 'cancelled');
  assert.equal(state.consultations.k.members[0].phase, 'stopped');
  assert.deepEqual(
    state.turns[0].items.map(i => i.kind),
    ['ensemble', 'error'],
    'the error shows in the consultation block'
  );
  assert.equal(isRunning(state), false);
});

test('degraded and failed verdicts keep their note and error', () => {
  const log = new Log();
  log.member('a', 'openai', null, 'x');
  log.verdict('a', null, { status: 'degraded', note: 'The synthesizer failed', plan: '### openai\nx' });
  log.add('ensemble_member', { consultation_id: 'b', member: 'openai', state: 'started' }, null);
  log.add('ensemble_member', { consultation_id: 'b', member: 'openai', state: 'failed', reason: 'missing key: OPENAI_API_KEY' }, null);
  log.verdict('b', null, { status: 'failed', plan: '', error: 'every member failed', members: [], synthesizer: null, cost_usd: 0 });
  const state = reduceAll(EMPTY_STATE, log.events);
  assert.equal(state.consultations.a.verdict?.status, 'degraded');
  assert.equal(state.consultations.a.verdict?.note, 'The synthesizer failed');
  assert.equal(state.consultations.b.verdict?.status, 'failed');
  assert.equal(state.consultations.b.verdict?.error, 'every member failed');
  assert.equal(state.consultations.b.members[0].reason, 'missing key: OPENAI_API_KEY');
});

test('session totals: usage events carry the server totals; verdicts add until the next usage event', () => {
  const log = new Log();
  log.add('user_message', { text: 'x' });
  log.add('usage', { model: 'gpt-5', input_tokens: 100, output_tokens: 10, cost_usd: 0.01, session_cost_usd: 0.01, session_input_tokens: 100, session_output_tokens: 10 });
  log.add('done', { reason: 'completed' });
  let state = reduceAll(EMPTY_STATE, log.events);
  assert.equal(state.sessionCostUsd, 0.01);
  assert.equal(state.totals.model, 'gpt-5');
  log.member('k', 'openai', null, 'a');
  log.verdict('k', null, { cost_usd: 0.05 });
  state = reduceAll(state, log.events);
  assert.ok(Math.abs((state.sessionCostUsd ?? 0) - 0.06) < 1e-12, 'direct consultation cost counted at once');
  assert.equal(state.totals.ensembleTokens, 4 * 150 + 500);
  // the server's next total already includes the consultation: not counted twice
  log.add('user_message', { text: 'y' }, 't2');
  log.add('usage', { model: 'gpt-5', input_tokens: 50, output_tokens: 5, cost_usd: 0.005, session_cost_usd: 0.065, session_input_tokens: 150, session_output_tokens: 15 }, 't2');
  state = reduceAll(state, log.events);
  assert.ok(Math.abs((state.sessionCostUsd ?? 0) - 0.065) < 1e-12);
  assert.equal(state.totals.inputTokens, 150);
  assert.equal(state.totals.outputTokens, 15);
  assert.equal(state.totals.unpriced, false);
  log.add('usage', { model: 'local', input_tokens: 1, output_tokens: 1, cost_usd: null, session_cost_usd: 0.065 }, 't2');
  state = reduceAll(state, log.events);
  assert.equal(state.totals.unpriced, true, 'a call without a price makes the total a lower bound');
});
