/**
 * The JupyterLab plugin: the IDE Agent sidebar (right area), its commands and
 * its settings.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Clipboard, ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { AgentApi } from './api';
import { registerCommands } from './commands';
import { registerFileBrowserAttach } from './fileBrowser';
import { AgentModel } from './model';
import { insertCell } from './notebook';
import { DEFAULT_SETTINGS, IAgentSettings, PLUGIN_ID } from './tokens';
import { AgentSidebar } from './widget';

/** Fenced code in these languages becomes a markdown cell; anything else a code cell. */
const MARKDOWN_LANGUAGES = new Set(['markdown', 'md']);

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'An autonomous IDE agent in a JupyterLab sidebar.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ICommandPalette, ISettingRegistry, ILayoutRestorer, INotebookTracker, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    tracker: INotebookTracker | null,
    fileBrowser: IDefaultFileBrowser | null
  ): void => {
    const model = new AgentModel(new AgentApi(app.serviceManager.serverSettings));
    const sidebar = new AgentSidebar(model, {
      rendermime,
      copy: text => Clipboard.copyToSystem(text),
      insertCell: tracker
        ? (source, language) => insertCell(tracker, source, MARKDOWN_LANGUAGES.has(language) ? 'markdown' : 'code')
        : null
    });
    app.shell.add(sidebar, 'right', { rank: 900 });
    restorer?.add(sidebar, 'ide-agent-sidebar');

    // The keyboard shortcut of ide-agent:open is declared in schema/plugin.json
    // ("jupyter.lab.shortcuts") so users can change it in the shortcut editor.
    model.openFile = path => void app.commands.execute('docmanager:open', { path });
    registerCommands(app, model, sidebar, tracker, palette);
    if (fileBrowser) {
      registerFileBrowserAttach(app, model, fileBrowser);
    }

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = (): void => {
            const composite = settings.composite as Partial<IAgentSettings>;
            model.setSettings({ ...DEFAULT_SETTINGS, ...composite });
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => console.warn(`IDE Agent: could not load settings for ${PLUGIN_ID}`, reason));
    }
  }
};

export default plugin;
