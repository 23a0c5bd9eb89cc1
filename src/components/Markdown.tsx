import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import React, { useEffect, useMemo, useRef } from 'react';

const MIME = 'text/markdown';

/**
 * Markdown rendered by JupyterLab's own renderer (sanitized: model output is
 * untrusted). While text streams in, renders are serialized and coalesced:
 * at most one render runs, and the next one uses the newest text.
 */
export function Markdown(props: { text: string; rendermime: IRenderMimeRegistry }): JSX.Element {
  const { text, rendermime } = props;
  const host = useRef<HTMLDivElement>(null);
  const renderer = useMemo(() => rendermime.createRenderer(MIME), [rendermime]);
  const job = useRef({ busy: false, wanted: '', rendered: null as string | null });

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
        }
      } catch (error) {
        console.warn('IDE Agent: markdown render failed', error);
      } finally {
        state.busy = false;
      }
    })();
  }, [text, renderer]);

  return <div className="jp-IDEAgent-markdown" ref={host} />;
}
