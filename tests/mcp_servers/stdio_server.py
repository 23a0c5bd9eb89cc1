"""A stdio MCP server for the tests, written with the SDK's own server class.

Tools: ``add`` (read-only), ``shout``, ``picture`` (an image and structured content), ``env_token``
(reads an env var set in the server's config), ``crash`` (the process exits mid-call), ``slow``,
``grow`` (adds a tool and announces the change).
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations

# a 1x1 red PNG
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000"
    "000301010018dd8db00000000049454e44ae426082")).decode()

server = MCPServer("lab")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Upper-case a text (changes nothing, but is not marked read-only)."""
    return text.upper()


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def picture() -> CallToolResult:
    """A tiny plot and its numbers."""
    return CallToolResult(
        content=[TextContent(type="text", text="Here is the plot."),
                 ImageContent(type="image", data=PNG, mime_type="image/png")],
        structured_content={"points": [[0, 1], [1, 3]], "unit": "m"},
    )


@server.tool()
def env_token() -> str:
    """The LAB_TOKEN the server was started with."""
    return f"token is {os.environ.get('LAB_TOKEN', '<unset>')}"


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    print(f"lab server {os.getpid()}: fatal: out of coffee", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def pid() -> int:
    """The server's process id (tells a restart apart)."""
    return os.getpid()


@server.tool()
async def grow(ctx: Context) -> str:
    """Add a tool named 'fresh' and announce the changed tool list."""
    server.add_tool(lambda: "fresh result", name="fresh", description="A tool added at run time.")
    await ctx.notify_tools_changed()
    return "grown"


if __name__ == "__main__":
    print("lab server starting", file=sys.stderr, flush=True)
    server.run()
