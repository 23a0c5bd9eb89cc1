"""One connection to one MCP server: start, list tools, call, restart, stop; all through the SDK's ``Client``.

The SDK's client is an async context manager holding anyio task groups, which must be entered and left
by the same task; so each connection has an *owner* task that enters it, stays inside until told to
stop, and leaves it. Tool calls from the agent's tasks use the connected client meanwhile.

Failures become :class:`McpServerError` with a message the model and the user can act on: a server that
exits mid-call (with the tail of its stderr), one that does not answer within its timeout (the SDK
sends the cancellation), one that cannot start. After a crash or a timeout the connection is stopped
and the next use starts it again; a stdio server that exits while idle is restarted on the next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as mt
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ListenNotSupportedError
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from .. import __version__
from .config import ServerConfig

STDERR_LINES = 40
STOP_WAIT = 15.0  # the SDK's stdio shutdown is bounded at about 6 s (close stdin, SIGTERM, SIGKILL)


class McpServerError(Exception):
    """A failure of one server, worded for the model and the user (secrets already removed)."""


class McpConnection:
    def __init__(self, config: ServerConfig, cwd: Path, log: logging.Logger | None = None) -> None:
        self.config = config
        self.cwd = cwd
        self.log = log or logging.getLogger(__name__)
        self.state = "stopped"  # stopped | starting | running | error
        self.error: str | None = None
        self.starts = 0
        self.tools: list[mt.Tool] = []
        self.tools_version = 0  # bumped whenever ``tools`` changes
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stale = True  # the tool list must be (re)fetched
        self._broken = False  # stop and start again before the next use
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._stderr_done = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None
        self._errlog: Any = None  # our copy of the write end of the stdio server's stderr pipe

    # --- lifecycle -----------------------------------------------------------------------------
    async def ensure_started(self) -> Client:
        async with self._lock:
            if self._stopping is not None:
                await asyncio.shield(self._stopping)
            exited = self.config.transport == "stdio" and self._stderr_done.is_set()
            if self._client is not None and not self._broken and not exited:
                return self._client
            if self._client is not None:
                await self._stop_owner()
            return await self._start()

    async def _start(self) -> Client:
        self.state, self.error, self._broken, self._stale = "starting", None, False, True
        self._stop = asyncio.Event()
        self._stderr.clear()
        self._stderr_done = asyncio.Event()
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())  # read even after a timeout
        self._owner = asyncio.create_task(self._own(ready), name=f"mcp-{self.config.name}")
        self.starts += 1
        try:
            client = await asyncio.wait_for(asyncio.shield(ready), self.config.timeout)
        except TimeoutError:
            await self._stop_owner(cancel=True)
            raise self._fail(f"did not start within {self.config.timeout:g} s") from None
        except Exception as exc:
            await self._stop_owner(cancel=True)
            raise self._fail(f"could not start: {describe(exc)}") from None
        self.state = "running"
        return client

    async def _own(self, ready: asyncio.Future[Client]) -> None:
        """Enter the SDK client, stay connected until ``stop()``, then leave it (same task)."""
        try:
            async with AsyncExitStack() as stack:
                client = Client(await self._transport(stack), message_handler=self._on_message, cache=None,
                                client_info=mt.Implementation(name="jupyterlab-ide-agent", version=__version__))
                await stack.enter_async_context(client)
                self._close_errlog()  # the child has its copy: EOF on our end now means it exited
                self._client = client
                async with anyio.create_task_group() as tg:
                    if _announces_list_changes(client):
                        tg.start_soon(self._listen, client)
                    if not ready.done():
                        ready.set_result(client)
                    await self._stop.wait()
                    tg.cancel_scope.cancel()
        except BaseException as exc:  # noqa: BLE001 - reported to the starter, or logged
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else McpServerError(str(exc)))
            elif not self._stop.is_set():
                self.log.warning("MCP server %r: connection lost: %s", self.config.name, describe(exc))
                self._broken = True
                self._fail(f"lost its connection ({describe(exc)}); it will be restarted on the next use")
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None

    async def _transport(self, stack: AsyncExitStack) -> Any:
        """The SDK's transport for this server (a stdio child process, or streamable HTTP)."""
        cfg = self.config
        if cfg.transport == "http":
            http = httpx2.AsyncClient(headers=dict(cfg.headers), timeout=httpx2.Timeout(30.0, read=300.0))
            await stack.enter_async_context(http)
            return streamable_http_client(cfg.url, http_client=http)
        read_fd, write_fd = os.pipe()
        self._errlog = errlog = os.fdopen(write_fd, "w")
        stack.callback(errlog.close)
        await self._read_stderr(read_fd)
        params = StdioServerParameters(command=cfg.command, args=list(cfg.args), env=dict(cfg.env) or None,
                                       cwd=cfg.cwd or str(self.cwd))
        return stdio_client(params, errlog=errlog)

    def _close_errlog(self) -> None:
        errlog, self._errlog = self._errlog, None
        if errlog is not None:
            errlog.close()

    async def _read_stderr(self, fd: int) -> None:
        """Keep the last lines of the server's stderr (for error messages); EOF = the process ended."""
        tail, done, stop = self._stderr, self._stderr_done, self._stop

        def exited() -> None:  # on its own, not stopped by us: say so now, restart at the next use
            if not stop.is_set() and done is self._stderr_done and self._client is not None:
                self._fail("exited; it will be restarted on the next use")

        class TailProtocol(asyncio.Protocol):
            partial = ""

            def data_received(self, data: bytes) -> None:
                lines = (self.partial + data.decode("utf-8", "replace")).split("\n")
                self.partial = lines.pop()[-2000:]
                tail.extend(line[:500] for line in lines if line.strip())

            def connection_lost(self, exc: Exception | None) -> None:
                if self.partial.strip():
                    tail.append(self.partial[:500])
                done.set()
                exited()

        await asyncio.get_running_loop().connect_read_pipe(TailProtocol, os.fdopen(fd, "rb", 0))

    async def _listen(self, client: Client) -> None:
        """2026-era servers announce tool changes on a ``subscriptions/listen`` stream (earlier ones
        through ``_on_message``; for them ``listen`` refuses at once, without a request)."""
        with contextlib.suppress(ListenNotSupportedError, MCPError, RuntimeError, TimeoutError):
            async with client.listen(tools_list_changed=True) as events:
                async for _ in events:
                    self._stale = True

    async def _on_message(self, message: Any) -> None:
        """Earlier servers send ``notifications/tools/list_changed``: fetch the list again before
        the next model step."""
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self._stale = True

    async def stop(self) -> None:
        if self._owner is not None and self.state == "starting":  # do not wait out a slow start
            self._owner.cancel()
        async with self._lock:
            await self._stop_owner()
            self.state, self.error = "stopped", None

    async def _stop_owner(self, cancel: bool = False) -> None:
        owner, self._owner = self._owner, None
        if owner is None:
            return
        self._stop.set()
        if cancel:
            owner.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(owner), STOP_WAIT)
        except TimeoutError:
            owner.cancel()
            await asyncio.gather(owner, return_exceptions=True)
        except Exception:  # noqa: BLE001 - already reported by the owner
            pass
        self._client = None

    def _restart_later(self, reason: str) -> None:
        """Stop now (in the background) and start again on the next use."""
        self._broken, self.state, self.error = True, "error", reason
        if self._stopping is None or self._stopping.done():
            self._stopping = asyncio.create_task(self._stop_owner())

    # --- use -------------------------------------------------------------------------------------
    async def list_tools(self) -> list[mt.Tool]:
        """The server's tools, fetched again only after a change notification or a restart."""
        client = await self.ensure_started()
        if not self._stale:
            return self.tools
        try:
            tools = await asyncio.wait_for(self._fetch_tools(client), self.config.timeout)
        except TimeoutError:
            self._restart_later(f"did not list its tools within {self.config.timeout:g} s")
            raise self._fail(self.error or "") from None
        except Exception as exc:
            self._restart_later(f"could not list its tools: {describe(exc)}")
            raise self._fail(self.error or "") from None
        self._stale = False
        if [t.model_dump() for t in tools] != [t.model_dump() for t in self.tools]:
            self.tools, self.tools_version = tools, self.tools_version + 1
        return self.tools

    async def _fetch_tools(self, client: Client) -> list[mt.Tool]:
        tools: list[mt.Tool] = []
        cursor: str | None = None
        for _ in range(100):  # a paginator that never ends cannot hang a model step
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def call(self, tool: str, arguments: dict[str, Any]) -> mt.CallToolResult:
        """Call a tool; raises :class:`McpServerError` with a clear reason when the server fails."""
        client = await self.ensure_started()
        timeout = self.config.timeout
        started = time.monotonic()
        try:  # the SDK's own timeout sends the cancellation; the outer one only guards a stuck write
            return await asyncio.wait_for(client.call_tool(tool, arguments, read_timeout_seconds=timeout),
                                          timeout + 5)
        except (TimeoutError, MCPError) as exc:
            if isinstance(exc, TimeoutError) or exc.code == REQUEST_TIMEOUT:
                self._restart_later(f"call to {tool!r} timed out")
                raise McpServerError(
                    f"MCP server {self.config.name!r} did not answer {tool!r} within {timeout:g} s; the call was "
                    "cancelled and the server will be restarted on the next call.") from None
            if exc.code != CONNECTION_CLOSED:  # the server answered with a protocol error: it is alive
                raise McpServerError(f"MCP server {self.config.name!r} refused {tool!r}: "
                                     f"{self.redact(exc.message)}") from None
            await self._await_exit()
            self._restart_later(f"connection closed during {tool!r}")
            raise self._fail(f"closed the connection during {tool!r} after {time.monotonic() - started:.1f} s "
                             "(did it exit?); it will be restarted on the next call") from None
        except Exception as exc:
            self._restart_later(f"call to {tool!r} failed: {describe(exc)}")
            raise self._fail(f"failed during {tool!r}: {describe(exc)}; it will be restarted on the next call") \
                from None

    # --- reporting -------------------------------------------------------------------------------
    async def _await_exit(self) -> None:
        """A stdio server that dropped the connection: let its last stderr lines arrive."""
        if self.config.transport == "stdio":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stderr_done.wait(), 1.0)

    def stderr_tail(self, lines: int = 15) -> str:
        return self.redact("\n".join(list(self._stderr)[-lines:]))

    def _fail(self, what: str) -> McpServerError:
        """Record the failure and build the error the caller raises (with the stderr tail for stdio)."""
        message = f"MCP server {self.config.name!r} {self.redact(what)}"
        tail = self.stderr_tail()
        if tail:
            message += f"\nLast lines of its stderr:\n{tail}"
        self.state, self.error = "error", message
        return McpServerError(message)

    def redact(self, text: str) -> str:
        return self.config.redact(text)


def _announces_list_changes(client: Client) -> bool:
    tools = client.server_capabilities.tools
    return bool(tools and tools.list_changed)


def describe(exc: BaseException) -> str:
    """One readable line for an exception, looking inside anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.message
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"command not found: {exc.filename}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
