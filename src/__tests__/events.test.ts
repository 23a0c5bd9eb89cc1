/**
 * Unit tests of the pure event reducer (`jlpm test`: tsc to CommonJS, then
 * Node's built-in test runner; no browser, no extra dependencies).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EMPTY_STATE, IBaseEvent, IToolItem, isRunning, reduce, reduceAll } from '../events';

let seq = 0;
function ev(type: string, fields: Record<string, unknown> = {}, turn = 't1'): IBaseEvent {
  seq += 1;
  return { type, seq, session_id: 's1', turn_id: turn, ts: seq, ...fields };
}

function turnEvents(): IBaseEvent[] {
  seq = 0;
  return [
    ev('user_message', { text: 'list files' }),
    ev('reasoning_delta', { text: 'Let me ' }),
    ev('reasoning_delta', { text: 'look.' }),
    ev('tool_call', { call_id: 'c1', name: 'Glob', arguments: { pattern: '*.py' } }),
    ev('tool_result', { call_id: 'c1', name: 'Glob', output: 'a.py\nb.py', is_error: false, duration_ms: 12 }),
    ev('text_delta', { text: 'There are ' }),
    ev('text_delta', { text: '**two** files.' }),
    ev('usage', { provider: 'openai', model: 'gpt-5', input_tokens: 100, output_tokens: 20, cost_usd: 0.001, session_cost_usd: 0.001 }),
    ev('usage', { provider: 'openai', model: 'gpt-5', input_tokens: 50, output_tokens: 10, cost_usd: 0.0005, session_cost_usd: 0.0015 }),
    ev('done', { reason: 'completed' })
  ];
}

test('a turn reduces to user, reasoning, tool, text items with summed usage', () => {
  const state = reduceAll(EMPTY_STATE, turnEvents());
  assert.equal(state.lastSeq, 10);
  assert.equal(state.turns.length, 1);
  const [turn] = state.turns;
  assert.deepEqual(
    turn.items.map(i => i.kind),
    ['user', 'reasoning', 'tool', 'text']
  );
  assert.equal((turn.items[1] as { text: string }).text, 'Let me look.');
  assert.equal((turn.items[3] as { text: string }).text, 'There are **two** files.');
  const tool = turn.items[2] as IToolItem;
  assert.equal(tool.status, 'done');
  assert.equal(tool.output, 'a.py\nb.py');
  assert.equal(tool.durationMs, 12);
  assert.equal(turn.usage?.inputTokens, 150);
  assert.equal(turn.usage?.outputTokens, 30);
  assert.ok(Math.abs((turn.usage?.costUsd ?? 0) - 0.0015) < 1e-12);
  assert.equal(turn.usage?.calls, 2);
  assert.equal(state.sessionCostUsd, 0.0015);
  assert.equal(turn.done, 'completed');
  assert.equal(isRunning(state), false);
});

test('replayed events (seq already seen) are not applied twice', () => {
  const events = turnEvents();
  const once = reduceAll(EMPTY_STATE, events.slice(0, 7));
  // reconnect with after_seq = 5 by a buggy server that replays 3..10
  const twice = reduceAll(once, events.slice(2));
  assert.deepEqual(twice, reduceAll(EMPTY_STATE, events));
  assert.equal(reduce(twice, events[3]), twice, 'a seen event returns the same state object');
});

test('text after a tool call starts a new text item; deltas do not cross turns', () => {
  seq = 0;
  const state = reduceAll(EMPTY_STATE, [
    ev('user_message', { text: 'a' }),
    ev('text_delta', { text: 'one' }),
    ev('tool_call', { call_id: 'x', name: 'Read', arguments: {} }),
    ev('text_delta', { text: 'two' }),
    ev('done', { reason: 'completed' }),
    ev('user_message', { text: 'b' }, 't2'),
    ev('text_delta', { text: 'three' }, 't2')
  ]);
  assert.equal(state.turns.length, 2);
  assert.deepEqual(
    state.turns[0].items.map(i => (i.kind === 'text' ? i.text : i.kind)),
    ['user', 'one', 'tool', 'two']
  );
  assert.deepEqual(
    state.turns[1].items.map(i => (i.kind === 'text' ? i.text : i.kind)),
    ['user', 'three']
  );
  assert.equal(isRunning(state), true);
});

test('cancel marks unfinished tool cards cancelled; errors are items; unknown types only advance seq', () => {
  seq = 0;
  const state = reduceAll(EMPTY_STATE, [
    ev('user_message', { text: 'slow' }),
    ev('tool_call', { call_id: 'p', name: 'ExecuteScript', arguments: { script_path: 'x.py' } }),
    ev('some_future_event', { member: 'grok', text: '...' }),
    ev('error', { message: 'rate limited', kind: 'rate_limit', provider: 'openai', retryable: true }),
    ev('usage', { input_tokens: 1, output_tokens: 1, cost_usd: null }),
    ev('done', { reason: 'cancelled' })
  ]);
  assert.equal(state.lastSeq, 6);
  const items = state.turns[0].items;
  assert.deepEqual(
    items.map(i => i.kind),
    ['user', 'tool', 'error']
  );
  assert.equal((items[1] as IToolItem).status, 'cancelled');
  assert.equal(state.turns[0].usage?.costUsd, null);
  assert.equal(state.turns[0].done, 'cancelled');
});

test('tool_result with is_error and malformed events', () => {
  seq = 0;
  let state = reduceAll(EMPTY_STATE, [
    ev('tool_call', { call_id: 'e', name: 'Edit', arguments: {} }),
    ev('tool_result', { call_id: 'e', name: 'Edit', output: { error: 'no match' }, is_error: true, duration_ms: 3 })
  ]);
  assert.equal((state.turns[0].items[0] as IToolItem).status, 'error');
  const before = state;
  state = reduce(state, { type: 'text_delta', text: 'x' } as unknown as IBaseEvent);
  state = reduce(state, null as unknown as IBaseEvent);
  assert.equal(state, before);
});

test('a queued prompt without turn_id is a note in the running turn; its own turn follows', () => {
  seq = 0;
  const state = reduceAll(EMPTY_STATE, [
    ev('user_message', { text: 'first' }),
    ev('text_delta', { text: 'working' }),
    { ...ev('queued', { text: 'second' }), turn_id: null },
    ev('done', { reason: 'completed' }),
    ev('user_message', { text: 'second' }, 't2'),
    ev('text_delta', { text: 'ok' }, 't2'),
    ev('done', { reason: 'completed' }, 't2')
  ]);
  assert.deepEqual(
    state.turns.map(t => t.id),
    ['t1', 't2']
  );
  assert.deepEqual(
    state.turns[0].items.map(i => i.kind),
    ['user', 'text', 'queued']
  );
  assert.equal(isRunning(state), false);
});
