/**
 * What the commands read from and write to the user's notebooks: the selected
 * cells as context (ids, types, sources, error tracebacks), the selected text,
 * and "insert as cell" below the active cell. Cells are named by id, never by
 * "whatever tab is active" at the time the agent acts: the context carries the
 * notebook's path.
 */
import { Cell, CodeCell } from '@jupyterlab/cells';
import * as nbformat from '@jupyterlab/nbformat';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { stripAnsi } from './format';
import { ICellContext, IPromptContext } from './tokens';

/** Sources and tracebacks longer than this are cut (the model gets the head and the tail). */
const MAX_TEXT = 20000;

function clip(text: string): string {
  if (text.length <= MAX_TEXT) {
    return text;
  }
  const head = text.slice(0, (MAX_TEXT * 2) / 3);
  const tail = text.slice(-MAX_TEXT / 3);
  return `${head}\n[... ${text.length - head.length - tail.length} characters cut ...]\n${tail}`;
}

/** The first error output of a code cell, if any. */
export function cellError(cell: Cell): nbformat.IError | null {
  if (!(cell instanceof CodeCell) || !cell.model.outputs) {
    return null;
  }
  const outputs = cell.model.outputs;
  for (let i = 0; i < outputs.length; i++) {
    const output = outputs.get(i).toJSON();
    if (output.output_type === 'error') {
      return output as nbformat.IError;
    }
  }
  return null;
}

export function cellContext(cell: Cell, index: number): ICellContext {
  const model = cell.model;
  const context: ICellContext = {
    id: model.id,
    type: model.type,
    index,
    source: clip(model.sharedModel.getSource())
  };
  if (cell instanceof CodeCell) {
    context.execution_count = cell.model.executionCount ?? null;
    const error = cellError(cell);
    if (error) {
      context.error = `${error.ename}: ${error.evalue}`;
      context.traceback = clip(stripAnsi((error.traceback ?? []).join('\n')));
    }
  }
  return context;
}

/** The selected cells of the current notebook (the active one when none is selected). */
export function selectedCells(tracker: INotebookTracker): { panel: NotebookPanel; cells: Cell[] } | null {
  const panel = tracker.currentWidget;
  if (!panel) {
    return null;
  }
  const notebook = panel.content;
  const cells = notebook.widgets.filter(cell => notebook.isSelectedOrActive(cell));
  return cells.length ? { panel, cells } : null;
}

export function notebookContext(panel: NotebookPanel, cells: readonly Cell[]): IPromptContext {
  const all = panel.content.widgets;
  return {
    notebook: panel.context.path,
    cells: cells.map(cell => cellContext(cell, all.indexOf(cell)))
  };
}

/** The current notebook's active cell when it is a code cell showing an error. */
export function activeErrorCell(tracker: INotebookTracker): { panel: NotebookPanel; cell: Cell } | null {
  const panel = tracker.currentWidget;
  const cell = panel?.content.activeCell;
  if (!panel || !cell || !cellError(cell)) {
    return null;
  }
  return { panel, cell };
}

interface IEditorLike {
  getSelection(): { start: { line: number; column: number }; end: { line: number; column: number } };
  getOffsetAt(position: { line: number; column: number }): number;
  model: { sharedModel: { getSource(): string } };
}

function editorSelection(editor: IEditorLike | null | undefined): string {
  if (!editor) {
    return '';
  }
  const { start, end } = editor.getSelection();
  const a = editor.getOffsetAt(start);
  const b = editor.getOffsetAt(end);
  return a === b ? '' : editor.model.sharedModel.getSource().slice(Math.min(a, b), Math.max(a, b));
}

/**
 * The text the user selected: in the active cell's editor, in a file editor
 * (`current` is the shell's current widget), or anywhere on the page.
 */
export function selectedText(tracker: INotebookTracker, current: Widget | null): string {
  const inCell = editorSelection(tracker.currentWidget?.content.activeCell?.editor as IEditorLike | undefined);
  if (inCell.trim()) {
    return inCell;
  }
  const fileEditor = (current as { content?: { editor?: IEditorLike } } | null)?.content?.editor;
  if (fileEditor && typeof fileEditor.getSelection === 'function') {
    const inFile = editorSelection(fileEditor);
    if (inFile.trim()) {
      return inFile;
    }
  }
  return window.getSelection()?.toString() ?? '';
}

/** Insert `source` as a new cell below the active cell of the current notebook; false if none is open. */
export function insertCell(tracker: INotebookTracker, source: string, type: nbformat.CellType = 'code'): boolean {
  const panel = tracker.currentWidget;
  if (!panel) {
    return false;
  }
  const notebook = panel.content;
  NotebookActions.insertBelow(notebook);
  if (type !== 'code') {
    NotebookActions.changeCellType(notebook, type);
  }
  notebook.activeCell?.model.sharedModel.setSource(source);
  return true;
}
