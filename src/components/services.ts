import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import React from 'react';

/** What components need from JupyterLab beyond the model, passed once through React context. */
export interface IServices {
  rendermime: IRenderMimeRegistry;
  /** Insert code as a new cell below the active cell of the current notebook; false when none is open. */
  insertCell: ((source: string, language: string) => boolean) | null;
  /** Put text on the system clipboard. */
  copy: (text: string) => void;
}

export const ServicesContext = React.createContext<IServices | null>(null);

export function useServices(): IServices {
  const services = React.useContext(ServicesContext);
  if (!services) {
    throw new Error('IDE Agent: ServicesContext is missing');
  }
  return services;
}
