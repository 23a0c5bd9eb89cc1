"""All MCP servers of one Jupyter server (shared by its sessions) or of one standalone agent.

Servers start lazily: nothing runs at Jupyter start-up; the first model step that needs the tool list
starts the enabled servers (concurrently, each bounded by its timeout) and their tools join that
agent's registry. Every model step syncs the registry again, so a server the user turned off, a
tool-list change or an edited per-user file is reflected before the model is asked anything.

A server that cannot start is reported in the listing and left alone for ``RETRY_AFTER`` seconds
(not retried at every model step); one that crashed or timed out during a call starts again at the
next use. The user's on/off choices are kept in a small state file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..tools.base import Tool, ToolError, ToolRegistry
from .config import (
    DEFAULT_TIMEOUT,
    ServerConfig,
    ToggleStore,
    default_config_file,
    default_state_file,
    merge,
    read_config_file,
)

if TYPE_CHECKING:  # the SDK takes most of a second to import: only when a server is used
    import mcp.types as mt

    from .client import McpConnection
    from .tool import McpTool

MAX_NAME = 64
RETRY_AFTER = 30.0  # seconds before a server that failed to start is tried again by a model step


class McpManager:
    def __init__(self, servers: Mapping[str, Any] | None = None, *, config_file: str | Path | None = None,
                 state_file: str | Path | None = None, cwd: str | Path = ".",
                 default_timeout: float = DEFAULT_TIMEOUT, log: logging.Logger | None = None) -> None:
        """``config_file``/``state_file``: None = the default path, "" = none (nothing read or kept)."""
        self.configured = dict(servers or {})
        self.config_file = default_config_file() if config_file is None else (Path(config_file) if config_file
                                                                                 else None)
        self.toggles = ToggleStore(default_state_file() if state_file is None else (Path(state_file) if state_file
                                                                                  else None))
        self.cwd = Path(cwd).expanduser().resolve()
        self.default_timeout = default_timeout
        self.log = log or logging.getLogger(__name__)
        self.file_problem: str | None = None
        self._file_stamp: tuple[int, int] | None = None
        self._configs: dict[str, ServerConfig] | None = None
        self._connections: dict[str, McpConnection] = {}
        self._tools: dict[str, tuple[int, list[McpTool]]] = {}  # server -> (tools_version, adapters)
        self._failed_at: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Any, cwd: str | Path, log: logging.Logger | None = None) -> McpManager:
        """From the ``c.IDEAgent.mcp_*`` options (an :class:`~..agent.settings.AgentSettings`)."""
        return cls(settings.mcp_servers, config_file=settings.mcp_config_file, state_file=settings.mcp_state_file,
                   cwd=cwd, default_timeout=settings.mcp_timeout, log=log)

    @classmethod
    def from_config(cls, section: Mapping[str, Any], cwd: str | Path, log: logging.Logger) -> McpManager:
        """From the ``IDEAgent`` config section (inside Jupyter, before any agent exists). A wrong type in
        an ``mcp_*`` option is logged and leaves MCP off: the server must start anyway."""
        from traitlets import TraitError
        from traitlets.config import Config

        from ..agent.settings import AgentSettings

        options = {k: v for k, v in section.items() if k.startswith("mcp_")}
        try:
            return cls.from_settings(AgentSettings(config=Config({"AgentSettings": options})), cwd, log)
        except TraitError as exc:
            log.error("IDE agent: MCP is off, c.IDEAgent.mcp_* is wrong: %s", exc)
            return cls({}, config_file="", state_file="", cwd=cwd, log=log)

    # --- configuration ---------------------------------------------------------------------------
    def configs(self) -> dict[str, ServerConfig]:
        """The merged entries; the per-user file is read again whenever it changes on disk."""
        stamp = None
        if self.config_file is not None:
            with contextlib.suppress(OSError):
                stat = self.config_file.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
        if self._configs is None or stamp != self._file_stamp:
            from_file, self.file_problem = read_config_file(self.config_file) if stamp else ({}, None)
            if self.file_problem:
                self.log.warning("IDE agent: %s", self.file_problem)
            self._configs = merge(self.configured, from_file, self.config_file, self.log, self.default_timeout)
            self._file_stamp = stamp
            self._reconcile(self._configs)
        return self._configs

    def is_enabled(self, config: ServerConfig) -> bool:
        if config.problem:
            return False
        toggle = self.toggles.get(config.name)
        return config.enabled if toggle is None else toggle

    def _reconcile(self, configs: dict[str, ServerConfig]) -> None:
        """Drop the connections whose entry changed or disappeared (stopped in the background)."""
        for name, conn in list(self._connections.items()):
            if configs.get(name) != conn.config:
                del self._connections[name]
                self._tools.pop(name, None)
                self._failed_at.pop(name, None)
                self._in_background(conn.stop())

    def _connection(self, config: ServerConfig) -> McpConnection:
        from .client import McpConnection

        conn = self._connections.get(config.name)
        if conn is None:
            conn = self._connections[config.name] = McpConnection(config, self.cwd, self.log)
        return conn

    # --- tools for the agent ---------------------------------------------------------------------
    async def sync(self, registry: ToolRegistry) -> ToolRegistry:
        """``registry`` with the current MCP tools in place of the previous ones (the same object
        when nothing changed, so the registry's validators are built only on a change)."""
        tools: list[Tool] = list(await self.tools())
        current = [t for t in (registry.get(n) for n in registry.names()) if t is not None]
        if [id(t) for t in current if _is_mcp(t)] == [id(t) for t in tools]:
            return registry
        return ToolRegistry([t for t in current if not _is_mcp(t)] + tools)

    async def tools(self) -> list[McpTool]:
        """The tools of every enabled server, starting the servers that are not running."""
        wanted = [c for c in self.configs().values() if self.is_enabled(c)]
        for name in [n for n in self._connections if n not in {c.name for c in wanted}]:
            self._in_background(self._connections.pop(name).stop())  # turned off: stop it
            self._tools.pop(name, None)
        now = time.monotonic()
        ready = [c for c in wanted if now - self._failed_at.get(c.name, -RETRY_AFTER) >= RETRY_AFTER]
        lists = await asyncio.gather(*(self._server_tools(c) for c in ready))
        seen: set[str] = set()
        result: list[McpTool] = []
        for tool in (t for tools in lists for t in tools):
            if tool.name in seen:  # two server names that read the same once made provider-safe
                tool.name = f"{tool.name[:MAX_NAME - 9]}_{hashlib.sha1(tool.mcp_server.encode()).hexdigest()[:8]}"
            seen.add(tool.name)
            result.append(tool)
        return result

    async def _server_tools(self, config: ServerConfig) -> list[McpTool]:
        from .client import McpServerError
        from .tool import McpTool

        conn = self._connection(config)
        try:
            tools = await conn.list_tools()
        except McpServerError as exc:
            self._failed_at[config.name] = time.monotonic()
            self.log.warning("IDE agent: %s", exc)
            return []
        self._failed_at.pop(config.name, None)
        cached = self._tools.get(config.name)
        if cached is None or cached[0] != conn.tools_version:
            adapters = [McpTool(config.name, t, self._caller(config.name), conn.redact) for t in tools]
            cached = self._tools[config.name] = (conn.tools_version, adapters)
        return cached[1]

    def _caller(self, name: str) -> Any:
        from .client import McpServerError

        async def call(tool: str, arguments: dict[str, Any]) -> mt.CallToolResult:
            config = self.configs().get(name)
            conn = self._connections.get(name)
            if config is None or conn is None or not self.is_enabled(config):
                raise ToolError(f"The MCP server {name!r} is turned off or no longer configured.")
            try:
                return await conn.call(tool, arguments)
            except McpServerError as exc:
                raise ToolError(str(exc)) from None

        return call

    # --- the sidebar's view and switches ---------------------------------------------------------
    def listing(self) -> dict[str, Any]:
        """Names, transport, command or URL host, tools, state and last error; never env or headers."""
        return {
            "servers": [self.row(c) for c in self.configs().values()],
            "config_file": str(self.config_file) if self.config_file else None,
            "problems": [self.file_problem] if self.file_problem else [],
        }

    def row(self, config: ServerConfig) -> dict[str, Any]:
        conn = self._connections.get(config.name)
        enabled = self.is_enabled(config)
        if config.problem:
            state = "invalid"
        elif not enabled:
            state = "disabled"
        else:
            state = conn.state if conn else "stopped"
        tools = self._tools.get(config.name, (0, []))[1] if enabled else []
        redact = config.redact
        return {
            "name": config.name,
            "transport": config.transport,
            "target": redact(config.target),
            "source": config.source,
            "enabled": enabled,
            "state": state,
            "error": config.problem or (conn.error if conn and enabled else None),
            "timeout": config.timeout,
            "starts": conn.starts if conn else 0,
            "tools": [{"name": t.tool_name, "qualified_name": t.name, "read_only": t.read_only,
                       "description": redact(t.summary)} for t in tools],
        }

    async def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        """Turn a server on or off for this user (kept across restarts); off also stops it."""
        config = self._known(name)
        if enabled and config.problem:
            raise ValueError(f"MCP server {name!r} cannot be turned on: {config.problem}")
        self.toggles.set(name, enabled)
        self._failed_at.pop(name, None)
        conn = self._connections.get(name)
        if not enabled and conn is not None:
            self._tools.pop(name, None)
            await conn.stop()
        return self.row(config)

    async def connect(self, name: str) -> dict[str, Any]:
        """Start (or restart after a failure) one server now and list its tools."""
        config = self._known(name)
        if not self.is_enabled(config):
            raise ValueError(f"MCP server {name!r} is turned off")
        self._failed_at.pop(name, None)
        await self._server_tools(config)
        return self.row(config)

    def _known(self, name: str) -> ServerConfig:
        config = self.configs().get(name)
        if config is None:
            raise KeyError(name)
        return config

    async def aclose(self) -> None:
        """Stop every server (Jupyter shutdown, or a standalone agent's cleanup)."""
        connections, self._connections = list(self._connections.values()), {}
        self._tools.clear()
        await asyncio.gather(*(c.stop() for c in connections), *self._background, return_exceptions=True)

    def _in_background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _is_mcp(tool: Tool) -> bool:
    return getattr(tool, "mcp_server", None) is not None
