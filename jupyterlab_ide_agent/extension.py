"""The Jupyter server extension: wires the session manager and the handlers into the server.

Configuration lives on :class:`~.agent.loop.IDEAgent` (``c.IDEAgent.main_model``,
``c.IDEAgent.providers``, ...) so the server, the CLI and the Python API read the same lines.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Int, Unicode

from . import __version__, logs
from .agent.session import SessionManager
from .handlers import route_handlers
from .host.server import ServerHost
from .mcp import McpManager
from .memory.store import SessionStore, StoreError, default_store_path
from .providers.registry import ProviderPool, build_settings


class IDEAgentExtension(ExtensionApp):
    name = "jupyterlab_ide_agent"
    description = "An autonomous IDE agent for JupyterLab."

    max_message_bytes = Int(
        10 * 1024 * 1024, help="Largest WebSocket message or request body accepted, in bytes."
    ).tag(config=True)

    session_store_path = Unicode(
        None, allow_none=True,
        help="SQLite file that keeps sessions across restarts (default: <jupyter data dir>/ide_agent/"
        "sessions.sqlite3, the data dir of the user running the server: $JUPYTER_DATA_DIR, else under $HOME, so "
        "under JupyterHub every user has their own); '~' expands; an empty string keeps them in memory only.",
    ).tag(config=True)

    def store_path(self) -> Path:
        """Where this server keeps its sessions. By default beside the server's own per-user data (its
        ``data_dir`` is ``jupyter_data_dir()``, created private), never a shared or system location: each
        JupyterHub user's server runs as that user with their own HOME, so no user sees another's sessions."""
        if self.session_store_path:
            return Path(self.session_store_path).expanduser()
        data_dir = getattr(self.serverapp, "data_dir", None)
        return Path(data_dir) / "ide_agent" / "sessions.sqlite3" if data_dir else default_store_path()

    def _open_store(self) -> SessionStore | None:
        if self.session_store_path == "":
            return None
        try:
            return SessionStore(self.store_path())
        except StoreError as exc:  # the server must start anyway; sessions then live in memory
            self.log.error("IDE agent: %s; sessions will not survive a restart", exc)
            return None

    def initialize_settings(self) -> None:
        agent_config: Any = self.config.get("IDEAgent", {})
        pool = ProviderPool(build_settings(agent_config.get("providers", {})))
        root = Path(self.serverapp.root_dir).expanduser().resolve()
        # one MCP manager for every session (agents find it as their parent's); servers start lazily
        self.mcp_manager = McpManager.from_config(agent_config, cwd=root, log=self.log)
        self.sessions = SessionManager(parent=self, workspace_dir=root, pool=pool,
                                       host=ServerHost(self.serverapp, root=root), store=self._open_store())
        self.settings.update(
            {
                "ide_agent_sessions": self.sessions,
                "ide_agent_mcp": self.mcp_manager,
                "ide_agent_version": __version__,
                "ide_agent_max_message_bytes": self.max_message_bytes,
            }
        )
        self._unfilter_logs = logs.install(pool.redact, [self.serverapp.log, logging.getLogger()])
        problems = [row["missing"] for row in pool.status() if row["missing"]]
        self.log.info("IDE agent %s ready; root %s; unconfigured providers: %s", __version__, root,
                      ", ".join(p.split(":")[0] for p in problems) or "none")

    def initialize_handlers(self) -> None:
        self.handlers.extend(route_handlers())

    async def stop_extension(self) -> None:
        await self.sessions.shutdown()
        await self.mcp_manager.aclose()
        getattr(self, "_unfilter_logs", lambda: None)()
