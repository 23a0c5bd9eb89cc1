/**
 * Unit tests of the `@` completion's pure helpers: the mention at the caret,
 * its replacement, the ranking (same order as the server's), the chip list,
 * the wire form of a prompt's context, and the chips of a replayed event.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  addAttachment,
  applyMention,
  attachmentsFull,
  attachmentLabel,
  attachmentsOf,
  attachmentTitle,
  findMention,
  IAttachment,
  MAX_ATTACHMENTS,
  offerLabels,
  rankPaths,
  removeAttachment,
  selectionAttachments,
  wireContext
} from '../attachments';
import { contextAsText } from '../context';
import { EMPTY_STATE, IUserItem, reduce } from '../events';

test('a mention starts at a line start or after whitespace and ends at the caret', () => {
  assert.deepEqual(findMention('@tra', 4), { start: 0, end: 4, query: 'tra' });
  assert.deepEqual(findMention('compare @src/ma with x', 15), { start: 8, end: 15, query: 'src/ma' });
  assert.deepEqual(findMention('line one\n@', 10), { start: 9, end: 10, query: '' });
  // the caret inside a mention: the query is what precedes it, the mention runs to its end
  assert.deepEqual(findMention('see @model.py now', 7), { start: 4, end: 13, query: 'mo' });
  assert.equal(findMention('mail me@example.com', 19), null, 'an @ inside a word is not a mention');
  assert.equal(findMention('@train done', 11), null, 'the caret has left the mention');
  assert.equal(findMention('plain text', 5), null);
  assert.equal(findMention('@x', 0), null, 'the caret before the @');
});

test('picking replaces the query with @path and a space, the caret after it', () => {
  const text = 'compare @tr with b';
  const picked = applyMention(text, findMention(text, 11)!, 'src/train.py');
  assert.equal(picked.text, 'compare @src/train.py with b');
  assert.equal(picked.caret, 'compare @src/train.py '.length);
  const atEnd = applyMention('look at @no', findMention('look at @no', 11)!, 'notes/a b.md');
  assert.deepEqual(atEnd, { text: 'look at @notes/a b.md ', caret: 22 });
  const beforeNewline = applyMention('@x\nmore', findMention('@x\nmore', 2)!, 'x.py');
  assert.deepEqual(beforeNewline, { text: '@x.py\nmore', caret: 5 });
});

test('ranking: name prefix, then name substring, then path substring, then fuzzy; shorter first', () => {
  const paths = [
    'other/t_r_a_i_n.txt',
    'train_data/readme.md',
    'docs/retrain_notes.md',
    'notebooks/Training.ipynb',
    'src/trainer_utils.py',
    'train.py',
    'unrelated.csv'
  ].map(path => ({ path }));
  assert.deepEqual(
    rankPaths('train', paths).map(p => p.path),
    ['train.py', 'src/trainer_utils.py', 'notebooks/Training.ipynb', 'docs/retrain_notes.md', 'train_data/readme.md', 'other/t_r_a_i_n.txt']
  );
  assert.deepEqual(rankPaths('@src/tr', paths).map(p => p.path), ['src/trainer_utils.py'], 'a leading @ is ignored');
  assert.equal(rankPaths('train', paths, 2).length, 2);
  assert.equal(rankPaths('', paths).length, paths.length, 'an empty query keeps the server order');
  assert.deepEqual(rankPaths('zzz', paths), []);
});

test('the chip list has no duplicates and a whole notebook replaces its cell selections', () => {
  let list: IAttachment[] = [];
  list = addAttachment(list, { type: 'file', path: 'a.py' });
  list = addAttachment(list, { type: 'file', path: 'a.py' });
  list = addAttachment(list, { type: 'notebook', path: 'nb.ipynb', cell_ids: ['c1', 'c2'] });
  assert.deepEqual(list.map(attachmentLabel), ['a.py', 'nb.ipynb · 2 cells']);
  list = addAttachment(list, { type: 'notebook', path: 'nb.ipynb' });
  assert.deepEqual(list.map(attachmentLabel), ['a.py', 'nb.ipynb']);
  assert.equal(addAttachment(list, { type: 'notebook', path: 'nb.ipynb', cell_ids: ['c3'] }).length, 2, 'already whole');
  list = removeAttachment(list, { type: 'file', path: 'a.py' });
  assert.deepEqual(list, [{ type: 'notebook', path: 'nb.ipynb' }]);
});

test('a prompt sends bare references and no empty attachment list', () => {
  assert.equal(wireContext(null), undefined);
  assert.equal(wireContext({ attachments: [] }), undefined);
  assert.deepEqual(
    wireContext({
      notebook: 'nb.ipynb',
      attachments: [{ type: 'file', path: 'a.py', size: 12, note: 'x', refused: false }, { type: 'notebook', path: 'nb.ipynb', cell_ids: ['c1'] }]
    }),
    { notebook: 'nb.ipynb', attachments: [{ type: 'file', path: 'a.py' }, { type: 'notebook', path: 'nb.ipynb', cell_ids: ['c1'] }] }
  );
  assert.match(contextAsText({ attachments: [{ type: 'file', path: 'a.py' }] } as never) ?? '', /Files the user points at: a\.py/);
});

test('a replayed user_message shows its attachments as the server read them', () => {
  const context = {
    attachments: [
      { type: 'file', path: 'plan.md', size: 2048 },
      { type: 'notebook', path: 'nb.ipynb', cell_ids: ['c1'], size: 300, note: '[truncated: 300 of 900 bytes]' },
      { type: 'file', path: 'img.png', size: 0, refused: true, note: '[not attached: img.png is a binary file (2 KB)]' },
      { type: 'directory', path: 'src' },
      'junk'
    ]
  };
  const state = reduce(EMPTY_STATE, { type: 'user_message', seq: 1, turn_id: 't', text: 'go', context });
  const item = state.turns[0].items[0] as IUserItem;
  assert.deepEqual(
    item.attachments.map(a => [a.path, a.refused ?? false]),
    [
      ['plan.md', false],
      ['nb.ipynb', false],
      ['img.png', true]
    ]
  );
  assert.equal(attachmentTitle(item.attachments[0]), 'plan.md · 2 KB sent');
  assert.equal(attachmentTitle(item.attachments[2]), 'img.png · not attached · [not attached: img.png is a binary file (2 KB)]');
  assert.deepEqual(attachmentsOf(null), []);
  assert.deepEqual(attachmentsOf({ attachments: 'x' }), []);
});

test('the one-click buttons name what they attach', () => {
  assert.deepEqual(offerLabels({ path: 'nb.ipynb', cellIds: ['a'], firstIndex: 2 }), { notebook: 'Attach notebook', cells: 'Attach cell 3' });
  assert.deepEqual(offerLabels({ path: 'nb.ipynb', cellIds: ['a', 'b'], firstIndex: 0 }), {
    notebook: 'Attach notebook',
    cells: 'Attach 2 selected cells'
  });
  assert.equal(offerLabels({ path: 'nb.ipynb', cellIds: [], firstIndex: 0 }).cells, null);
});

test('a file browser selection attaches its files and notebooks once each and sets its folders apart', () => {
  const picked = selectionAttachments([
    { type: 'file', path: 'data/train.py' },
    { type: 'notebook', path: 'explore.ipynb' },
    { type: 'directory', path: 'analysis' },
    { type: 'file', path: 'data/train.py' },
    { type: 'file', path: 'raw.ipynb' }
  ]);
  assert.deepEqual(picked.attachments, [
    { type: 'file', path: 'data/train.py' },
    { type: 'notebook', path: 'explore.ipynb' },
    { type: 'notebook', path: 'raw.ipynb' }
  ]);
  assert.deepEqual(picked.folders, ['analysis']);
  assert.deepEqual(selectionAttachments([]), { attachments: [], folders: [] });
});

test('a full list takes no new chip but still knows the ones it has', () => {
  const list: IAttachment[] = Array.from({ length: MAX_ATTACHMENTS }, (_, i) => ({ type: 'file', path: `f${i}.py` }));
  assert.equal(attachmentsFull(list, { type: 'file', path: 'new.py' }), true);
  assert.equal(attachmentsFull(list, { type: 'file', path: 'f3.py' }), false);
  assert.equal(attachmentsFull(list.slice(1), { type: 'file', path: 'new.py' }), false);
});
