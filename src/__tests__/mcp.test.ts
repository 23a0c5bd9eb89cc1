/**
 * The MCP panel's collapsed line (src/mcp.ts `mcpSummary`): what is on, how
 * many tools the model gets from it, and what is failing, in plain Node.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { IMcpListing, IMcpServer, IMcpTool, mcpSummary } from '../mcp';

function tool(server: string, name: string, readOnly = false): IMcpTool {
  return { name, qualified_name: `mcp__${server}__${name}`, read_only: readOnly, description: `${name} on ${server}` };
}

function server(name: string, fields: Partial<IMcpServer> = {}): IMcpServer {
  return {
    name,
    transport: 'stdio',
    target: `python -m ${name}`,
    source: 'config',
    enabled: true,
    state: 'stopped',
    error: null,
    timeout: 30,
    starts: 0,
    tools: [],
    ...fields
  };
}

function listing(servers: IMcpServer[]): IMcpListing {
  return { servers, config_file: null, problems: [] };
}

test('no server configured', () => {
  assert.equal(mcpSummary(listing([])), '0 of 0 servers on');
});

test('one server: singular words, and no tool count before it has listed any', () => {
  assert.equal(mcpSummary(listing([server('docs')])), '1 of 1 server on');
  const running = server('docs', { state: 'running', starts: 1, tools: [tool('docs', 'search', true)] });
  assert.equal(mcpSummary(listing([running])), '1 of 1 server on · 1 tool');
});

test('several servers: tools of the enabled ones, errors and invalid entries failing', () => {
  const servers = [
    server('docs', { state: 'running', starts: 1, tools: [tool('docs', 'search', true), tool('docs', 'fetch')] }),
    server('db', { transport: 'http', target: 'http://127.0.0.1:8765/mcp', state: 'running', tools: [tool('db', 'query')] }),
    // switched off by the user (the server lists no tools for it): off is not failing
    server('old', { enabled: false, state: 'disabled' }),
    server('broken', { state: 'error', error: 'exited with code 1', starts: 3 }),
    server('typo', { source: 'file', state: 'invalid', error: 'needs a command or a url' })
  ];
  assert.equal(mcpSummary(listing(servers)), '4 of 5 servers on · 3 tools · 2 failing');
});

test('tools of a server that is off are not counted, whatever the listing holds', () => {
  const off = server('old', { enabled: false, state: 'disabled', tools: [tool('old', 'a'), tool('old', 'b')] });
  assert.equal(mcpSummary(listing([off, server('docs')])), '1 of 2 servers on');
});

test('an invalid entry that is also switched off still counts as failing', () => {
  // the server reports `invalid` before `disabled`: the configuration needs fixing either way
  const servers = [server('typo', { enabled: false, state: 'invalid', error: 'needs a command or a url' })];
  assert.equal(mcpSummary(listing(servers)), '0 of 1 server on · 1 failing');
});
