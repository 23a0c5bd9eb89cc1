/**
 * The agent's commands: in the palette, in the notebook cell context menu and
 * (open) behind a keyboard shortcut. Requests made from a notebook carry its
 * path and the cells (id, type, source, error traceback) as `context`.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { INotebookOffer } from './attachments';

import { pendingApprovals } from './events';
import { agentIcon } from './icon';
import { AgentModel } from './model';
import { activeErrorCell, notebookContext, selectedCells, selectedText } from './notebook';
import { CommandIDs, IPromptContext } from './tokens';
import { AgentSidebar } from './widget';

const CATEGORY = 'IDE Agent';
const CELL_SELECTOR = '.jp-Notebook .jp-Cell';
const ATTACH_NOTEBOOK = 'ide-agent:attach-notebook';

/** The current notebook and its selected cells (the active one when none is selected), for the prompt's buttons. */
function notebookOffer(tracker: INotebookTracker): INotebookOffer | null {
  const panel = tracker.currentWidget;
  if (!panel) {
    return null;
  }
  const cells = selectedCells(tracker)?.cells ?? [];
  return {
    path: panel.context.path,
    cellIds: cells.map(cell => cell.model.id),
    firstIndex: cells.length ? panel.content.widgets.indexOf(cells[0]) : 0
  };
}

export function registerCommands(
  app: JupyterFrontEnd,
  model: AgentModel,
  sidebar: AgentSidebar,
  tracker: INotebookTracker | null,
  palette: ICommandPalette | null
): void {
  const { commands } = app;

  const open = (): void => {
    app.shell.activateById(sidebar.id);
    sidebar.focusPrompt();
  };

  /** Open the sidebar and wait for its session; false (with the sidebar showing why) if the server is not ready. */
  const ready = async (): Promise<boolean> => {
    open();
    return model.whenReady();
  };

  const errorPrompt = async (verb: 'explain' | 'fix'): Promise<void> => {
    const found = tracker ? activeErrorCell(tracker) : null;
    if (!found || !(await ready())) {
      return;
    }
    const context = notebookContext(found.panel, [found.cell]);
    const cell = context.cells![0];
    const where = `cell ${cell.index + 1} (id ${cell.id}) of ${context.notebook}`;
    const text =
      verb === 'explain'
        ? `Explain the error in ${where}: what went wrong, and how to fix it. Do not change the notebook.`
        : `Fix the error in ${where}: find the cause, edit that cell (by its id) or the code it depends on, and run it again to check.`;
    model.prompt(text, context);
  };

  commands.addCommand(CommandIDs.open, {
    label: 'IDE Agent: Open',
    caption: 'Open the IDE Agent sidebar',
    icon: agentIcon,
    execute: open
  });

  commands.addCommand(CommandIDs.newSession, {
    label: 'IDE Agent: New Session',
    caption: 'Start a new IDE Agent conversation',
    execute: async () => {
      open();
      await model.start();
      await model.newSession();
    }
  });

  commands.addCommand(CommandIDs.askCells, {
    label: 'IDE Agent: Ask About the Selected Cells',
    caption: 'Attach the selected cells to your next question to the agent',
    icon: agentIcon,
    isEnabled: () => !!tracker?.currentWidget,
    execute: async () => {
      const found = tracker ? selectedCells(tracker) : null;
      if (!found || !(await ready())) {
        return;
      }
      model.attachContext(notebookContext(found.panel, found.cells), 'agent');
      open();
    }
  });

  commands.addCommand(CommandIDs.explainError, {
    label: 'IDE Agent: Explain the Error of the Active Cell',
    caption: 'Ask the agent why the active cell failed (sends the cell and its traceback)',
    isEnabled: () => !!tracker && activeErrorCell(tracker) !== null,
    execute: () => errorPrompt('explain')
  });

  commands.addCommand(CommandIDs.fixError, {
    label: 'IDE Agent: Fix the Error of the Active Cell',
    caption: 'Ask the agent to fix and re-run the active cell (sends the cell and its traceback)',
    isEnabled: () => !!tracker && activeErrorCell(tracker) !== null,
    execute: () => errorPrompt('fix')
  });

  commands.addCommand(CommandIDs.consultSelection, {
    label: 'IDE Agent: Consult the Ensemble on the Selection',
    caption:
      'Ask the four-model ensemble about the selected text; with cells selected and no text, attach them and type the question',
    isEnabled: () => model.state.settings.ensemble,
    isVisible: () => model.state.settings.ensemble,
    execute: async () => {
      const current = app.shell.currentWidget;
      const text = tracker ? selectedText(tracker, current) : (window.getSelection()?.toString() ?? '');
      const found = tracker && tracker.currentWidget && current === tracker.currentWidget ? selectedCells(tracker) : null;
      let context: IPromptContext | undefined = found ? notebookContext(found.panel, found.cells) : undefined;
      const path = (current as { context?: { path?: string } } | null)?.context?.path;
      if (!context && path) {
        context = { file: path };
      }
      if (!(await ready())) {
        return;
      }
      if (text.trim()) {
        model.consult(text, context);
      } else {
        model.attachContext(context ?? null, 'ensemble');
        open();
      }
    }
  });

  commands.addCommand(ATTACH_NOTEBOOK, {
    label: 'IDE Agent: Attach the Notebook to the Prompt',
    caption: 'Attach the current notebook (its cells, with outputs trimmed) to your next request to the agent',
    icon: agentIcon,
    isEnabled: () => !!tracker?.currentWidget,
    execute: async () => {
      const panel = tracker?.currentWidget;
      if (!panel || !(await ready())) {
        return;
      }
      model.attach.add({ type: 'notebook', path: panel.context.path });
      open();
    }
  });

  commands.addCommand(CommandIDs.stop, {
    label: 'IDE Agent: Stop',
    caption: 'Stop the running turn and consultations',
    isEnabled: () => model.running,
    execute: () => model.cancel()
  });

  for (const command of [...Object.values(CommandIDs), ATTACH_NOTEBOOK]) {
    palette?.addItem({ command, category: CATEGORY });
  }

  app.contextMenu.addItem({ type: 'separator', selector: CELL_SELECTOR, rank: 60 });
  [CommandIDs.askCells, CommandIDs.explainError, CommandIDs.fixError, CommandIDs.consultSelection].forEach(
    (command, i) => app.contextMenu.addItem({ command, selector: CELL_SELECTOR, rank: 60.1 + i / 10 })
  );
  app.contextMenu.addItem({ command: CommandIDs.consultSelection, selector: '.jp-FileEditor', rank: 60 });
  app.contextMenu.addItem({ command: ATTACH_NOTEBOOK, selector: CELL_SELECTOR, rank: 60.5 });

  // The prompt's "Attach notebook" / "Attach N selected cells" follow the current notebook and its selection.
  if (tracker) {
    const offer = (): void => model.setNotebookOffer(notebookOffer(tracker));
    let watched: NotebookPanel | null = null;
    tracker.currentChanged.connect((_, panel) => {
      watched?.context.pathChanged.disconnect(offer);
      watched = panel;
      panel?.context.pathChanged.connect(offer);
      offer();
    });
    tracker.activeCellChanged.connect(offer);
    tracker.selectionChanged.connect(offer);
    offer();
  }

  // Stop's and the ensemble command's state follow the model: tell the menus
  // when they change (not at every streamed token).
  // An approval request while the sidebar is hidden would go unseen: say so.
  const announced = new Set<string>();
  let last = { running: model.running, ensemble: model.state.settings.ensemble };
  model.stateChanged.connect(() => {
    for (const call of pendingApprovals(model.state.conversation)) {
      if (!announced.has(call.callId)) {
        announced.add(call.callId);
        if (!sidebar.isVisible) {
          Notification.warning(`The IDE Agent waits for your approval to run ${call.name}.`, {
            autoClose: false,
            actions: [{ label: 'Show', callback: open }]
          });
        }
      }
    }
    const now = { running: model.running, ensemble: model.state.settings.ensemble };
    if (now.running !== last.running) {
      commands.notifyCommandChanged(CommandIDs.stop);
    }
    if (now.ensemble !== last.ensemble) {
      commands.notifyCommandChanged(CommandIDs.consultSelection);
    }
    last = now;
  });
}
