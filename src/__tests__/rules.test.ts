/**
 * The `rules` event in the reducer, and the indicator's parsing and wording
 * (src/rules.ts), in plain Node.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EMPTY_STATE, IBaseEvent, reduce, reduceAll } from '../events';
import { activeFiles, parseRules, rulesLabel, rulesTooltip } from '../rules';

const RULES = {
  rules: [
    { path: '/home/me/.jupyter/ide_agent/rules/style.md', scope: 'user', tokens: 120, truncated: false, open_path: null },
    { path: 'sub/AGENTS.md', scope: 'project', tokens: 8000, truncated: true, open_path: 'sub/AGENTS.md' }
  ],
  total_tokens: 8120,
  budget_tokens: 92000,
  capped: false,
  warnings: ['Skipped the rule file /home/me/.jupyter/ide_agent/rules/bad.md: it is not UTF-8 text.']
};

function ev(type: string, seq: number, fields: Record<string, unknown> = {}): IBaseEvent {
  return { type, seq, session_id: 's1', turn_id: 't1', ts: seq, ...fields };
}

test('a rules event sets the conversation rules without adding a timeline item', () => {
  const state = reduceAll(EMPTY_STATE, [ev('user_message', 1, { text: 'hi' }), ev('rules', 2, RULES)]);
  assert.equal(state.lastSeq, 2);
  assert.deepEqual(
    state.turns[0].items.map(i => i.kind),
    ['user']
  );
  const rules = state.rules!;
  assert.equal(rules.seq, 2);
  assert.deepEqual(
    rules.files.map(f => [f.path, f.scope, f.tokens, f.truncated, f.openPath]),
    [
      ['/home/me/.jupyter/ide_agent/rules/style.md', 'user', 120, false, null],
      ['sub/AGENTS.md', 'project', 8000, true, 'sub/AGENTS.md']
    ]
  );
  assert.equal(rules.totalTokens, 8120);
  assert.equal(rules.warnings.length, 1);
});

test('a later rules event replaces the list; a replayed one is ignored', () => {
  const first = reduce(EMPTY_STATE, ev('rules', 3, RULES));
  const second = reduce(first, ev('rules', 7, { ...RULES, rules: [RULES.rules[1]], warnings: [] }));
  assert.deepEqual(
    second.rules!.files.map(f => f.path),
    ['sub/AGENTS.md']
  );
  assert.equal(reduce(second, ev('rules', 3, RULES)), second, 'seq already seen');
});

test('a malformed rules event records its seq only', () => {
  const state = reduce(EMPTY_STATE, ev('rules', 4, { rules: 'nope' }));
  assert.equal(state.lastSeq, 4);
  assert.equal(state.rules, undefined);
  const parsed = parseRules({ rules: [{ path: 'ok.md', tokens: 'x' }, { tokens: 3 }, null] });
  assert.deepEqual(parsed?.files, [{ path: 'ok.md', scope: 'user', tokens: 0, truncated: false, openPath: null }]);
});

test('the indicator counts files that reach the prompt and lists them in its tooltip', () => {
  const rules = parseRules(RULES)!;
  assert.equal(rulesLabel(rules), 'Rules: 2');
  const tip = rulesTooltip(rules);
  assert.match(tip, /^user: \/home\/me\/.jupyter\/ide_agent\/rules\/style\.md \(120 tokens\)$/m);
  assert.match(tip, /^project: sub\/AGENTS\.md \(8,000 tokens, truncated\)$/m);
  assert.match(tip, /⚠ Skipped the rule file .*bad\.md/);

  const capped = parseRules({ ...RULES, capped: true, rules: [...RULES.rules, { path: 'x.md', scope: 'user', tokens: 0, truncated: true }] })!;
  assert.equal(activeFiles(capped).length, 2, 'a file left out by the budget does not count');
  assert.equal(rulesLabel(capped), 'Rules: 2');
  assert.match(rulesTooltip(capped), /x\.md \(0 tokens, left out\)/);
  assert.match(rulesTooltip(capped), /capped at 92,000 tokens/);

  assert.equal(rulesLabel(parseRules({ rules: [], warnings: [] })), null, 'nothing to show');
  assert.equal(rulesLabel(null), null);
  assert.equal(rulesLabel(parseRules({ rules: [], warnings: ['Refused AGENTS.md'] })), 'Rules: 0');
});
