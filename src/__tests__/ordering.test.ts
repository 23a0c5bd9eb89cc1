/**
 * Ordering and reconnection: whatever the cut, a client that resumes with
 * after_seq = the last seq it applied ends in exactly the state of one that
 * never disconnected (no event lost, none applied twice).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EMPTY_STATE, IBaseEvent, isRunning, reduce, reduceAll } from '../events';
import { busySession } from './log';

/** What the server sends a socket that connects with after_seq = n. */
function replayAfter(log: IBaseEvent[], n: number): IBaseEvent[] {
  return log.filter(e => e.seq > n);
}

test('resuming after the last seq at every cut point gives the uninterrupted state', () => {
  const log = busySession();
  const whole = reduceAll(EMPTY_STATE, log);
  for (let cut = 0; cut <= log.length; cut++) {
    const before = reduceAll(EMPTY_STATE, log.slice(0, cut));
    assert.equal(before.lastSeq, cut);
    const resumed = reduceAll(before, replayAfter(log, before.lastSeq));
    assert.deepEqual(resumed, whole, `cut after seq ${cut}`);
  }
});

test('a replay that overlaps what was seen (after_seq too low) changes nothing twice', () => {
  const log = busySession();
  const whole = reduceAll(EMPTY_STATE, log);
  for (let cut = 1; cut <= log.length; cut++) {
    const before = reduceAll(EMPTY_STATE, log.slice(0, cut));
    for (const overlap of [1, 3, cut]) {
      const resumed = reduceAll(before, replayAfter(log, Math.max(0, cut - overlap)));
      assert.deepEqual(resumed, whole, `cut ${cut}, overlap ${overlap}`);
    }
  }
});

test('several disconnections in a row, with batched frames, lose nothing', () => {
  const log = busySession();
  const whole = reduceAll(EMPTY_STATE, log);
  // a deterministic pseudo-random walk of drops and batch sizes
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let round = 0; round < 50; round++) {
    let state = EMPTY_STATE;
    while (state.lastSeq < log.length) {
      const pending = replayAfter(log, state.lastSeq); // (re)connect
      const received = pending.slice(0, 1 + rand(pending.length)); // then the socket drops
      for (let i = 0; i < received.length; ) {
        const batch = received.slice(i, i + 1 + rand(4));
        state = reduceAll(state, batch);
        i += batch.length;
      }
    }
    assert.deepEqual(state, whole, `round ${round}`);
  }
});

test('events are applied in seq order; an older seq arriving late is ignored', () => {
  const log = busySession();
  const state = reduceAll(EMPTY_STATE, log.slice(0, 10));
  assert.equal(reduce(state, log[4]), state);
  assert.equal(reduce(state, { ...log[10], seq: 10 }), state, 'a seq equal to the last is a replay');
  assert.equal(reduce(state, { ...log[10], seq: Number.NaN }), state);
});

test('a direct consultation interleaved with a turn stays apart; deltas and notes stay in their turn', () => {
  const state = reduceAll(EMPTY_STATE, busySession());
  assert.deepEqual(
    state.turns.map(t => [t.id, t.kind]),
    [
      ['t1', 'turn'],
      ['t2', 'turn'],
      ['consultation:k2', 'consultation']
    ]
  );
  const [t1, t2, block] = state.turns;
  assert.deepEqual(
    t1.items.map(i => i.kind),
    ['user', 'reasoning', 'tool', 'text', 'queued', 'text']
  );
  const texts = t1.items.filter(i => i.kind === 'text').map(i => (i as { text: string }).text);
  assert.deepEqual(texts, ['Use ', 'mmap.']);
  assert.deepEqual(
    t2.items.map(i => (i.kind === 'text' ? i.text : i.kind)),
    ['user', 'ok']
  );
  assert.deepEqual(
    block.items.map(i => i.kind),
    ['ensemble']
  );
  assert.equal(isRunning(state), false);
});

test('the user message keeps the context it was sent with', () => {
  const state = reduceAll(EMPTY_STATE, busySession());
  const user = state.turns[0].items[0];
  assert.equal(user.kind, 'user');
  assert.deepEqual(user.kind === 'user' && user.context, { notebook: 'a.ipynb', cells: [] });
});
