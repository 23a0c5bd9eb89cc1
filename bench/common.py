"""Shared machinery of the benchmarks: a fake provider in its own process, a real Jupyter server
subprocess pointed at it, a WebSocket client of the extension, and percentiles.

Everything runs offline on 127.0.0.1. The fake runs in a *separate process* (not a thread of the
benchmark) so neither the raw SDK nor the server under test shares a GIL with it: both sides of a
comparison read from the same fake the same way.

The fake chooses its answer from the prompt: a user message containing ``BENCH_TURN {json}`` gets a
:class:`~tests.fakes.base.ScriptedTurn` built from that JSON (``{"deltas": 20000}`` is shorthand for
20,000 text deltas of ``"word "``); any other prompt gets a short answer. So one fake serves every
session of a benchmark, whatever each one asks for, without scripting it from outside.

    python -m bench.common fake [--kind openai]   # what the benchmarks spawn; prints one READY line
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

REPO = Path(__file__).resolve().parents[1]
#: the model every benchmark drives (priced in the price table, as in the tests)
MAIN_MODEL = "openai:gpt-5"
TURN_MARK = "BENCH_TURN"
#: variables that could point the server or the SDKs at a real API; the benchmarks drop them
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "XAI_API_KEY",
            "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "XAI_API_HOST")


# --------------------------------------------------------------------------------------- numbers

def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def machine() -> str:
    """One line naming the machine, for the README's figures."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}{load}"


def bench_turn(**fields: Any) -> str:
    """A prompt the fake answers with that turn: ``bench_turn(deltas=20000)``."""
    return f"{TURN_MARK} {json.dumps(fields)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


# --------------------------------------------------------------------------------- the fake, spawned

def _turn_from_prompt(text: str) -> Any:
    from tests.fakes.base import ScriptedTurn

    match = re.search(TURN_MARK + r" (\{[^\n]*?\})", text)
    if not match:
        return ScriptedTurn(text="Hello from the benchmark fake.", chunks=3)
    fields = json.loads(match.group(1))
    deltas = fields.pop("deltas", None)
    if deltas is not None:  # n deltas of exactly "word " each (split_chunks cuts equal pieces)
        fields.setdefault("text", "word " * deltas)
        fields.setdefault("chunks", deltas)
    return ScriptedTurn(**fields)


def _last_user_text(kind: str, body: Any) -> str:
    """The newest user message of a recorded request (the prompt that chooses the turn)."""
    if not isinstance(body, dict):
        return ""
    if kind == "openai":
        for item in reversed(body.get("input") or []):
            if item.get("role") == "user":
                content = item.get("content")
                if isinstance(content, str):
                    return content
                return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))
    return json.dumps(body)[-4000:]


def make_prompt_driven_fake(kind: str) -> Any:
    """A fake of ``kind`` whose every answer is chosen by the prompt of the request (see module doc)."""
    from tests.fakes.anthropic import FakeAnthropic
    from tests.fakes.openai import FakeOpenAI

    base = {"openai": FakeOpenAI, "anthropic": FakeAnthropic}[kind]

    class PromptDriven(base):  # type: ignore[misc, valid-type]
        def next_turn(self) -> Any:
            with self._lock:
                body = self.requests[-1]["body"] if self.requests else None
                self.requests.clear()  # a benchmark sends thousands of requests: keep memory flat
            return _turn_from_prompt(_last_user_text(kind, body))

    return PromptDriven()


def _serve_fake(kind: str) -> None:
    fake = make_prompt_driven_fake(kind).start()
    values = fake.settings().__dict__.copy()
    values.pop("name")
    print("READY " + json.dumps({"kind": kind, "base_url": fake.base_url, "settings": values}), flush=True)
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # the parent holds our stdin: when it goes away (even killed), so do we
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 1024) else None)
        await stop.wait()

    asyncio.run(wait())
    fake.stop()


@dataclass
class FakeProcess:
    """A prompt-driven fake provider in a child process; ``providers()`` is ``c.IDEAgent.providers``."""

    kind: str = "openai"
    proc: subprocess.Popen[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def start(self) -> FakeProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.common", "fake", "--kind", self.kind],
                                     cwd=REPO, env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the {self.kind} fake did not start: {line!r}")
        self.info = json.loads(line[len("READY "):])
        return self

    @property
    def base_url(self) -> str:
        return str(self.info["base_url"])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def providers(self, **overrides: Any) -> dict[str, dict[str, Any]]:
        # the SDK's timeout is per read: generous, so a loaded 2-core machine never trips it
        return {self.kind: {**self.info["settings"], "timeout": 120.0, **overrides}}

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------- the Jupyter server

@dataclass
class ServerRef:
    """Where a running server is and its token: REST (blocking, for set-up) and socket URLs."""

    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=self.headers())
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def get_json(self, path: str, timeout: float = 30) -> Any:
        return self.request("GET", path, timeout=timeout)

    def create_session(self, title: str = "bench") -> str:
        return str(self.request("POST", "ide-agent/sessions", {"title": title})["id"])

    def delete_session(self, session_id: str) -> None:
        self.request("DELETE", f"ide-agent/sessions/{session_id}")

    def stream_url(self, session_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ide-agent/sessions/{session_id}/stream"


@dataclass
class JupyterServer(ServerRef):
    """A real ``jupyter server`` (or ``jupyter lab``) subprocess on 127.0.0.1 with a token, the
    extension enabled and ``c.IDEAgent.providers`` pointing at ``providers``.

    ``profile``: a path to write a cProfile of the whole server process to (dumped when it stops).
    ``code_dir``: a directory holding another copy of the ``jupyterlab_ide_agent`` package, imported
    by the server instead of the installed one (to measure a prototype fix side by side).
    """

    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    app: str = "server"
    extra_config: str = ""
    profile: str | None = None
    code_dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra environment of the server process
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def root(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "root"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "server.log"

    def start(self, timeout: float = 60.0) -> JupyterServer:
        self.workdir = Path(tempfile.mkdtemp(prefix="ide-agent-bench-"))
        self.root.mkdir()
        config = self.workdir / "bench_config.py"
        config.write_text(
            "c = get_config()  # noqa\n"
            'c.ServerApp.jpserver_extensions = {"jupyterlab_ide_agent": True}\n'
            f"c.ServerApp.ip = '127.0.0.1'\nc.ServerApp.port = {self.port}\n"
            "c.ServerApp.port_retries = 0\nc.ServerApp.open_browser = False\nc.ServerApp.allow_root = True\n"
            f"c.BaseFileIdManager.db_path = {str(self.workdir / 'file_id.db')!r}\n"
            f"c.ServerApp.root_dir = {str(self.root)!r}\n"
            f"c.IdentityProvider.token = {self.token!r}\n"
            f"c.IDEAgent.providers = {self.providers!r}\n"
            f"c.IDEAgent.main_model = {MAIN_MODEL!r}\n"
            # the session store (the product's default: durable sessions) in the benchmark's own folder
            f"c.IDEAgentExtension.session_store_path = {str(self.workdir / 'sessions.sqlite3')!r}\n"
            + self.extra_config
        )
        # nothing of the user's: no user config (the system's, which enables the extensions, stays),
        # no user data (the kernel specs of the environment stay)
        env = clean_env(JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
                        JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
                        JUPYTER_DATA_DIR=str(self.workdir / "data"),
                        IPYTHONDIR=str(self.workdir / "ipython"))
        if self.code_dir:
            env["PYTHONPATH"] = os.pathsep.join([str(Path(self.code_dir).resolve()), env["PYTHONPATH"]])
        env.update(self.env)
        module = {"server": "jupyter_server", "lab": "jupyterlab.labapp"}[self.app]
        cmd = [sys.executable, *(["-m", "cProfile", "-o", self.profile] if self.profile else []), "-m", module,
               f"--config={config}"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                message = (f"jupyter {self.app} exited ({self.proc.returncode}); the end of its log:\n"
                           + self.log_path.read_text()[-3000:])
                self.stop()
                raise RuntimeError(message)
            try:
                status = self.get_json("ide-agent/status", timeout=2)
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
                continue
            if not status.get("ready"):
                self.stop()
                raise RuntimeError(f"the extension is not ready: {status.get('problems')}")
            return self
        tail = self.log_path.read_text()[-3000:]
        self.stop()
        raise RuntimeError(f"jupyter {self.app} did not answer within {timeout:.0f} s; the end of its log:\n{tail}")

    def rss_mb(self) -> float:
        """Resident memory of the server process, MB."""
        import psutil

        return float(psutil.Process(self.pid).memory_info().rss) / 2**20

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the server shuts down cleanly (and cProfile dumps)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ----------------------------------------------------------------------------- the WebSocket client

class StreamClient:
    """One WebSocket on a session's stream (``aiohttp``, whose frame reader is compiled)."""

    def __init__(self, server: ServerRef, session_id: str) -> None:
        self.server = server
        self.session_id = session_id
        self._http: Any = None
        self.ws: Any = None

    async def __aenter__(self) -> Self:
        import aiohttp

        self._http = aiohttp.ClientSession(headers=self.server.headers())
        self.ws = await self._http.ws_connect(self.server.stream_url(self.session_id),
                                              max_msg_size=0, autoping=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        await self._http.close()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        import aiohttp

        while True:
            msg = await self.ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"the stream closed: {msg.type} {msg.data!r}")
            yield json.loads(msg.data)

    async def run_turn(self, text: str, on_delta: Any = None) -> TurnStats:
        """Send a prompt and read until its ``done``; wall time from the send.
        ``on_delta(n_chars)`` is called for every text_delta."""
        started = time.perf_counter()
        await self.send({"type": "prompt", "text": text})
        stats = TurnStats()
        async for event in self.events():
            kind = event["type"]
            if kind == "text_delta":
                if not stats.text_deltas:
                    stats.first_delta = time.perf_counter() - started
                stats.text_deltas += 1
                stats.chars += len(event["text"])
                if on_delta is not None:
                    on_delta(len(event["text"]))
            elif kind == "error":
                stats.errors.append(event.get("message", ""))
            elif kind == "done":
                stats.reason = event["reason"]
                break
        stats.seconds = time.perf_counter() - started
        return stats


@dataclass
class TurnStats:
    seconds: float = 0.0
    first_delta: float = 0.0
    text_deltas: int = 0
    chars: int = 0
    reason: str = ""
    errors: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ the load generator

async def _stream_load(ref: ServerRef, sessions: list[str], deltas: int) -> None:
    """Keep every session streaming turn after turn until stdin closes; then cancel them and
    report what was received (one JSON line)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 1024) else None)
    chars = [0] * len(sessions)
    turns = [0] * len(sessions)
    streaming: set[int] = set()
    ready = asyncio.Event()

    async def one(i: int, sid: str) -> None:
        def on_delta(n: int) -> None:
            chars[i] += n
            if i not in streaming:
                streaming.add(i)
                if len(streaming) == len(sessions):
                    ready.set()

        async with StreamClient(ref, sid) as client:
            while not stop.is_set():
                turn = asyncio.create_task(client.run_turn(bench_turn(deltas=deltas), on_delta))
                await asyncio.wait([turn, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
                if not turn.done():
                    await client.send({"type": "cancel"})
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(turn, 30)
                    break
                turns[i] += 1

    started = time.perf_counter()
    tasks = [asyncio.create_task(one(i, sid)) for i, sid in enumerate(sessions)]
    await ready.wait()
    print("STREAMING", flush=True)
    streaming_since, chars_then = time.perf_counter(), sum(chars)
    await stop.wait()
    elapsed = time.perf_counter() - streaming_since
    received = sum(chars) - chars_then
    await asyncio.gather(*tasks, return_exceptions=True)
    print("DONE " + json.dumps({"seconds": elapsed, "deltas": received / 5, "turns_completed": sum(turns),
                                "total_seconds": time.perf_counter() - started}), flush=True)


@dataclass
class LoadProcess:
    """A child process keeping ``sessions`` streaming ``deltas``-delta turns back to back (each its
    own WebSocket client), so the load shares no GIL with whatever the parent measures."""

    server: ServerRef
    sessions: list[str]
    deltas: int = 50_000
    proc: subprocess.Popen[str] | None = None
    result: dict[str, Any] = field(default_factory=dict)

    def start(self, timeout: float = 60.0) -> LoadProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.common", "load", "--port", str(self.server.port), "--deltas",
             str(self.deltas), "--sessions", ",".join(self.sessions)],
            cwd=REPO, env=clean_env(BENCH_TOKEN=self.server.token), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until every session has streamed a delta
        if line.strip() != "STREAMING":
            self.stop()
            raise RuntimeError(f"the load did not start streaming: {line!r}")
        return self

    def stop(self) -> dict[str, Any]:
        """Stop the load (its turns are cancelled); what it received while streaming."""
        if self.proc is None:
            return self.result
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # the signal to stop
        watchdog = threading.Timer(60, self.proc.kill)
        watchdog.start()
        try:
            out = self.proc.stdout.read()
            self.proc.wait()
        finally:
            watchdog.cancel()
        for line in out.splitlines():
            if line.startswith("DONE "):
                self.result = json.loads(line[5:])
        self.proc = None
        return self.result

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="bench helpers")
    sub = parser.add_subparsers(dest="command", required=True)
    fake = sub.add_parser("fake", help="run a prompt-driven fake provider until stdin closes")
    fake.add_argument("--kind", choices=["openai", "anthropic"], default="openai")
    load = sub.add_parser("load", help="stream turns on sessions until stdin closes (token in $BENCH_TOKEN)")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--sessions", required=True, help="comma-separated session ids")
    load.add_argument("--deltas", type=int, default=50_000)
    args = parser.parse_args()
    if args.command == "fake":
        _serve_fake(args.kind)
    elif args.command == "load":
        ref = ServerRef(port=args.port, token=os.environ["BENCH_TOKEN"])
        asyncio.run(_stream_load(ref, args.sessions.split(","), args.deltas))


if __name__ == "__main__":
    main()
