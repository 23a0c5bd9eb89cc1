import { LabIcon } from '@jupyterlab/ui-components';

/**
 * The sidebar icon: a chat bubble holding a spark. `jp-icon3` makes it follow
 * the theme's icon colour (light and dark).
 */
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2h-7.6L7 21.2V17H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 2v10h5v2.1L11.7 15H20V5H4z"/>
    <path d="M12 6.2l1.05 2.75L15.8 10l-2.75 1.05L12 13.8l-1.05-2.75L8.2 10l2.75-1.05z"/>
  </g>
</svg>`;

export const agentIcon = new LabIcon({
  name: 'jupyterlab-ide-agent:agent',
  svgstr: svg
});
