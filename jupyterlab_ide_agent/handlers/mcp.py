"""The MCP servers of this Jupyter server: list, switch on/off, connect."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import BaseHandler

MCP_SERVER = r"(?P<name>[^/]+)"


class McpBaseHandler(BaseHandler):
    """The MCP servers of this Jupyter server (one manager shared by every session)."""

    @property
    def mcp(self) -> Any:
        return self.settings["ide_agent_mcp"]

    def finish_redacted(self, data: dict[str, Any]) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(self.sessions.pool.redact(json.dumps(data)))


class McpServersHandler(McpBaseHandler):
    """GET: every configured server: name, transport, command or URL (no query), source, on/off,
    state, last error and tools. Env and header values never appear. Starts nothing."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish_redacted(self.mcp.listing())


class McpServerHandler(McpBaseHandler):
    """PATCH ``{"enabled": bool}``: turn a server on or off for this user (kept across restarts).
    Off stops it, and its tools leave every session's registry before the next model step."""

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        enabled = self.json_body().get("enabled")
        if not isinstance(enabled, bool):
            raise web.HTTPError(400, "'enabled' must be true or false")
        try:
            row = await self.mcp.set_enabled(name, enabled)
        except KeyError:
            raise web.HTTPError(404, f"No MCP server {name!r}") from None
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        except OSError as exc:
            raise web.HTTPError(500, f"Could not save the MCP server switch: {exc.strerror or exc}") from None
        self.finish_redacted(row)


class McpConnectHandler(McpBaseHandler):
    """POST: start (or restart) one server now and list its tools; a failure shows in ``error``."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        try:
            row = await self.mcp.connect(name)
        except KeyError:
            raise web.HTTPError(404, f"No MCP server {name!r}") from None
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        self.finish_redacted(row)
