/** The approval lifecycle: request -> Run / Skip / timeout / cancel, resolved by the call's tool_result. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EMPTY_STATE, IConversationState, IToolItem, pendingApprovals, reduceAll } from '../events';
import { Log } from './log';

function tool(state: IConversationState, callId: string): IToolItem {
  for (const turn of state.turns) {
    for (const item of turn.items) {
      if (item.kind === 'tool' && item.callId === callId) {
        return item;
      }
    }
  }
  throw new Error(`no tool card ${callId}`);
}

function requested(name = 'ExecuteScript', args: Record<string, unknown> = { command: 'python train.py' }): Log {
  const log = new Log();
  log.add('user_message', { text: 'train it' });
  log.add('tool_call', { call_id: 'c1', name, arguments: args });
  log.add('approval_request', { call_id: 'c1', name, arguments: args });
  return log;
}

test('an approval request makes the card wait with the code to approve', () => {
  const state = reduceAll(EMPTY_STATE, requested().events);
  const card = tool(state, 'c1');
  assert.equal(card.approval, 'pending');
  assert.equal(card.status, 'running');
  assert.deepEqual(card.arguments, { command: 'python train.py' });
  assert.deepEqual(
    pendingApprovals(state).map(t => t.callId),
    ['c1']
  );
});

test('Run: the result resolves the approval as run', () => {
  const log = requested('JupyterNotebook', { operation: 'execute_code', notebook_path: 'a.ipynb', source: '1/0' });
  log.add('tool_result', { call_id: 'c1', name: 'JupyterNotebook', output: 'ZeroDivisionError', is_error: true, duration_ms: 4200, data: { notebook: 'a.ipynb' } });
  const state = reduceAll(EMPTY_STATE, log.events);
  assert.equal(tool(state, 'c1').approval, 'run');
  assert.equal(tool(state, 'c1').status, 'error', 'the code ran and failed: that is an error');
  assert.deepEqual(pendingApprovals(state), []);
});

test('Skip: the result the model reads says so, and the card is resolved as skipped', () => {
  const log = requested();
  log.add('tool_result', { call_id: 'c1', name: 'ExecuteScript', output: 'The user chose not to run this call.', is_error: true, duration_ms: 1500, data: { approval: 'skip' } });
  const state = reduceAll(EMPTY_STATE, log.events);
  assert.equal(tool(state, 'c1').approval, 'skip');
  assert.equal(tool(state, 'c1').output, 'The user chose not to run this call.');
});

test('no answer in time: timeout', () => {
  const log = requested();
  log.add('tool_result', { call_id: 'c1', name: 'ExecuteScript', output: 'No approval within 1800 s', is_error: true, duration_ms: 1800000, data: { approval: 'timeout' } });
  assert.equal(tool(reduceAll(EMPTY_STATE, log.events), 'c1').approval, 'timeout');
});

test('stopped while waiting: cancelled, and never pending again', () => {
  const log = requested();
  log.add('tool_result', { call_id: 'c1', name: 'ExecuteScript', output: 'Cancelled by the user before this tool ran.', is_error: true, duration_ms: 0, data: null });
  log.add('done', { reason: 'cancelled' });
  const state = reduceAll(EMPTY_STATE, log.events);
  assert.equal(tool(state, 'c1').approval, 'cancelled');
  assert.deepEqual(pendingApprovals(state), []);
});

test('a turn that ends with the request unanswered (no result) does not leave it pending', () => {
  const log = requested();
  log.add('done', { reason: 'error' });
  const state = reduceAll(EMPTY_STATE, log.events);
  assert.equal(tool(state, 'c1').approval, 'cancelled');
  assert.equal(tool(state, 'c1').status, 'cancelled');
});

test('a request for a call we never saw (truncated history) still shows a card; replays do not reopen it', () => {
  const log = new Log();
  log.add('approval_request', { call_id: 'zz', name: 'ExecuteScript', arguments: { command: 'ls' } });
  const pending = reduceAll(EMPTY_STATE, log.events);
  assert.equal(tool(pending, 'zz').approval, 'pending');
  log.add('tool_result', { call_id: 'zz', name: 'ExecuteScript', output: 'ok', is_error: false, duration_ms: 900, data: { pid: 4 } });
  const resolved = reduceAll(pending, log.events);
  assert.equal(tool(resolved, 'zz').approval, 'run');
  assert.equal(reduceAll(resolved, log.events), resolved, 'the replayed request is a no-op');
});
