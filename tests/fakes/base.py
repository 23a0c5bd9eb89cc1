"""Common machinery of the wire-level fake providers.

Each fake is a real server on 127.0.0.1 (HTTP+SSE on Tornado, or gRPC) running in its own thread
with its own event loop, so a fake that hangs on purpose never blocks the test's loop or the Jupyter
server under test. A test scripts the fake with :class:`ScriptedTurn` values, one per request; the
fake records every request it received (path, headers, JSON body) so tests can assert on what the
real SDK actually sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web


@dataclass
class ScriptedTool:
    name: str
    arguments: dict[str, Any] | str  # a str is sent as-is: scripts unparsable arguments
    call_id: str | None = None  # generated when None


@dataclass
class ScriptedTurn:
    """What the fake answers to one request.

    ``text`` and ``reasoning`` are streamed in ``chunks`` pieces (split on whitespace boundaries);
    ``status`` (429, 500, 529...) answers with that HTTP/gRPC error instead; ``delay`` sleeps before
    answering (longer than the client's timeout = a hang); ``chunk_delay`` sleeps between deltas;
    ``cut_after`` drops the connection after that many stream events.
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ScriptedTool] = field(default_factory=list)
    input_tokens: int = 10
    output_tokens: int = 5
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    chunks: int = 3
    status: int | None = None
    error_message: str = "scripted error"
    retry_after_ms: int | None = 1
    delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    malformed: bool = False  # emit one line the SDK cannot parse


def split_chunks(text: str, n: int) -> list[str]:
    """Split ``text`` into about ``n`` pieces that concatenate back to ``text`` exactly."""
    if not text:
        return []
    n = max(1, min(n, len(text)))
    size = -(-len(text) // n)
    return [text[i : i + size] for i in range(0, len(text), size)]


class FakeServerBase:
    """Script queue, request log and a thread with its own asyncio loop."""

    name = "fake"

    def __init__(self) -> None:
        self.turns: deque[ScriptedTurn] = deque()
        self.requests: list[dict[str, Any]] = []
        self.default_turn = ScriptedTurn(text="Hello from the fake.")
        self.port: int = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- scripting -------------------------------------------------------------------------
    def script(self, *turns: ScriptedTurn) -> None:
        with self._lock:
            self.turns.extend(turns)

    def reset(self) -> None:
        with self._lock:
            self.turns.clear()
            self.requests.clear()

    def next_turn(self) -> ScriptedTurn:
        with self._lock:
            return self.turns.popleft() if self.turns else self.default_turn

    def record(self, path: str, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeServerBase:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start_server())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"{self.name}-fake", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.name} fake did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._stop_server(), self._loop)
        fut.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
        self._loop = None

    async def _start_server(self) -> None:
        raise NotImplementedError

    async def _stop_server(self) -> None:
        raise NotImplementedError


class HTTPFakeServer(FakeServerBase):
    """A Tornado app on an ephemeral 127.0.0.1 port; subclasses give ``routes()``."""

    def routes(self) -> list[tuple[str, type, dict[str, Any]]]:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _start_server(self) -> None:
        app = tornado.web.Application(
            [(p, h, {"fake": self, **kw}) for p, h, kw in self.routes()],
            log_function=lambda handler: None,  # keep test output readable
        )
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)

    async def _stop_server(self) -> None:
        self._server.stop()
        await self._server.close_all_connections()


class FakeHandler(tornado.web.RequestHandler):
    """Base handler: records the request and writes SSE events with the turn's pacing."""

    def initialize(self, fake: HTTPFakeServer) -> None:
        self.fake = fake
        self.events_sent = 0

    def check_xsrf_cookie(self) -> None:  # a provider API has no XSRF
        return None

    def body_json(self) -> Any:
        try:
            return json.loads(self.request.body or b"{}")
        except json.JSONDecodeError:
            return None

    def record_request(self) -> Any:
        body = self.body_json()
        self.fake.record(self.request.uri, dict(self.request.headers), body)
        return body

    def start_sse(self) -> None:
        self.set_header("content-type", "text/event-stream")
        self.set_header("cache-control", "no-cache")

    async def sse(self, data: dict[str, Any], turn: ScriptedTurn, event: str | None = None) -> None:
        """Write one SSE event; honours ``chunk_delay`` and ``cut_after`` of the turn."""
        if turn.cut_after is not None and self.events_sent >= turn.cut_after:
            # drop the connection mid-stream, as a crashed upstream would
            self.request.connection.stream.close()
            raise asyncio.CancelledError("scripted cut")
        if turn.chunk_delay:
            await asyncio.sleep(turn.chunk_delay)
        prefix = f"event: {event}\n" if event else ""
        self.write(f"{prefix}data: {json.dumps(data)}\n\n")
        await self.flush()
        self.events_sent += 1

    async def malformed_line(self) -> None:
        self.write("data: {not json\n\n")
        await self.flush()
