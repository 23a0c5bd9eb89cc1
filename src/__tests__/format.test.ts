/** Formatters and the context the commands attach. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { contextAsText, summarizeContext } from '../context';
import { formatCost, formatDuration, formatMegabytes, formatTokens, stripAnsi } from '../format';

test('formatters', () => {
  assert.equal(formatCost(null), 'cost unknown');
  assert.equal(formatCost(0), '$0.00');
  assert.equal(formatCost(0.0012), '$0.0012');
  assert.equal(formatCost(1.5), '$1.50');
  assert.equal(formatTokens(950), '950');
  assert.equal(formatTokens(1234), '1.2k');
  assert.equal(formatTokens(45678), '46k');
  assert.equal(formatTokens(2_500_000), '2.5M');
  assert.equal(formatDuration(4.25), '4.3 s');
  assert.equal(formatDuration(42), '42 s');
  assert.equal(formatDuration(75), '1m 15s');
  assert.equal(formatDuration(3725), '1h 02m');
  assert.equal(formatMegabytes(12.34), '12 MB');
  assert.equal(formatMegabytes(2048), '2.0 GB');
  assert.equal(stripAnsi('\u001b[0;31mZeroDivisionError\u001b[0m: division'), 'ZeroDivisionError: division');
});

test('context chips and the ensemble context text', () => {
  const cell = { id: 'abc', type: 'code', index: 2, source: 'print("```")\n1/0', error: 'ZeroDivisionError: division by zero', traceback: 'Traceback...' };
  assert.equal(summarizeContext({ notebook: 'dir/a.ipynb', cells: [cell] }), 'a.ipynb · cell 3 (error)');
  assert.equal(summarizeContext({ notebook: 'a.ipynb', cells: [cell, { ...cell, id: 'd' }] }), 'a.ipynb · 2 cells');
  assert.equal(summarizeContext({ file: 'train.py', selection: 'x' }), 'train.py · selection');
  assert.equal(summarizeContext(null), '');
  const text = contextAsText({ notebook: 'a.ipynb', cells: [cell] })!;
  assert.ok(text.startsWith('Notebook: a.ipynb'));
  assert.ok(text.includes('Cell 3 (id abc, code):\n````python\nprint("```")\n1/0\n````'), 'a fence longer than any backticks inside');
  assert.ok(text.includes('Error: ZeroDivisionError: division by zero'));
  assert.equal(contextAsText(undefined), undefined);
});
