"""A streamable-HTTP MCP server for the tests (the SDK's server class under uvicorn), behind a bearer
token so the tests can check that configured headers reach it. Usage: ``http_server.py PORT TOKEN``."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("web")
CAPITALS = {"france": "Paris", "japan": "Tokyo"}


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def capital(country: str) -> dict[str, str]:
    """The capital of a country."""
    return {"country": country, "capital": CAPITALS.get(country.lower(), "unknown")}


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


def guarded(app: Any, token: str) -> Any:
    expected = f"Bearer {token}".encode()

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"missing or wrong bearer token"})
            return
        await app(scope, receive, send)

    return asgi


if __name__ == "__main__":
    port, token = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(guarded(server.streamable_http_app(), token), host="127.0.0.1", port=port, log_level="warning")
