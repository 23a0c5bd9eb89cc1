import React, { useState } from 'react';

import { summarizeContext } from '../context';
import { ComposeMode } from '../model';
import { IPromptContext } from '../tokens';

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
  context: IPromptContext | null;
  onSend: (text: string, mode: ComposeMode) => boolean;
  onStop: () => void;
  onClearContext: () => void;
}

/**
 * The prompt: Enter sends (to the agent, or to the ensemble in ensemble mode),
 * Alt+Enter asks the ensemble, Shift+Enter inserts a newline; Stop while a
 * turn or a consultation runs. Context attached by a command shows as a chip.
 */
export function PromptBox(props: IPromptBoxProps): JSX.Element {
  const { running, turnRunning, stopping, disabled, mode, ensemble, context, onSend, onStop, onClearContext } = props;
  const [text, setText] = useState('');
  const ensembleMode = ensemble && mode === 'ensemble';

  const send = (target: ComposeMode): void => {
    if (text.trim() && onSend(text, target)) {
      setText('');
    }
  };

  const onKeyDown = (event: React.KeyboardEvent<HTMLTextAreaElement>): void => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      send(event.altKey && ensemble ? 'ensemble' : ensembleMode ? 'ensemble' : 'agent');
    }
  };

  const chip = summarizeContext(context);
  let placeholder = 'Ask the agent… (Enter sends, Shift+Enter for a new line)';
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
      <textarea
        className="jp-IDEAgent-input"
        rows={3}
        value={text}
        disabled={disabled}
        placeholder={placeholder}
        aria-label="Prompt"
        onChange={event => setText(event.target.value)}
        onKeyDown={onKeyDown}
      />
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
