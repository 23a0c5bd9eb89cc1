/**
 * The JupyterLab plugin: the IDE Agent sidebar (right area), its commands and
 * its settings.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { AgentApi } from './api';
import { agentIcon } from './icon';
import { AgentModel } from './model';
import { CommandIDs, DEFAULT_SETTINGS, IAgentSettings, PLUGIN_ID } from './tokens';
import { AgentSidebar } from './widget';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'An autonomous IDE agent in a JupyterLab sidebar.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ICommandPalette, ISettingRegistry, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const model = new AgentModel(new AgentApi(app.serviceManager.serverSettings));
    const sidebar = new AgentSidebar(model, rendermime);
    app.shell.add(sidebar, 'right', { rank: 900 });
    restorer?.add(sidebar, 'ide-agent-sidebar');

    const open = (): void => {
      app.shell.activateById(sidebar.id);
      sidebar.focusPrompt();
    };

    app.commands.addCommand(CommandIDs.open, {
      label: 'IDE Agent: Open',
      caption: 'Open the IDE Agent sidebar',
      icon: agentIcon,
      execute: open
    });
    app.commands.addCommand(CommandIDs.newSession, {
      label: 'IDE Agent: New Session',
      caption: 'Start a new IDE Agent conversation',
      execute: async () => {
        open();
        await model.start();
        await model.newSession();
      }
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.open, category: 'IDE Agent' });
      palette.addItem({ command: CommandIDs.newSession, category: 'IDE Agent' });
    }
    // The keyboard shortcut itself is declared in schema/plugin.json
    // ("jupyter.lab.shortcuts") so users can change it in the shortcut editor.

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
