"""REST and WebSocket routes under ``{base_url}ide-agent/``.

Every route is authenticated by the server's identity provider and authorized through its authorizer
(resource ``ide-agent``): REST handlers are ``APIHandler`` (which also enforces XSRF on writes) with
``@authorized``; the WebSocket checks the token like the kernel socket does, checks the Origin
(``WebSocketMixin``) and asks the authorizer before it opens. See docs/openapi.yaml.
"""

from __future__ import annotations

from jupyter_server.utils import url_path_join

from .base import AUTH_RESOURCE, SESSION_ID, BaseHandler, parse_json
from .files import FilesHandler
from .mcp import MCP_SERVER, McpConnectHandler, McpServerHandler, McpServersHandler
from .sessions import (
    EnsembleHandler,
    EventsHandler,
    InterruptProcessHandler,
    RulesHandler,
    SessionHandler,
    SessionsHandler,
    StatusHandler,
    WorkspaceHandler,
)
from .stream import StreamHandler

__all__ = ["AUTH_RESOURCE", "BaseHandler", "StreamHandler", "parse_json", "route_handlers"]


def route_handlers() -> list[tuple[str, type]]:
    base = "ide-agent"
    return [
        (url_path_join(base, "status"), StatusHandler),
        (url_path_join(base, "mcp"), McpServersHandler),
        (url_path_join(base, "mcp", MCP_SERVER), McpServerHandler),
        (url_path_join(base, "mcp", MCP_SERVER, "connect"), McpConnectHandler),
        (url_path_join(base, "files"), FilesHandler),
        (url_path_join(base, "sessions", SESSION_ID, "rules"), RulesHandler),
        (url_path_join(base, "sessions"), SessionsHandler),
        (url_path_join(base, "sessions", SESSION_ID), SessionHandler),
        (url_path_join(base, "sessions", SESSION_ID, "events"), EventsHandler),
        (url_path_join(base, "sessions", SESSION_ID, "stream"), StreamHandler),
        (url_path_join(base, "sessions", SESSION_ID, "workspace"), WorkspaceHandler),
        (url_path_join(base, "sessions", SESSION_ID, "ensemble"), EnsembleHandler),
        (url_path_join(base, "sessions", SESSION_ID, "processes", r"(?P<pid>[\w.-]+)", "interrupt"),
         InterruptProcessHandler),
    ]
