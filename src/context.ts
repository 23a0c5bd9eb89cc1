/**
 * The editor context attached to a request: a one-line summary for the chips,
 * and the plain-text form the ensemble's `context` string takes. Pure, no
 * JupyterLab imports (unit tested).
 */
import { IAttachedContext } from './attachments';
import { ICellContext, IPromptContext } from './tokens';

function basename(path: string): string {
  const parts = path.split('/');
  return parts[parts.length - 1] || path;
}

/** "analysis.ipynb · 2 cells", "analysis.ipynb · cell 3 (error)", "train.py · selection". */
export function summarizeContext(context: IPromptContext | Record<string, unknown> | null | undefined): string {
  if (!context) {
    return '';
  }
  const ctx = context as IPromptContext;
  const where = ctx.notebook ? basename(String(ctx.notebook)) : ctx.file ? basename(String(ctx.file)) : '';
  const cells = Array.isArray(ctx.cells) ? ctx.cells : [];
  const parts: string[] = [];
  if (where) {
    parts.push(where);
  }
  if (cells.length === 1) {
    const cell = cells[0];
    const index = typeof cell.index === 'number' ? `cell ${cell.index + 1}` : 'one cell';
    parts.push(cell.error ? `${index} (error)` : index);
  } else if (cells.length > 1) {
    parts.push(`${cells.length} cells`);
  }
  if (typeof ctx.selection === 'string' && ctx.selection) {
    parts.push('selection');
  }
  return parts.join(' · ');
}

function fence(text: string, lang = ''): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map(m => m.length));
  const ticks = '`'.repeat(longest + 1);
  return `${ticks}${lang}\n${text}\n${ticks}`;
}

function cellText(cell: ICellContext): string {
  const lines = [`Cell ${cell.index + 1} (id ${cell.id}, ${cell.type}):`, fence(cell.source, cell.type === 'code' ? 'python' : '')];
  if (cell.error) {
    lines.push(`Error: ${cell.error}`);
  }
  if (cell.traceback) {
    lines.push(fence(cell.traceback));
  }
  return lines.join('\n');
}

/** The context as the text an ensemble member reads (its API takes a string). */
export function contextAsText(context: IPromptContext | null | undefined): string | undefined {
  if (!context) {
    return undefined;
  }
  const parts: string[] = [];
  if (context.notebook) {
    parts.push(`Notebook: ${context.notebook}`);
  }
  if (context.file) {
    parts.push(`File: ${context.file}`);
  }
  for (const cell of context.cells ?? []) {
    parts.push(cellText(cell));
  }
  if (context.selection) {
    parts.push(`Selected text:\n${fence(context.selection)}`);
  }
  // the ensemble's API takes text only: name what the user attached (the agent is sent the content)
  const attached = (context as IAttachedContext).attachments ?? [];
  if (attached.length) {
    parts.push(`Files the user points at: ${attached.map(a => a.path).join(', ')}`);
  }
  return parts.length ? parts.join('\n\n') : undefined;
}
