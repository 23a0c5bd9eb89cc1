import React, { useState } from 'react';

export interface IPromptBoxProps {
  running: boolean;
  stopping: boolean;
  disabled: boolean;
  onSend: (text: string) => boolean;
  onStop: () => void;
}

/** The prompt: Enter sends, Shift+Enter inserts a newline; Stop while a turn runs. */
export function PromptBox(props: IPromptBoxProps): JSX.Element {
  const { running, stopping, disabled, onSend, onStop } = props;
  const [text, setText] = useState('');

  const send = (): void => {
    if (text.trim() && onSend(text)) {
      setText('');
    }
  };

  const onKeyDown = (event: React.KeyboardEvent<HTMLTextAreaElement>): void => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      send();
    }
  };

  return (
    <div className="jp-IDEAgent-prompt">
      <textarea
        className="jp-IDEAgent-input"
        rows={3}
        value={text}
        disabled={disabled}
        placeholder={
          running
            ? 'The agent is working; a prompt sent now runs after this turn'
            : 'Ask the agent… (Enter sends, Shift+Enter for a new line)'
        }
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
            title="Stop the running turn"
          >
            {stopping ? 'Stopping…' : 'Stop'}
          </button>
        )}
        <button
          className="jp-IDEAgent-send jp-mod-styled jp-mod-accept"
          onClick={send}
          disabled={disabled || !text.trim()}
          title="Send (Enter)"
        >
          Send
        </button>
      </div>
    </div>
  );
}
