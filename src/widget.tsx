import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { Sidebar } from './components/Sidebar';
import { agentIcon } from './icon';
import { AgentModel } from './model';

/** The right-area sidebar; it asks the server for its status the first time it is shown. */
export class AgentSidebar extends ReactWidget {
  constructor(
    readonly model: AgentModel,
    private readonly _rendermime: IRenderMimeRegistry
  ) {
    super();
    this.id = 'jp-ide-agent-sidebar';
    this.addClass('jp-IDEAgent');
    this.title.icon = agentIcon;
    this.title.caption = 'IDE Agent';
  }

  protected render(): JSX.Element {
    return <Sidebar model={this.model} rendermime={this._rendermime} />;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.model.start();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      void this.model.start();
    }
  }

  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    this.focusPrompt();
  }

  focusPrompt(): void {
    window.requestAnimationFrame(() => {
      const input = this.node.querySelector<HTMLTextAreaElement>('.jp-IDEAgent-input');
      input?.focus();
    });
  }

  dispose(): void {
    if (!this.isDisposed) {
      this.model.dispose();
    }
    super.dispose();
  }
}
