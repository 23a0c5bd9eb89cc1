import { Dialog, showDialog } from '@jupyterlab/apputils';
import { deleteIcon, editIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { ISession } from '../api';
import { formatCost } from '../format';
import { AgentModel } from '../model';

function ago(seconds: number | undefined): string {
  if (typeof seconds !== 'number') {
    return '';
  }
  const delta = Math.max(0, Date.now() / 1000 - seconds);
  if (delta < 60) {
    return 'just now';
  }
  if (delta < 3600) {
    return `${Math.floor(delta / 60)} min ago`;
  }
  if (delta < 86400) {
    return `${Math.floor(delta / 3600)} h ago`;
  }
  return new Date(seconds * 1000).toLocaleDateString();
}

function Row(props: { session: ISession; current: boolean; model: AgentModel; onPicked: () => void }): JSX.Element {
  const { session, current, model, onPicked } = props;
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState(session.title);

  const save = (): void => {
    setEditing(false);
    if (title.trim() && title.trim() !== session.title) {
      void model.renameSession(session.id, title);
    } else {
      setTitle(session.title);
    }
  };

  const remove = async (): Promise<void> => {
    const result = await showDialog({
      title: 'Delete this session?',
      body: `"${session.title}" and its history will be deleted, and the scripts it started will be stopped.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (result.button.accept) {
      await model.deleteSession(session.id);
    }
  };

  const cost = session.usage?.cost_usd;
  return (
    <li className={`jp-IDEAgent-sessionItem${current ? ' jp-mod-current' : ''}`} data-session-id={session.id}>
      {editing ? (
        <input
          className="jp-IDEAgent-renameInput"
          value={title}
          autoFocus
          aria-label="Session title"
          onChange={e => setTitle(e.target.value)}
          onBlur={save}
          onKeyDown={e => {
            if (e.key === 'Enter') {
              save();
            } else if (e.key === 'Escape') {
              setTitle(session.title);
              setEditing(false);
            }
          }}
        />
      ) : (
        <button
          className="jp-IDEAgent-sessionPick"
          onClick={() => {
            void model.switchSession(session.id);
            onPicked();
          }}
          title={current ? 'The current session' : 'Switch to this session'}
        >
          <span className="jp-IDEAgent-sessionItemTitle">
            {session.running && <span className="jp-IDEAgent-dot" title="running" />}
            {session.title || 'Untitled session'}
          </span>
          <span className="jp-IDEAgent-sessionItemMeta">
            {ago(session.updated)}
            {cost ? ` · ${formatCost(cost)}` : ''}
          </span>
        </button>
      )}
      <ToolbarButtonComponent
        icon={editIcon}
        className="jp-IDEAgent-renameSession"
        tooltip="Rename"
        onClick={() => {
          setTitle(session.title);
          setEditing(true);
        }}
      />
      <ToolbarButtonComponent
        icon={deleteIcon}
        className="jp-IDEAgent-deleteSession"
        tooltip="Delete"
        onClick={() => void remove()}
      />
    </li>
  );
}

/** Every session of the server: switch, rename, delete (the header's "+" creates one). */
export function SessionList(props: { model: AgentModel; sessions: ISession[]; currentId: string | null; onPicked: () => void }): JSX.Element {
  const { model, sessions, currentId, onPicked } = props;
  return (
    <div className="jp-IDEAgent-sessions">
      {sessions.length === 0 ? (
        <div className="jp-IDEAgent-sessionsEmpty">No sessions yet.</div>
      ) : (
        <ul className="jp-IDEAgent-sessionList" aria-label="Sessions">
          {sessions.map(s => (
            <Row key={s.id} session={s} current={s.id === currentId} model={model} onPicked={onPicked} />
          ))}
        </ul>
      )}
    </div>
  );
}
