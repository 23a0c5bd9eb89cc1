/**
 * "Attach to IDE Agent" in the file browser's context menu: the selected files
 * and notebooks become chips in the prompt box, exactly as picking them with
 * `@` would (same `{type, path}` references, so the server reads them the same
 * way). Only registered when JupyterLab has a default file browser.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';

import { IBrowserItem, selectionAttachments } from './attachments';
import { agentIcon } from './icon';
import { AgentModel } from './model';
import { CommandIDs } from './tokens';

export const ATTACH_FILES = 'ide-agent:attach-file';

/** Files and notebooks only: right-clicking a folder does not offer the entry. */
const FILE_ITEM = '.jp-DirListing-item[data-isdir="false"]';
/** Just after the browser's own "Copy Path" (14), before its "New ..." group (50). */
const RANK = 15;

export function registerFileBrowserAttach(app: JupyterFrontEnd, model: AgentModel, browser: IDefaultFileBrowser): void {
  const { contents } = app.serviceManager;

  /** The selection with paths relative to the server's root: a drive prefix ("RTC:a.py") is not part of it. */
  const selection = (): IBrowserItem[] =>
    Array.from(browser.selectedItems(), item => ({ type: item.type, path: contents.localPath(item.path) }));

  app.commands.addCommand(ATTACH_FILES, {
    label: 'Attach to IDE Agent',
    caption: 'Attach the selected files and notebooks to your next request to the IDE Agent (folders are skipped)',
    icon: agentIcon,
    isEnabled: () => selection().some(item => item.type !== 'directory'),
    execute: async () => {
      const { attachments, folders } = selectionAttachments(selection());
      if (folders.length) {
        const what = folders.length === 1 ? `the folder ${folders[0]}` : `${folders.length} folders`;
        Notification.info(`IDE Agent: skipped ${what}. Only files and notebooks can be attached.`, { autoClose: 5000 });
      }
      if (!attachments.length) {
        return;
      }
      await app.commands.execute(CommandIDs.open);
      if (!(await model.whenReady())) {
        return; // the sidebar shows why (no server extension, no provider...)
      }
      for (const attachment of attachments) {
        model.attach.add(attachment);
      }
      await app.commands.execute(CommandIDs.open); // the prompt has focus, its chips shown
    }
  });

  app.contextMenu.addItem({ command: ATTACH_FILES, selector: FILE_ITEM, rank: RANK });
}
