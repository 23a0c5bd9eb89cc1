import React, { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';

import {
  applyMention,
  findMention,
  IAttachActions,
  IAttachedContext,
  IFileMatch,
  INotebookOffer,
  offerLabels,
  rankPaths
} from '../attachments';
import { summarizeContext } from '../context';
import { ComposeMode } from '../model';
import { AttachmentChip, Mentions, MENTIONS_ID, optionId } from './Mentions';

/** Wait this long after a keystroke before asking the server (the cached list filters at once meanwhile). */
const SEARCH_DELAY_MS = 120;
const SHOWN = 50;

export interface IPromptBoxProps {
  /** A turn or a consultation runs: offer Stop. */
  running: boolean;
  /** An agent turn runs: a prompt sent now is queued after it. */
  turnRunning: boolean;
  stopping: boolean;
  disabled: boolean;
  /** Where Enter sends: the agent, or the ensemble directly. */
  mode: ComposeMode;
  /** The ensemble setting: without it there is no ensemble button. */
  ensemble: boolean;
  context: IAttachedContext | null;
  onSend: (text: string, mode: ComposeMode) => boolean;
  onStop: () => void;
  onClearContext: () => void;
  /** `@` completion and attachment chips; without it the prompt has neither. */
  attach?: IAttachActions;
  /** The current notebook and its selected cells: the one-click attach buttons. */
  notebookOffer?: INotebookOffer | null;
}

interface ISearchResult {
  /** The query this answer is for (null before the first answer). */
  query: string | null;
  files: IFileMatch[];
  truncated: boolean;
}

/** The `@` completion: what to show for the mention at the caret, with the server's answers. */
function useFileSearch(attach: IAttachActions | undefined, query: string | null) {
  const [result, setResult] = useState<ISearchResult>({ query: null, files: [], truncated: false });
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const latest = useRef(0);

  useEffect(() => {
    if (!attach || query === null) {
      return;
    }
    const request = ++latest.current;
    setLoading(true);
    const timer = window.setTimeout(() => {
      attach.search(query).then(
        found => {
          if (request === latest.current) {
            setResult({ query, files: found.files, truncated: found.truncated });
            setError(null);
            setLoading(false);
          }
        },
        reason => {
          if (request === latest.current) {
            setError(`Could not list the files: ${reason?.message ?? reason}`);
            setLoading(false);
          }
        }
      );
    }, SEARCH_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [attach, query]);

  // While the server is asked, the last answer narrowed by the same ranking shows at once.
  const items = useMemo(
    () => (query === null ? [] : result.query === query ? result.files : rankPaths(query, result.files, SHOWN)),
    [query, result]
  );
  return { items, loading: loading && result.query !== query, error, truncated: result.truncated };
}

/**
 * The prompt: Enter sends (to the agent, or to the ensemble in ensemble mode),
 * Alt+Enter asks the ensemble, Shift+Enter inserts a newline; Stop while a
 * turn or a consultation runs. `@` completes the workspace's files and
 * notebooks and attaches the one picked as a chip (the text keeps a readable
 * `@path`; the chips are what is sent). Context attached by a command shows as
 * a chip too.
 */
export function PromptBox(props: IPromptBoxProps): JSX.Element {
  const { running, turnRunning, stopping, disabled, mode, ensemble, context, onSend, onStop, onClearContext } = props;
  const { attach, notebookOffer } = props;
  const [text, setText] = useState('');
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  /** The start of a mention the user closed with Escape: no popup for it until they move elsewhere. */
  const [dismissed, setDismissed] = useState<number | null>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const pendingCaret = useRef<number | null>(null);
  const ensembleMode = ensemble && mode === 'ensemble';

  const mention = attach ? findMention(text, caret) : null;
  const open = mention !== null && mention.start !== dismissed;
  const search = useFileSearch(attach, open ? mention.query : null);
  const items = search.items;
  const highlighted = Math.min(active, Math.max(0, items.length - 1));

  useEffect(() => setActive(0), [mention?.query, mention?.start]);
  useEffect(() => {
    if (dismissed !== null && mention?.start !== dismissed) {
      setDismissed(null);
    }
  }, [mention?.start, dismissed]);

  useLayoutEffect(() => {
    const node = input.current;
    if (node && pendingCaret.current !== null) {
      node.focus();
      node.setSelectionRange(pendingCaret.current, pendingCaret.current);
      setCaret(pendingCaret.current);
      pendingCaret.current = null;
    }
  });

  const send = (target: ComposeMode): void => {
    if (text.trim() && onSend(text, target)) {
      setText('');
      setCaret(0);
    }
  };

  const pick = (item: IFileMatch): void => {
    if (!mention || !attach) {
      return;
    }
    const next = applyMention(text, mention, item.path);
    pendingCaret.current = next.caret;
    setText(next.text);
    attach.add({ type: item.type === 'notebook' ? 'notebook' : 'file', path: item.path });
  };

  const onKeyDown = (event: React.KeyboardEvent<HTMLTextAreaElement>): void => {
    if (open && !event.nativeEvent.isComposing) {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        setDismissed(mention.start);
        return;
      }
      if (items.length && (event.key === 'ArrowDown' || event.key === 'ArrowUp')) {
        event.preventDefault();
        const step = event.key === 'ArrowDown' ? 1 : -1;
        setActive((highlighted + step + items.length) % items.length);
        return;
      }
      if (items.length && (event.key === 'Tab' || (event.key === 'Enter' && !event.shiftKey && !event.altKey))) {
        event.preventDefault();
        pick(items[highlighted]);
        return;
      }
    }
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      send(event.altKey && ensemble ? 'ensemble' : ensembleMode ? 'ensemble' : 'agent');
    }
  };

  const trackCaret = (event: React.SyntheticEvent<HTMLTextAreaElement>): void => {
    setCaret(event.currentTarget.selectionStart ?? 0);
  };

  const chip = summarizeContext(context);
  const attachments = context?.attachments ?? [];
  const offer = attach && notebookOffer ? notebookOffer : null;
  const labels = offer ? offerLabels(offer) : null;
  const wholeAttached = !!offer && attachments.some(a => a.type === 'notebook' && a.path === offer.path && !a.cell_ids);
  let placeholder = 'Ask the agent… (@ attaches a file, Enter sends, Shift+Enter for a new line)';
  if (ensembleMode) {
    placeholder = 'Ask the four-model ensemble directly… (Enter asks)';
  } else if (turnRunning) {
    placeholder = 'The agent is working; a prompt sent now runs after this turn';
  }

  return (
    <div className={`jp-IDEAgent-prompt${ensembleMode ? ' jp-mod-ensemble' : ''}`}>
      {chip && (
        <div className="jp-IDEAgent-contextRow">
          <span className="jp-IDEAgent-contextChip" title="Sent as context with your next request">
            {chip}
          </span>
          <button className="jp-IDEAgent-link jp-IDEAgent-clearContext" onClick={onClearContext} title="Do not send this context">
            Remove
          </button>
        </div>
      )}
      {(attachments.length > 0 || offer) && (
        <div className="jp-IDEAgent-attachRow">
          {attachments.map(a => (
            <AttachmentChip key={`${a.type}:${a.path}:${a.cell_ids?.join(',') ?? ''}`} attachment={a} onRemove={() => attach?.remove(a)} />
          ))}
          {offer && labels && (
            <span className="jp-IDEAgent-attachOffer">
              <button
                className="jp-IDEAgent-link jp-IDEAgent-attachNotebook"
                disabled={wholeAttached}
                onClick={() => attach?.add({ type: 'notebook', path: offer.path })}
                title={`Attach ${offer.path} (its cells, outputs trimmed) to your next request`}
              >
                {labels.notebook}
              </button>
              {labels.cells && !wholeAttached && (
                <button
                  className="jp-IDEAgent-link jp-IDEAgent-attachCells"
                  onClick={() => attach?.add({ type: 'notebook', path: offer.path, cell_ids: offer.cellIds })}
                  title={`Attach the selected cells of ${offer.path} to your next request`}
                >
                  {labels.cells}
                </button>
              )}
            </span>
          )}
        </div>
      )}
      <div className="jp-IDEAgent-inputWrap">
        {open && (
          <Mentions
            items={items}
            active={highlighted}
            query={mention.query}
            loading={search.loading}
            error={search.error}
            truncated={search.truncated}
            onPick={pick}
            onHover={setActive}
          />
        )}
        <textarea
          ref={input}
          className="jp-IDEAgent-input"
          rows={3}
          value={text}
          disabled={disabled}
          placeholder={placeholder}
          aria-label="Prompt"
          role="combobox"
          aria-autocomplete="list"
          aria-expanded={open}
          aria-controls={open ? MENTIONS_ID : undefined}
          aria-activedescendant={open && items.length ? optionId(highlighted) : undefined}
          onChange={event => {
            setText(event.target.value);
            setCaret(event.target.selectionStart ?? event.target.value.length);
          }}
          onSelect={trackCaret}
          onBlur={() => setDismissed(mention ? mention.start : null)}
          onKeyDown={onKeyDown}
        />
      </div>
      <div className="jp-IDEAgent-promptButtons">
        {running && (
          <button
            className="jp-IDEAgent-stop jp-mod-styled jp-mod-warn"
            onClick={onStop}
            disabled={stopping}
            title="Stop the running turn and consultations"
          >
            {stopping ? 'Stopping…' : 'Stop'}
          </button>
        )}
        <span className="jp-IDEAgent-spacer" />
        {ensemble && (
          <button
            className={`jp-IDEAgent-askEnsemble jp-mod-styled ${ensembleMode ? 'jp-mod-accept' : ''}`}
            onClick={() => send('ensemble')}
            disabled={disabled || !text.trim()}
            title="Ask the four-model ensemble directly, without the agent (Alt+Enter)"
          >
            <span className="jp-IDEAgent-wideLabel">Ask the ensemble</span>
            <span className="jp-IDEAgent-narrowLabel">Ensemble</span>
          </button>
        )}
        <button
          className={`jp-IDEAgent-send jp-mod-styled ${ensembleMode ? '' : 'jp-mod-accept'}`}
          onClick={() => send('agent')}
          disabled={disabled || !text.trim()}
          title="Send to the agent (Enter)"
        >
          Send
        </button>
      </div>
    </div>
  );
}
