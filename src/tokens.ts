/** Ids and types shared by the plugin, the commands, the model and the settings. */
export const PLUGIN_ID = 'jupyterlab-ide-agent:plugin';

export namespace CommandIDs {
  export const open = 'ide-agent:open';
  export const newSession = 'ide-agent:new-session';
  export const askCells = 'ide-agent:ask-about-cells';
  export const explainError = 'ide-agent:explain-error';
  export const fixError = 'ide-agent:fix-error';
  export const consultSelection = 'ide-agent:consult-ensemble';
  export const stop = 'ide-agent:stop';
}

export type ApprovalMode = 'never' | 'code';

/** The user-facing choices kept in the settings registry (schema/plugin.json). */
export interface IAgentSettings {
  /** `provider:model` sent with each prompt; empty means the server's default (`c.IDEAgent.main_model`). */
  mainModel: string;
  showReasoning: boolean;
  /** 'code': the server asks (approval_request) before tools that run code or scripts. */
  approvalMode: ApprovalMode;
  /** Offer "Ask the ensemble" (button, commands); off sends no ensemble request. */
  ensemble: boolean;
}

export const DEFAULT_SETTINGS: IAgentSettings = {
  mainModel: '',
  showReasoning: true,
  approvalMode: 'never',
  ensemble: true
};

/** One notebook cell sent as context with a prompt. */
export interface ICellContext {
  id: string;
  type: string;
  /** 0-based position in the notebook when it was sent. */
  index: number;
  source: string;
  execution_count?: number | null;
  /** `ename: evalue` of the cell's error output. */
  error?: string;
  /** The error's traceback as plain text (ANSI codes removed). */
  traceback?: string;
}

/** The `context` of a prompt message: where the user is and what they point at. */
export interface IPromptContext {
  notebook?: string;
  cells?: ICellContext[];
  /** A file other than a notebook (the active editor's path). */
  file?: string;
  /** Text the user selected. */
  selection?: string;
}
