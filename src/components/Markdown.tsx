import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import React, { useEffect, useMemo, useRef } from 'react';

import { IServices, useServices } from './services';

const MIME = 'text/markdown';
const COPIED_MS = 1500;

function languageOf(pre: HTMLElement): string {
  const code = pre.querySelector('code');
  const match = /(?:^|\s)language-([\w+#.-]+)/.exec(code?.className ?? '');
  return match ? match[1].toLowerCase() : '';
}

function button(label: string, title: string, className: string, onClick: (b: HTMLButtonElement) => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `jp-IDEAgent-codeAction ${className}`;
  b.textContent = label;
  b.title = title;
  b.addEventListener('click', event => {
    event.preventDefault();
    event.stopPropagation();
    onClick(b);
  });
  return b;
}

/** A Copy and an "Insert as cell" button over every code block of the rendered markdown. */
function decorateCodeBlocks(root: HTMLElement, services: IServices): void {
  root.querySelectorAll('pre').forEach(pre => {
    if (pre.parentElement?.classList.contains('jp-IDEAgent-codeBlock')) {
      return;
    }
    const wrapper = document.createElement('div');
    wrapper.className = 'jp-IDEAgent-codeBlock';
    pre.replaceWith(wrapper);
    const bar = document.createElement('div');
    bar.className = 'jp-IDEAgent-codeActions';
    const language = languageOf(pre);
    const text = (): string => (pre.textContent ?? '').replace(/\n$/, '');
    const label = document.createElement('span');
    label.className = 'jp-IDEAgent-codeLanguage';
    label.textContent = language;
    bar.appendChild(label);
    bar.appendChild(
      button('Copy', 'Copy the code', 'jp-IDEAgent-copyCode', b => {
        services.copy(text());
        b.textContent = 'Copied';
        window.setTimeout(() => (b.textContent = 'Copy'), COPIED_MS);
      })
    );
    if (services.insertCell) {
      const insert = services.insertCell;
      bar.appendChild(
        button('Insert as cell', 'Insert as a new cell below the active cell of the current notebook', 'jp-IDEAgent-insertCode', b => {
          const done = insert(text(), language);
          b.textContent = done ? 'Inserted' : 'Open a notebook first';
          window.setTimeout(() => (b.textContent = 'Insert as cell'), COPIED_MS * 2);
        })
      );
    }
    wrapper.append(bar, pre);
  });
}

/**
 * Markdown rendered by JupyterLab's own renderer (sanitized: model output is
 * untrusted). While text streams in, renders are serialized and coalesced:
 * at most one render runs, and the next one uses the newest text. Code blocks
 * get Copy / "Insert as cell" buttons unless `plain`.
 */
export function Markdown(props: { text: string; rendermime?: IRenderMimeRegistry; plain?: boolean }): JSX.Element {
  const services = useServices();
  const rendermime = props.rendermime ?? services.rendermime;
  const { text, plain } = props;
  const host = useRef<HTMLDivElement>(null);
  const renderer = useMemo(() => rendermime.createRenderer(MIME), [rendermime]);
  const job = useRef({ busy: false, wanted: '', rendered: null as string | null });
  const latest = useRef(services);
  latest.current = services;

  useEffect(() => {
    host.current?.appendChild(renderer.node);
    return () => renderer.dispose();
  }, [renderer]);

  useEffect(() => {
    const state = job.current;
    state.wanted = text;
    if (state.busy) {
      return;
    }
    state.busy = true;
    void (async () => {
      try {
        while (state.rendered !== state.wanted && !renderer.isDisposed) {
          const next = state.wanted;
          await renderer.renderModel(new MimeModel({ data: { [MIME]: next }, trusted: false }));
          state.rendered = next;
          if (!plain && !renderer.isDisposed) {
            decorateCodeBlocks(renderer.node, latest.current);
          }
        }
      } catch (error) {
        console.warn('IDE Agent: markdown render failed', error);
      } finally {
        state.busy = false;
      }
    })();
  }, [text, renderer, plain]);

  return <div className="jp-IDEAgent-markdown" ref={host} />;
}
