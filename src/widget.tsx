import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import React from 'react';

import { IServices } from './components/services';
import { Sidebar } from './components/Sidebar';
import { agentIcon } from './icon';
import { AgentModel } from './model';

/** The right-area sidebar; it asks the server for its status the first time it is shown. */
export class AgentSidebar extends ReactWidget {
  constructor(
    readonly model: AgentModel,
    private readonly _services: IServices
  ) {
    super();
    this.id = 'jp-ide-agent-sidebar';
    this.addClass('jp-IDEAgent');
    this.title.icon = agentIcon;
    this.title.caption = 'IDE Agent';
  }

  protected render(): JSX.Element {
    return <Sidebar model={this.model} services={this._services} />;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.workspace.setVisible(true);
    void this.model.start();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.workspace.setVisible(false);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this.model.workspace.setVisible(true);
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
