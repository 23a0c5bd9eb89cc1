"""MCP client: servers from ``c.IDEAgent.mcp_servers`` and the per-user file, their tools in the registry.

Only :mod:`.manager` and :mod:`.config` are imported eagerly; the SDK (most of a second to import) is
imported when a server is first used.
"""

from .config import ServerConfig
from .manager import McpManager

__all__ = ["McpManager", "ServerConfig"]
