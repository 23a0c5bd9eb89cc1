import React from 'react';

import { attachmentLabel, attachmentTitle, basename, formatBytes, IAttachment, IFileMatch } from '../attachments';

export const MENTIONS_ID = 'jp-IDEAgent-mentions';

export function optionId(index: number): string {
  return `${MENTIONS_ID}-option-${index}`;
}

export interface IMentionsProps {
  items: IFileMatch[];
  /** Index of the highlighted row (Up/Down move it, Enter/Tab pick it). */
  active: number;
  query: string;
  loading: boolean;
  error: string | null;
  /** The server's walk stopped early: say that some files may be missing. */
  truncated: boolean;
  onPick: (item: IFileMatch) => void;
  onHover: (index: number) => void;
}

/**
 * The `@` completion list above the prompt: one row per file or notebook
 * (name, folder, size). The textarea keeps the focus (rows are picked on
 * mouse down), so typing goes on narrowing the list.
 */
export function Mentions(props: IMentionsProps): JSX.Element {
  const { items, active, query, loading, error, truncated, onPick, onHover } = props;
  let status: string | null = null;
  if (error) {
    status = error;
  } else if (!items.length) {
    status = loading ? 'Searching…' : query ? `No file matches “${query}”` : 'No files in the workspace';
  }
  return (
    <div className="jp-IDEAgent-mentions">
      <ul id={MENTIONS_ID} role="listbox" aria-label="Files to attach" className="jp-IDEAgent-mentionList">
        {items.map((item, i) => {
          const slash = item.path.lastIndexOf('/');
          return (
            <li
              key={item.path}
              id={optionId(i)}
              role="option"
              aria-selected={i === active}
              className={`jp-IDEAgent-mention${i === active ? ' jp-mod-active' : ''}`}
              title={item.path}
              onMouseDown={event => {
                event.preventDefault(); // keep the focus (and the caret) in the prompt
                onPick(item);
              }}
              onMouseEnter={() => onHover(i)}
            >
              <span className={`jp-IDEAgent-mentionIcon jp-mod-${item.type}`} aria-hidden="true" />
              <span className="jp-IDEAgent-mentionName">{basename(item.path)}</span>
              <span className="jp-IDEAgent-mentionDir">{slash > 0 ? item.path.slice(0, slash) : ''}</span>
              <span className="jp-IDEAgent-mentionSize">{formatBytes(item.size)}</span>
            </li>
          );
        })}
      </ul>
      {status && <div className="jp-IDEAgent-mentionStatus">{status}</div>}
      {truncated && !error && (
        <div className="jp-IDEAgent-mentionStatus">The workspace is large: type more of the name to find the rest.</div>
      )}
    </div>
  );
}

/** One attachment as a chip; `onRemove` adds the ×. A refused one (missing, binary...) is marked. */
export function AttachmentChip(props: { attachment: IAttachment; onRemove?: () => void }): JSX.Element {
  const { attachment, onRemove } = props;
  const state = attachment.refused ? ' jp-mod-refused' : attachment.note ? ' jp-mod-cut' : '';
  return (
    <span
      className={`jp-IDEAgent-attachmentChip jp-mod-${attachment.type}${state}`}
      title={attachmentTitle(attachment)}
      data-path={attachment.path}
    >
      <span className="jp-IDEAgent-attachmentLabel">{attachmentLabel(attachment)}</span>
      {onRemove && (
        <button
          className="jp-IDEAgent-attachmentRemove"
          onClick={onRemove}
          aria-label={`Remove ${attachment.path}`}
          title={`Do not attach ${attachment.path}`}
        >
          ×
        </button>
      )}
    </span>
  );
}
