/** Ids shared by the plugin, the commands and the settings. */
export const PLUGIN_ID = 'jupyterlab-ide-agent:plugin';

export namespace CommandIDs {
  export const open = 'ide-agent:open';
  export const newSession = 'ide-agent:new-session';
}

/** The user-facing choices kept in the settings registry (schema/plugin.json). */
export interface IAgentSettings {
  /** `provider:model`; empty means the server's default (`c.IDEAgent.main_model`). */
  mainModel: string;
  showReasoning: boolean;
  /** Stored for the approval feature; the server does not use it yet. */
  approvalMode: 'never' | 'code';
}

export const DEFAULT_SETTINGS: IAgentSettings = {
  mainModel: '',
  showReasoning: true,
  approvalMode: 'never'
};
