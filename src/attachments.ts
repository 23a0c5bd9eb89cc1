/**
 * Files and notebooks attached to a prompt: the types the server speaks
 * (`GET ide-agent/files`, `context.attachments` of a prompt, the references a
 * `user_message` event carries back) and the pure helpers behind the `@`
 * completion: finding the mention at the caret, replacing it, ranking paths
 * the way the server does, keeping the chip list free of duplicates.
 *
 * No JupyterLab imports (unit tested in plain Node).
 */
import { IPromptContext } from './tokens';

export type AttachmentType = 'file' | 'notebook';

/** One attachment: what the prompt sends, and what the server echoes back (size, note). */
export interface IAttachment {
  type: AttachmentType;
  /** Relative to the server's root, POSIX separators. */
  path: string;
  /** Only these cells of a notebook (absent: the whole notebook). */
  cell_ids?: string[];
  /** From the server: bytes of text the model was sent. */
  size?: number;
  /** From the server: why it was cut or not attached. */
  note?: string;
  /** From the server: not attached at all (missing, binary, outside the root...). */
  refused?: boolean;
}

/** One row of `GET ide-agent/files?q=`. */
export interface IFileMatch {
  path: string;
  type: AttachmentType;
  size: number;
  mtime: number;
}

export interface IFileSearch {
  files: IFileMatch[];
  /** The server's walk stopped early (a huge tree): some files are not offered. */
  truncated: boolean;
}

/** The prompt's context with the attachments (chips) the user added. */
export interface IAttachedContext extends IPromptContext {
  attachments?: IAttachment[];
}

/** What the prompt box can attach with one click: the current notebook and its selected cells. */
export interface INotebookOffer {
  path: string;
  /** Ids of the selected cells (the active cell when none is selected). */
  cellIds: string[];
  /** 0-based index of the first of them, for "Attach cell 3". */
  firstIndex: number;
}

/** What the prompt box asks of the model. */
export interface IAttachActions {
  search(query: string): Promise<IFileSearch>;
  add(attachment: IAttachment): void;
  remove(attachment: IAttachment): void;
}

export function basename(path: string): string {
  const parts = path.split('/');
  return parts[parts.length - 1] || path;
}

// --- the mention at the caret ----------------------------------------------------------------

/** An `@query` being typed: `text.slice(start, end)` is `@` + `query`. */
export interface IMention {
  start: number;
  end: number;
  query: string;
}

/**
 * The `@mention` the caret is in, if any. It starts at a line start or after
 * whitespace (so `me@example.com` is not one) and runs to the next whitespace.
 */
export function findMention(text: string, caret: number): IMention | null {
  if (caret < 0 || caret > text.length) {
    return null;
  }
  let start = caret;
  while (start > 0 && !/\s/.test(text[start - 1])) {
    start -= 1;
  }
  if (text[start] !== '@' || start >= caret) {
    return null;
  }
  let end = caret;
  while (end < text.length && !/\s/.test(text[end])) {
    end += 1;
  }
  return { start, end, query: text.slice(start + 1, caret) };
}

/**
 * Replace the mention with `@path` and a space: the prompt stays readable
 * ("compare @a.py with @b.py"); the chip is what is actually attached.
 */
export function applyMention(text: string, mention: IMention, path: string): { text: string; caret: number } {
  const before = text.slice(0, mention.start);
  const after = text.slice(mention.end);
  const inserted = `@${path}${/^\s/.test(after) ? '' : ' '}`;
  return { text: before + inserted + after, caret: before.length + inserted.length + (after.startsWith(' ') ? 1 : 0) };
}

// --- ranking (the server's order, for instant filtering while a request is in flight) ------------

function fuzzySpan(query: string, text: string): number | null {
  let start = -1;
  let pos = -1;
  for (const ch of query) {
    pos = text.indexOf(ch, pos + 1);
    if (pos < 0) {
      return null;
    }
    if (start < 0) {
      start = pos;
    }
  }
  return pos - start + 1;
}

/** [tier, closeness, length] (lower is better) or null: name prefix, name substring, path substring, fuzzy. */
export function rankKey(query: string, path: string): [number, number, number] | null {
  const q = query.toLowerCase();
  const p = path.toLowerCase();
  const name = basename(p);
  if (name.startsWith(q)) {
    return [0, 0, p.length];
  }
  if (name.includes(q)) {
    return [1, name.indexOf(q), p.length];
  }
  if (p.includes(q)) {
    return [2, 0, p.length];
  }
  const span = fuzzySpan(q, p);
  return span === null ? null : [3, span - q.length, p.length];
}

/** The best `limit` items for `query`, in the server's order (empty query: as given). */
export function rankPaths<T extends { path: string }>(query: string, items: readonly T[], limit = 50): T[] {
  const q = query.trim().replace(/^@/, '');
  if (!q) {
    return items.slice(0, limit);
  }
  const keyed: { key: [number, number, number]; item: T }[] = [];
  for (const item of items) {
    const key = rankKey(q, item.path);
    if (key) {
      keyed.push({ key, item });
    }
  }
  keyed.sort((a, b) => {
    for (let i = 0; i < 3; i++) {
      if (a.key[i] !== b.key[i]) {
        return a.key[i] - b.key[i];
      }
    }
    const x = a.item.path.toLowerCase();
    const y = b.item.path.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return keyed.slice(0, limit).map(k => k.item);
}

// --- the chip list ----------------------------------------------------------------------------------

export function attachmentKey(a: IAttachment): string {
  return `${a.type}:${a.path}:${(a.cell_ids ?? []).join(',')}`;
}

/**
 * Add `a` unless it is already there. A whole notebook replaces cell
 * selections of the same notebook, and cells of a notebook attached whole
 * add nothing.
 */
/** The server's limit per message (agent/attachments.py MAX_ATTACHMENTS). */
export const MAX_ATTACHMENTS = 20;

/** Whether `a` would be a new chip that does not fit (the list is full and `a` is not in it). */
export function attachmentsFull(list: readonly IAttachment[], a: IAttachment): boolean {
  return list.length >= MAX_ATTACHMENTS && !list.some(x => attachmentKey(x) === attachmentKey(a));
}

export function addAttachment(list: readonly IAttachment[], a: IAttachment): IAttachment[] {
  const key = attachmentKey(a);
  if (list.some(x => attachmentKey(x) === key)) {
    return [...list];
  }
  if (a.type === 'notebook' && a.cell_ids && list.some(x => x.path === a.path && x.type === 'notebook' && !x.cell_ids)) {
    return [...list];
  }
  const rest = a.type === 'notebook' && !a.cell_ids ? list.filter(x => !(x.type === 'notebook' && x.path === a.path)) : list;
  return [...rest, a];
}

export function removeAttachment(list: readonly IAttachment[], a: IAttachment): IAttachment[] {
  const key = attachmentKey(a);
  return list.filter(x => attachmentKey(x) !== key);
}

/** What the prompt sends: the reference only (the server refuses any other field). */
export function attachmentRef(a: IAttachment): IAttachment {
  return a.cell_ids && a.cell_ids.length ? { type: a.type, path: a.path, cell_ids: [...a.cell_ids] } : { type: a.type, path: a.path };
}

/** "train.py", "analysis.ipynb · 2 cells". */
export function attachmentLabel(a: IAttachment): string {
  const cells = a.cell_ids?.length ?? 0;
  return cells ? `${basename(a.path)} · ${cells} cell${cells === 1 ? '' : 's'}` : basename(a.path);
}

export function formatBytes(n: number): string {
  if (n < 1024) {
    return `${n} B`;
  }
  return n < 1024 * 1024 ? `${Math.round(n / 1024)} KB` : `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** The chip's tooltip: the path, what was sent, and the server's note. */
export function attachmentTitle(a: IAttachment): string {
  const parts = [a.path];
  if (a.refused) {
    parts.push('not attached');
  } else if (typeof a.size === 'number') {
    parts.push(`${formatBytes(a.size)} sent`);
  }
  if (a.note) {
    parts.push(a.note);
  }
  return parts.join(' · ');
}

/** The attachments of a context from the wire (an event), keeping only well-formed ones. */
export function attachmentsOf(context: unknown): IAttachment[] {
  const list = context && typeof context === 'object' ? (context as { attachments?: unknown }).attachments : undefined;
  if (!Array.isArray(list)) {
    return [];
  }
  const out: IAttachment[] = [];
  for (const raw of list) {
    if (!raw || typeof raw !== 'object') {
      continue;
    }
    const r = raw as Record<string, unknown>;
    if ((r.type !== 'file' && r.type !== 'notebook') || typeof r.path !== 'string' || !r.path) {
      continue;
    }
    const a: IAttachment = { type: r.type, path: r.path };
    if (Array.isArray(r.cell_ids)) {
      a.cell_ids = r.cell_ids.filter((c): c is string => typeof c === 'string');
    }
    if (typeof r.size === 'number' && Number.isFinite(r.size)) {
      a.size = r.size;
    }
    if (typeof r.note === 'string') {
      a.note = r.note;
    }
    if (r.refused === true) {
      a.refused = true;
    }
    out.push(a);
  }
  return out;
}

/** The notebook offer as button labels: "Attach notebook", "Attach cell 3" / "Attach 2 selected cells". */
export function offerLabels(offer: INotebookOffer): { notebook: string; cells: string | null } {
  const n = offer.cellIds.length;
  const cells = n === 0 ? null : n === 1 ? `Attach cell ${offer.firstIndex + 1}` : `Attach ${n} selected cells`;
  return { notebook: 'Attach notebook', cells };
}

/** An entry of the file browser's selection (a `Contents.IModel`: type 'directory', 'file' or 'notebook'). */
export interface IBrowserItem {
  type: string;
  /** Relative to the server's root (drive prefix already removed). */
  path: string;
}

/**
 * The file browser's selection as attachments, typed the way the server types
 * its `@` results (`.ipynb` is a notebook, anything else a file). Folders cannot
 * be attached: they come back apart, so the command can say it skipped them.
 */
export function selectionAttachments(items: Iterable<IBrowserItem>): { attachments: IAttachment[]; folders: string[] } {
  let attachments: IAttachment[] = [];
  const folders: string[] = [];
  for (const item of items) {
    if (item.type === 'directory') {
      folders.push(item.path);
    } else if (item.path) {
      attachments = addAttachment(attachments, { type: item.path.endsWith('.ipynb') ? 'notebook' : 'file', path: item.path });
    }
  }
  return { attachments, folders };
}

/** The context as a prompt sends it: attachments as bare references, no empty list; undefined when empty. */
export function wireContext(context: IAttachedContext | null | undefined): IAttachedContext | undefined {
  if (!context) {
    return undefined;
  }
  const { attachments, ...rest } = context;
  const out: IAttachedContext = attachments && attachments.length ? { ...rest, attachments: attachments.map(attachmentRef) } : rest;
  return Object.keys(out).length ? out : undefined;
}
