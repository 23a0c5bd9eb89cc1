"""Faults through a real Jupyter server: each ends in one clear event, and the server (and the session) still serve.

The main model is driven over the session's WebSocket exactly as the sidebar drives it; the providers are the
wire-level fakes with the SDKs' own retries switched on (``max_retries=2``). After every fault the same session
runs a normal turn, and the REST log equals what the socket delivered. The provider adapters' error mapping is
tested per SDK in ``test_provider_*.py``; here the subject is the path fault -> event -> still serving.
The store's faults (disk full, read-only) are tested through the running server, then on the store module's
async writer (which the server does not use yet); ``test_store.py`` covers the synchronous calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from traitlets.config import Config

from tests.conftest import TEST_MODELS, providers_config
from tests.fakes.anthropic import AnthropicTurn
from tests.fakes.base import ScriptedTool, ScriptedTurn
from tests.test_handlers import create_session

KINDS = ["openai", "anthropic", "gemini", "xai"]
RETRIES = 2
Event = dict[str, Any]


def strict_loads(text: str | bytes) -> Any:
    """``JSON.parse`` as a browser does it: no NaN/Infinity."""
    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound, never listening (no race with another test taking it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def jp_server_config(fakes: dict[str, Any], closed_port: int) -> Config:
    providers = providers_config(fakes, max_retries=RETRIES)
    openai = fakes["openai"]
    providers["strict"] = {"kind": "openai", "api_key": "sk-strict-key", "base_url": openai.base_url,
                           "timeout": 1.0, "max_retries": 0}  # a hang past this timeout is a timeout
    providers["dead"] = {"kind": "openai", "api_key": "sk-dead-key", "base_url": f"http://127.0.0.1:{closed_port}/v1",
                         "timeout": 5.0, "max_retries": 0}
    providers["dead_anthropic"] = {"kind": "anthropic", "api_key": "sk-ant-dead-key",
                                   "base_url": f"http://127.0.0.1:{closed_port}", "timeout": 5.0, "max_retries": 0}
    return Config({
        "ServerApp": {"jpserver_extensions": {"jupyterlab_ide_agent": True}},
        "IDEAgent": {"providers": providers, "main_model": "openai:gpt-5", "cell_timeout": 60.0},
    })


class Client:
    """One session and its socket, as the sidebar holds them."""

    def __init__(self, jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any) -> None:
        self.fetch, self.ws_fetch, self.app = jp_fetch, jp_ws_fetch, jp_serverapp
        self.id = ""
        self.ws: Any = None
        self.seen: list[Event] = []

    async def open(self) -> Client:
        self.id = (await create_session(self.fetch))["id"]
        await self.connect()
        return self

    async def connect(self, after_seq: int | None = None) -> None:
        params = {"after_seq": str(after_seq)} if after_seq is not None else None
        self.ws = await self.ws_fetch("ide-agent", "sessions", self.id, "stream", params=params)

    @property
    def agent(self) -> Any:
        return self.app.web_app.settings["ide_agent_sessions"].get(self.id).agent

    def use_model(self, model: str) -> None:
        """Switch the session's main model (a supported mid-session switch)."""
        self.agent.main_model = model

    def prompt(self, text: str) -> None:
        self.ws.write_message(json.dumps({"type": "prompt", "text": text}))

    async def read(self, timeout: float = 30) -> Event:
        message = await asyncio.wait_for(self.ws.read_message(), timeout)
        assert message is not None, f"socket closed (code {self.ws.close_code})"
        event = strict_loads(message)
        if event.get("seq") is not None:
            self.seen.append(event)
        return event

    async def until_done(self, timeout: float = 30) -> list[Event]:
        events = []
        while True:
            events.append(await self.read(timeout))
            if events[-1]["type"] == "done":
                return events

    async def turn(self, text: str, timeout: float = 30) -> list[Event]:
        self.prompt(text)
        return await self.until_done(timeout)

    async def logged(self) -> list[Event]:
        body = (await self.fetch("ide-agent", "sessions", self.id, "events", params={"after_seq": "0"})).body
        return strict_loads(body)["events"]

    async def still_serves(self, fakes: dict[str, Any], model: str = "openai:gpt-5") -> None:
        """The server answers REST, the session runs a normal turn on a working model, the log matches the socket."""
        status = strict_loads((await self.fetch("ide-agent", "status")).body)
        assert status["version"]
        self.use_model(model)
        fakes[model.split(":")[0]].script(ScriptedTurn(text="back to normal"))
        events = await self.turn("are you there?")
        assert events[-1]["reason"] == "completed", events
        assert "".join(e["text"] for e in events if e["type"] == "text_delta") == "back to normal"
        assert await self.logged() == self.seen, "the socket delivered exactly the logged events"
        seqs = [e["seq"] for e in self.seen]
        assert seqs == list(range(1, len(seqs) + 1))
        session = strict_loads((await self.fetch("ide-agent", "sessions", self.id)).body)
        assert session["running"] is False

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


@pytest.fixture
async def client(jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any) -> Any:
    c = await Client(jp_fetch, jp_ws_fetch, jp_serverapp).open()
    yield c
    c.close()


def one_error(events: list[Event]) -> Event:
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1, events
    assert events[-1]["type"] == "done" and events[-1]["reason"] == "error"
    assert events.index(errors[0]) == len(events) - 2, "the error is the turn's last word before done"
    return errors[0]


# --- provider faults ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
async def test_rate_limit_is_retried_by_the_sdk_then_reported(kind: str, client: Client, fakes: Any) -> None:
    model = f"{kind}:{TEST_MODELS[kind]}"
    client.use_model(model)
    fake = fakes[kind]
    # one 429 (retry-after 1 ms): the SDK retries on its own and the turn completes
    fake.script(ScriptedTurn(status=429, retry_after_ms=1, error_message="slow down"),
                ScriptedTurn(text="after one retry"))
    events = await client.turn("hi")
    assert events[-1]["reason"] == "completed" and not [e for e in events if e["type"] == "error"]
    assert len(fake.requests) == 2
    # 429 on every try: retries exhausted, one rate_limit error
    fake.reset()
    fake.script(*[ScriptedTurn(status=429, retry_after_ms=1, error_message="slow down")] * (RETRIES + 1))
    error = one_error(await client.turn("again"))
    assert error["kind"] == "rate_limit" and error["status"] == 429 and error["retryable"] is True
    assert error["provider"] == kind and error["message"]
    assert len(fake.requests) == RETRIES + 1, "the SDK retried as configured, the loop did not retry again"
    await client.still_serves(fakes, model)


@pytest.mark.parametrize("kind", KINDS)
async def test_server_error_after_retries(kind: str, client: Client, fakes: Any) -> None:
    model = f"{kind}:{TEST_MODELS[kind]}"
    client.use_model(model)
    fakes[kind].script(*[ScriptedTurn(status=500, error_message="upstream exploded")] * (RETRIES + 1))
    error = one_error(await client.turn("hi"))
    assert error["kind"] == "server" and error["status"] == 500 and error["retryable"] is True
    assert "upstream exploded" in error["message"] or "server error" in error["message"]
    await client.still_serves(fakes, model)


async def test_anthropic_overloaded(client: Client, fakes: Any) -> None:
    model = f"anthropic:{TEST_MODELS['anthropic']}"
    client.use_model(model)
    fakes["anthropic"].script(*[ScriptedTurn(status=529, error_message="Overloaded")] * (RETRIES + 1))
    error = one_error(await client.turn("hi"))
    assert error["kind"] == "overloaded" and error["status"] == 529 and error["retryable"] is True
    assert "Overloaded" in error["message"]
    # overloaded mid-stream (an `event: error` inside the 200 stream)
    fakes["anthropic"].script(AnthropicTurn(text="never", stream_error="overloaded_error", error_message="Overloaded"))
    error = one_error(await client.turn("again"))
    assert error["kind"] == "overloaded" and error["status"] == 529
    await client.still_serves(fakes, model)


@pytest.mark.parametrize("dead", ["dead", "dead_anthropic"])
async def test_connection_refused(dead: str, client: Client, fakes: Any) -> None:
    client.use_model(f"{dead}:{TEST_MODELS['openai' if dead == 'dead' else 'anthropic']}")
    error = one_error(await client.turn("hi"))
    assert error["kind"] == "connection" and error["retryable"] is True and error["provider"] == dead
    await client.still_serves(fakes)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_stream_cut_mid_answer(kind: str, client: Client, fakes: Any) -> None:
    model = f"{kind}:{TEST_MODELS[kind]}"
    client.use_model(model)
    fakes[kind].script(ScriptedTurn(text="this answer is cut off in the middle", chunks=8, cut_after=6))
    events = await client.turn("hi")
    error = one_error(events)
    assert error["kind"] in {"stream", "connection"} and error["retryable"] is True
    seen = "".join(e["text"] for e in events if e["type"] == "text_delta")
    assert seen and seen != "this answer is cut off in the middle", "part of the answer streamed, then the cut"
    await client.still_serves(fakes, model)
    assert "this answer is cut" not in str(fakes[kind].requests[-1]["body"]), \
        "an answer that broke off is not sent back as if the model had said it"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_malformed_sse_line(kind: str, client: Client, fakes: Any) -> None:
    model = f"{kind}:{TEST_MODELS[kind]}"
    client.use_model(model)
    fakes[kind].script(ScriptedTurn(text="x y z", malformed=True))
    error = one_error(await client.turn("hi"))
    assert error["kind"] == "stream" and error["retryable"] is True
    await client.still_serves(fakes, model)


async def test_hang_past_the_timeout(client: Client, fakes: Any) -> None:
    client.use_model("strict:gpt-5")  # timeout 1 s, no retries
    fakes["openai"].script(ScriptedTurn(text="too late", delay=4))
    error = one_error(await client.turn("hi"))
    assert error["kind"] == "timeout" and error["retryable"] is True and error["provider"] == "strict"
    await client.still_serves(fakes)


# --- cancel at a step boundary --------------------------------------------------------------------------
@pytest.mark.parametrize("step", ["model", "tool"])
async def test_a_cancel_landing_before_the_step_task_starts_ends_the_turn(
        step: str, fakes: Any, make_agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Stop button pressed exactly at a step boundary (a socket callback queued ahead of the new task's
    first step), made deterministic by queueing the cancel just before ``_pump`` creates its task.

    Regression: the cancel cancelled a producer coroutine that had never run, so its ``except CancelledError``
    never put TurnCancelled and ``await queue.get()`` waited forever; the session stayed running and every
    later prompt queued behind it (the socket fuzz in test_security.py hit it 3 runs in 4)."""
    import jupyterlab_ide_agent.agent.loop as loop_module

    fakes["openai"].script(ScriptedTurn(tool_calls=[ScriptedTool("ElapsedTime", {})]), ScriptedTurn(text="x"),
                           ScriptedTurn(text="after the cancel"))
    agent = make_agent("openai")
    armed = {"model": 1, "tool": 2}[step]  # which task to race: the first model step or the first tool call
    created = 0

    class CancelFirst:  # asyncio, except that one create_task() has a cancel queued ahead of the task's first step
        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

        @staticmethod
        def create_task(coro: Any, **kw: Any) -> Any:
            nonlocal created
            created += 1
            if created == armed:
                asyncio.get_running_loop().call_soon(agent.cancel)
            return asyncio.create_task(coro, **kw)

    monkeypatch.setattr(loop_module, "asyncio", CancelFirst())

    async def collect() -> list[Event]:
        return [event async for event in agent.run("go")]

    events = await asyncio.wait_for(collect(), 10)
    assert events[-1]["type"] == "done" and events[-1]["reason"] == "cancelled"
    monkeypatch.undo()
    events = await asyncio.wait_for(collect(), 10)
    assert events[-1]["reason"] == "completed", "the agent takes the next prompt"


# --- tool faults --------------------------------------------------------------------------------------
async def until(predicate: Any, timeout: float = 20.0) -> None:
    """Poll state outside this process (a file a kernel writes, a script's output): no event to await."""

    async def wait() -> None:
        while not await predicate():  # noqa: ASYNC110 - polling another process's state, see the docstring
            await asyncio.sleep(0.05)
    await asyncio.wait_for(wait(), timeout)


async def test_kernel_killed_during_a_cell(client: Client, fakes: Any, jp_root_dir: Path, jp_serverapp: Any) -> None:
    started = jp_root_dir / "started.txt"
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("JupyterNotebook", {
            "operation": "insert_execute_code_cell", "notebook_path": "victim.ipynb",
            "source": "x = 1\nopen('started.txt', 'w').close()\nimport time\ntime.sleep(60)"})]),
        ScriptedTurn(text="The kernel died."),
    )
    client.prompt("run the long cell")

    async def cell_started() -> bool:
        return started.exists()

    await until(cell_started)
    [nb_session] = [s for s in strict_loads((await client.fetch("api", "sessions")).body)
                    if s["path"] == "victim.ipynb"]
    kernel_id = nb_session["kernel"]["id"]
    pid = jp_serverapp.kernel_manager.get_kernel(kernel_id).provisioner.pid
    os.kill(pid, 9)
    events = await client.until_done(timeout=40)
    [result] = [e for e in events if e["type"] == "tool_result"]
    assert result["is_error"] and "the kernel died while running this cell" in result["output"]
    assert events[-1]["reason"] == "completed"
    # the next call works, on a fresh kernel
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("JupyterNotebook", {
            "operation": "execute_ipython", "notebook_path": "victim.ipynb",
            "source": "print('alive', 'x' in globals())"})]),
        ScriptedTurn(text="It is back."),
    )
    events = await client.turn("again", timeout=40)
    [result] = [e for e in events if e["type"] == "tool_result"]
    assert not result["is_error"] and "alive False" in result["output"], result["output"]
    await client.still_serves(fakes)


STUBBORN_PY = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
print("ignoring INT and TERM; child", child.pid, flush=True)
time.sleep(120)
"""


async def test_script_ignoring_sigint_and_sigterm_is_killed(client: Client, fakes: Any, jp_root_dir: Path) -> None:
    (jp_root_dir / "stubborn.py").write_text(STUBBORN_PY)
    fakes["openai"].script(ScriptedTurn(tool_calls=[ScriptedTool("ExecuteScript", {"script_path": "stubborn.py"})]),
                           ScriptedTurn(text="started"))
    events = await client.turn("start it")
    [result] = [e for e in events if e["type"] == "tool_result"]
    pid = result["data"]["pid"]
    tail: list[str] = []

    async def handlers_in_place() -> bool:
        state = strict_loads((await client.fetch("ide-agent", "sessions", client.id, "workspace")).body)
        [proc] = [p for p in state["processes"] if p["pid"] == pid]
        tail[:] = proc["tail"]
        return any("ignoring INT and TERM" in line for line in tail)

    await until(handlers_in_place)
    child = int(tail[-1].split()[-1])
    tree = {pid, child} | {p.pid for p in psutil.Process(pid).children(recursive=True)}
    # the grace periods are not configurable (5 s + 5 s): shorten them on this session's table
    client.agent.processes.grace = (0.3, 0.3)
    response = await client.fetch("ide-agent", "sessions", client.id, "processes", str(pid), "interrupt",
                                  method="POST", body="{}")
    stopped = strict_loads(response.body)
    assert stopped["signal"] == "SIGKILL" and stopped["status"] == "killed" and stopped["remaining"] == []
    assert all(not psutil.pid_exists(p) for p in tree), "nothing left, not even a zombie"
    state = strict_loads((await client.fetch("ide-agent", "sessions", client.id, "workspace")).body)
    assert [p["status"] for p in state["processes"] if p["pid"] == pid] == ["killed"]
    await client.still_serves(fakes)


# --- the socket ---------------------------------------------------------------------------------------
async def test_socket_closed_mid_turn_and_reopened_loses_nothing(client: Client, fakes: Any) -> None:
    answer = " ".join(f"w{i}" for i in range(30))
    fakes["openai"].script(ScriptedTurn(text=answer, chunks=30, chunk_delay=0.03))
    client.prompt("talk")
    while len([e for e in client.seen if e["type"] == "text_delta"]) < 3:
        await client.read()
    client.ws.close()  # the tab went away mid-turn; the turn goes on without a subscriber
    await asyncio.sleep(0.2)
    last = client.seen[-1]["seq"]
    await client.connect(after_seq=last)
    rest = await client.until_done()
    assert rest[0]["seq"] == last + 1, "the first event after the reconnect is the one after the last seen"
    assert "".join(e["text"] for e in client.seen if e["type"] == "text_delta") == answer
    assert await client.logged() == client.seen, "nothing lost, nothing twice"
    # reconnecting again at the end replays nothing and the session goes on
    client.ws.close()
    await client.connect(after_seq=client.seen[-1]["seq"])
    await client.still_serves(fakes)


async def test_prompts_at_once_from_two_sockets_never_interleave(client: Client, fakes: Any) -> None:
    other = Client(client.fetch, client.ws_fetch, client.app)
    other.id = client.id
    await other.connect()
    fakes["openai"].script(ScriptedTurn(text="one one one", chunks=3, chunk_delay=0.03),
                           ScriptedTurn(text="two two two", chunks=3, chunk_delay=0.03),
                           ScriptedTurn(text="three three", chunks=3, chunk_delay=0.03))
    client.prompt("first")
    other.prompt("second")
    client.prompt("third")
    turns: list[list[Event]] = []
    for _ in range(3):
        turns.append(await client.until_done())
    for _ in range(3):
        await other.until_done()
    assert client.seen == other.seen == await client.logged(), "every socket sees the same log"
    queued = [e["text"] for e in client.seen if e["type"] == "queued"]
    assert sorted(queued) == ["second", "third"]
    answers = {t[0]["text"]: "".join(e["text"] for e in t if e["type"] == "text_delta") for t in
               ([e for e in turn if e["type"] != "queued"] for turn in turns)}
    assert answers == {"first": "one one one", "second": "two two two", "third": "three three"}
    # no interleaving: each turn's events are one contiguous block of the log
    turn_ids = [e["turn_id"] for e in client.seen if e["turn_id"] is not None]
    blocks = [t for i, t in enumerate(turn_ids) if i == 0 or turn_ids[i - 1] != t]
    assert len(blocks) == len(set(blocks)) == 3
    other.close()
    await client.still_serves(fakes)


# --- the session store -------------------------------------------------------------------------------
def store_of(client: Client) -> Any:
    store = client.app.web_app.settings["ide_agent_sessions"].store
    if store is None:
        pytest.skip("the server runs without a session store")
    return store


@pytest.mark.parametrize("fault", ["full", "read-only"])
async def test_store_full_or_read_only_while_the_server_runs(fault: str, client: Client, fakes: Any) -> None:
    """The disk fills up (or the file turns read-only) under a running server: the turn still streams, the
    client is told once, with a clear ``store`` error, the history written before stays whole,
    and when the disk has room again the same session goes on and is persisted again."""
    store = store_of(client)
    fakes["openai"].script(ScriptedTurn(text="first answer"))
    before = await client.turn("remember: the answer is 42")
    assert await client.logged() == before
    db = store._conn()  # the server writes from its event loop's thread: this one
    if fault == "full":
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count={pages}")  # not one page more
    else:
        db.execute("PRAGMA query_only=1")  # what a read-only file or mount does to every write
    try:
        fakes["openai"].script(ScriptedTurn(text="an answer the disk cannot keep"))
        events = await client.turn("y" * 300_000)  # bigger than any free space left in a page
        assert events[-1]["type"] == "done", "the turn streamed to the end anyway"
        assert "".join(e["text"] for e in events if e["type"] == "text_delta") == "an answer the disk cannot keep"
        errors = [e for e in events if e["type"] == "error"]
        assert len(errors) == 1, "one warning for the outage, not one per event that could not be saved"
        assert errors[0]["kind"] == "store" and errors[0]["retryable"] is False
        assert "not saved until the store can write again" in errors[0]["message"]
        expected = "full" if fault == "full" else "not writable"
        assert expected in errors[0]["message"] and str(store.path) in errors[0]["message"], errors[0]
        assert (await client.logged())[:len(before)] == before, "the history written before is intact"
        assert store.load_history(client.id) != [] and db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        status = strict_loads((await client.fetch("ide-agent", "status")).body)
        assert status["version"], "the server still serves"
    finally:
        if fault == "full":
            db.execute("PRAGMA max_page_count=1073741823")
        else:
            db.execute("PRAGMA query_only=0")
    # room again: the same session goes on, and its new events are kept
    fakes["openai"].script(ScriptedTurn(text="back to normal"))
    after = await client.turn("and now?")
    assert after[-1]["reason"] == "completed"
    after = [e for e in after if e["turn_id"] == after[-1]["turn_id"]]  # not the last warnings of the fault
    logged = await client.logged()
    assert logged[:len(before)] == before and logged[-len(after):] == after
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --- the store module on its own: the async writer under the same faults ------------------------------------

@pytest.fixture
def store_mod() -> Any:
    return pytest.importorskip("jupyterlab_ide_agent.memory.store")


def _event(seq: int, text: str = "x") -> Event:
    return {"type": "text_delta", "session_id": "s1", "seq": seq, "turn_id": "t", "ts": 1000.0 + seq, "text": text}


async def test_store_disk_full_under_the_async_writer_then_space_freed(tmp_path: Path, store_mod: Any) -> None:
    """Full at run time (``PRAGMA max_page_count`` on the writer's own connection, as a disk filling up):
    a clear StoreError in the awaiting coroutine, history and events before it intact, and once space is
    freed the same open store writes again (no restart)."""
    from jupyterlab_ide_agent.agent.messages import AssistantMessage, UserMessage

    store = store_mod.SessionStore(tmp_path / "s.sqlite3")
    try:
        await store.acreate_session("s1", "Filling up")
        kept = [UserMessage("remember this"), AssistantMessage("I will.")]
        await store.asave_history("s1", kept)
        for seq in range(1, 6):
            await store.aappend_event("s1", _event(seq))

        def fill_up(limit: int | None) -> int:
            db = store._conn()  # the writer thread's connection
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count={limit or pages}")
            return pages

        await store._in_thread(fill_up, None)  # no page left to grow into
        with pytest.raises(store_mod.StoreError, match="full") as err:
            for seq in range(6, 10_000):
                await store.aappend_event("s1", _event(seq, "y" * 2000))
        assert str(store.path) in str(err.value) and "free space" in str(err.value)
        failed_at = int(str(err.value).split("append event ")[1].split(":")[0])
        with pytest.raises(store_mod.StoreError, match="full"):
            await store.asave_history("s1", [UserMessage("z" * 100_000)])
        assert await store.aload_history("s1") == kept, "a failed replacement leaves the old history whole"
        seqs = [e["seq"] for e in await store.aevents_after("s1", 0)]
        assert seqs == list(range(1, failed_at)), "every event before the failure, none half-written"
        await store._in_thread(fill_up, 1_000_000)  # space freed
        await store.aappend_event("s1", _event(failed_at))
        assert await store.alast_seq("s1") == failed_at
        ok = await store._in_thread(lambda: store._conn().execute("PRAGMA integrity_check").fetchone()[0])
        assert ok == "ok"
    finally:
        store.close()


def _as_nobody(fn: Any) -> Any:
    """Run ``fn`` where file permissions apply (root ignores chmod): in a forked child demoted to nobody."""
    if os.geteuid() != 0:
        return fn()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write, json.dumps(fn()).encode())
            code = 0
        except BaseException:  # noqa: BLE001 - the child reports and exits whatever happened
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged check failed"
    return json.loads(data)


def test_store_read_only_under_the_async_writer(tmp_path: Path, store_mod: Any) -> None:
    """A read-only database (chmod): the async calls read, every async write raises a clear StoreError,
    and the file is unchanged afterwards."""
    from jupyterlab_ide_agent.agent.messages import UserMessage

    source = store_mod.SessionStore(tmp_path / "src.sqlite3")
    source.create_session("s1", "Kept")
    source.save_history("s1", [UserMessage("keep me")])
    for seq in range(1, 4):
        source.append_event("s1", _event(seq))
    source.close()
    where = Path(tempfile.mkdtemp(prefix="ide-agent-ro-"))
    try:
        copy = where / "sessions.sqlite3"
        shutil.copy(tmp_path / "src.sqlite3", copy)
        copy.chmod(0o444)
        where.chmod(0o777)  # the directory stays writable (WAL files): the database file is what is read-only

        def check() -> dict[str, Any]:
            async def run() -> dict[str, Any]:
                store = store_mod.SessionStore(copy)
                out: dict[str, Any] = {"titles": [s.title for s in await store.alist_sessions()],
                                       "seqs": [e["seq"] for e in await store.aevents_after("s1", 0)],
                                       "errors": []}
                for write in (store.aappend_event("s1", _event(4)), store.asave_history("s1", []),
                              store.arename_session("s1", "changed"), store.adelete_session("s1")):
                    try:
                        await write
                        out["errors"].append(None)
                    except store_mod.StoreError as exc:
                        out["errors"].append(str(exc))
                out["history"] = [m.text for m in await store.aload_history("s1")]
                store.close()
                return out
            return asyncio.run(run())

        out = _as_nobody(check)
        assert out["titles"] == ["Kept"] and out["seqs"] == [1, 2, 3] and out["history"] == ["keep me"]
        assert all(e and "not writable" in e and str(copy) in e for e in out["errors"]), out["errors"]
        where.chmod(0o755)
        with sqlite3.connect(copy) as db:
            assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3
            assert db.execute("SELECT title FROM sessions").fetchone()[0] == "Kept"
    finally:
        where.chmod(0o755)
        shutil.rmtree(where)
