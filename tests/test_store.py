"""The SQLite session store: round trips, resumable events, transactions, failures and restarts."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyterlab_ide_agent.agent.messages import (
    AssistantMessage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from jupyterlab_ide_agent.memory import groups as g
from jupyterlab_ide_agent.memory.store import (
    SessionStore,
    StoreError,
    default_store_path,
)
from jupyterlab_ide_agent.providers.base import Usage


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    s = SessionStore(tmp_path / "data" / "sessions.sqlite3")
    yield s
    s.close()


def event(seq: int, type_: str = "text_delta", **fields: Any) -> dict[str, Any]:
    return {"type": type_, "session_id": "s1", "seq": seq, "turn_id": "t", "ts": 1000.0 + seq,
            "text": f"piece {seq}", **fields}


def history() -> list[Any]:
    return [
        g.make_summary("Goals: fix train.py", 2, 40),
        UserMessage("run it", {"notebook": "a.ipynb", "cells": [1]}),
        AssistantMessage("", [ToolCall("c1", "Read", {"path": "train.py"})], "think", "anthropic", "claude-opus-4-1",
                         [{"type": "thinking", "thinking": "think", "signature": "sig=="},
                          {"type": "tool_use", "id": "c1", "name": "Read", "input": {"path": "train.py"}}]),
        ToolResultMessage("c1", "Read", "print('hi')", False),
        AssistantMessage("done", interrupted=True),
    ]


def count_rows(path: Path, session_id: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t} WHERE {'id' if t == 'sessions' else 'session_id'} = ?",
                              (session_id,)).fetchone()[0] for t in ("sessions", "events", "history")}


def as_unprivileged(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` where file permissions apply: in a forked child demoted to ``nobody`` when we are
    root (root ignores chmod), else right here. The child's result comes back as JSON."""
    if os.geteuid() != 0:
        return fn()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            out = fn()
            os.write(write, json.dumps(out).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged check failed"
    return json.loads(data)


# --- round trips --------------------------------------------------------------------------------
def test_default_path_is_in_the_jupyter_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jd"))
    assert default_store_path() == tmp_path / "jd" / "ide_agent" / "sessions.sqlite3"


def test_wal_mode_and_schema(store: SessionStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert store._conn().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert store._conn().execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_sessions_round_trip(store: SessionStore) -> None:
    a = store.create_session("a", "First", main_model="openai:gpt-5", state={"started_at": 5.0}, created=100.0)
    store.create_session("b", "Second", created=200.0)
    assert store.get_session("a") == a and store.get_session("missing") is None
    assert [s.id for s in store.list_sessions()] == ["b", "a"]  # most recently updated first
    store.append_event("a", event(1, ts=300.0))
    assert [s.id for s in store.list_sessions()] == ["a", "b"]
    assert store.rename_session("a", "Renamed") and not store.rename_session("missing", "x")
    store.save_state("a", {"started_at": 5.0, "switches": 1}, main_model="anthropic:claude-opus-4-1")
    store.save_usage("a", Usage(1200, 300, 100, 800), 0.0123)
    got = store.get_session("a")
    assert got is not None and got.title == "Renamed" and got.main_model == "anthropic:claude-opus-4-1"
    assert got.state == {"started_at": 5.0, "switches": 1} and got.usage == Usage(1200, 300, 100, 800)
    assert got.to_json()["usage"]["cost_usd"] == 0.0123 and got.last_seq == 1
    with pytest.raises(StoreError, match="create a session"):
        store.create_session("a")


def test_events_after_and_last_seq(store: SessionStore) -> None:
    store.create_session("s1")
    for seq in range(1, 11):
        store.append_event("s1", event(seq, data={"nested": [1, 2]}))
    assert store.last_seq("s1") == 10 and store.last_seq("other") == 0
    assert [e["seq"] for e in store.events_after("s1", 7)] == [8, 9, 10]
    assert store.events_after("s1", 0)[0] == event(1, data={"nested": [1, 2]})
    assert store.events_after("s1", 10) == [] and len(store.events_after("s1", 0, limit=4)) == 4
    with pytest.raises(StoreError, match="append event 5"):
        store.append_event("s1", event(5))  # a seq is written once
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        store.append_event("nobody", event(1))
    assert [e["text"] for e in store.events_after("s1", 4)][:1] == ["piece 5"]


def test_history_is_replaced_whole(store: SessionStore) -> None:
    store.create_session("s1")
    store.save_history("s1", history())
    loaded = store.load_history("s1")
    assert loaded == history() and g.summary_level(loaded[0]) == 2
    store.save_history("s1", history()[3:])
    assert store.load_history("s1") == history()[3:]
    assert store.load_history("unknown") == []


# --- failures -----------------------------------------------------------------------------------
def test_a_full_database_raises_and_keeps_earlier_data(tmp_path: Path) -> None:
    path = tmp_path / "full.sqlite3"
    store = SessionStore(path, max_bytes=64 * 1024)
    store.create_session("s1")
    store.save_history("s1", history())
    written = 0
    with pytest.raises(StoreError, match="full"):
        for seq in range(1, 100_000):
            store.append_event("s1", event(seq, text="x" * 500))
            written = seq
    assert written > 10
    with pytest.raises(StoreError, match="full"):
        store.save_history("s1", [UserMessage("y" * 200_000)])
    assert store.last_seq("s1") == written and len(store.events_after("s1", 0)) == written
    assert store.load_history("s1") == history()  # the failed replacement left the old one whole
    store.close()
    roomy = SessionStore(path)  # more room (a freed disk): writing works again, nothing was lost
    roomy.append_event("s1", event(written + 1))
    assert roomy.last_seq("s1") == written + 1
    assert roomy._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    roomy.close()


@pytest.mark.parametrize("dir_writable", [True, False])
def test_a_read_only_database_raises_and_keeps_its_data(tmp_path: Path, dir_writable: bool) -> None:
    source = SessionStore(tmp_path / "src.sqlite3")
    source.create_session("s1", "Kept")
    for seq in range(1, 6):
        source.append_event("s1", event(seq))
    source.close()
    where = Path(tempfile.mkdtemp(prefix="ide-agent-ro-"))  # outside pytest's 0700 tmp dirs
    try:
        copy = where / "sessions.sqlite3"
        shutil.copy(tmp_path / "src.sqlite3", copy)
        copy.chmod(0o444)
        where.chmod(0o777 if dir_writable else 0o555)

        def check() -> dict[str, Any]:
            try:
                ro = SessionStore(copy)
            except StoreError as exc:
                return {"open": str(exc)}
            listed = [s.title for s in ro.list_sessions()]
            try:
                ro.append_event("s1", event(6))
                return {"wrote": True}
            except StoreError as exc:
                return {"listed": listed, "write": str(exc)}
            finally:
                ro.close()

        out = as_unprivileged(check)
        message = out.get("write") or out.get("open") or ""
        assert "not writable" in message and str(copy) in message, out
        if "write" in out:
            assert out["listed"] == ["Kept"]  # a read-only store still serves reads
        where.chmod(0o755)
        copy.chmod(0o644)
        intact = SessionStore(copy)
        assert [e["seq"] for e in intact.events_after("s1", 0)] == [1, 2, 3, 4, 5]
        intact.close()
    finally:
        where.chmod(0o755)
        shutil.rmtree(where)


def test_a_corrupt_file_raises_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a valid SQLite database"):
        SessionStore(path)
    assert path.read_bytes().startswith(b"this is not sqlite")  # left alone for the user to inspect


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer version"):
        SessionStore(path)


def test_closed_store_raises(tmp_path: Path) -> None:
    s = SessionStore(tmp_path / "x.sqlite3")
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.list_sessions()


# --- deletes, restarts, crashes ---------------------------------------------------------------------
def test_delete_removes_everything(store: SessionStore) -> None:
    marker = "SECRET-MARKER-7f3a"
    store.create_session("gone", marker)
    store.create_session("stays")
    store.append_event("gone", event(1, text=marker))
    store.append_event("stays", event(1))
    store.save_history("gone", [UserMessage(marker)])
    assert store.delete_session("gone") and not store.delete_session("gone")
    assert count_rows(store.path, "gone") == {"sessions": 0, "events": 0, "history": 0}
    assert count_rows(store.path, "stays") == {"sessions": 1, "events": 1, "history": 0}
    for file in store.path.parent.iterdir():  # neither the database nor its WAL keeps the text
        assert marker.encode() not in file.read_bytes(), file


def test_a_restart_sees_everything(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    first = SessionStore(path)
    first.create_session("s1", "Long run", main_model="openai:gpt-5", state={"started_at": 1.0})
    for seq in range(1, 21):
        first.append_event("s1", event(seq))
    first.save_history("s1", history())
    first.save_usage("s1", Usage(10, 20), 0.5)
    first.close()
    second = SessionStore(path)  # a new server on the same database
    record = second.get_session("s1")
    assert record is not None and record.title == "Long run" and record.last_seq == 20
    assert record.usage.output_tokens == 20 and record.cost_usd == 0.5 and record.state == {"started_at": 1.0}
    assert second.load_history("s1") == history()
    assert [e["seq"] for e in second.events_after("s1", 17)] == [18, 19, 20]
    second.close()


def test_a_killed_writer_loses_at_most_the_event_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    SessionStore(path).create_session("s1")
    pid = os.fork()
    if pid == 0:
        try:
            writer = SessionStore(path)
            for seq in range(1, 10_000_000):
                writer.append_event("s1", event(seq, text="x" * 200))
        finally:
            os._exit(0)
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    after = SessionStore(path)
    seqs = [e["seq"] for e in after.events_after("s1", 0)]
    assert len(seqs) > 100 and seqs == list(range(1, len(seqs) + 1))  # a prefix, no hole
    assert after._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    after.close()


# --- async and threads ----------------------------------------------------------------------------
async def test_async_wrappers_keep_the_order(store: SessionStore) -> None:
    await store.acreate_session("s1", "Async")
    await asyncio.gather(*(store.aappend_event("s1", event(seq)) for seq in range(1, 201)))
    assert await store.alast_seq("s1") == 200
    assert [e["seq"] for e in await store.aevents_after("s1", 195)] == [196, 197, 198, 199, 200]
    await store.asave_history("s1", history())
    assert await store.aload_history("s1") == history()
    await store.asave_usage("s1", Usage(1, 2), 0.1)
    await store.asave_state("s1", {"k": 1})
    assert await store.arename_session("s1", "Renamed")
    assert [s.title for s in await store.alist_sessions()] == ["Renamed"]
    assert (await store.aget_session("s1")).state == {"k": 1}  # type: ignore[union-attr]
    assert await store.adelete_session("s1")


def test_readers_in_other_threads_while_writing(store: SessionStore) -> None:
    store.create_session("s1")
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                seqs = [e["seq"] for e in store.events_after("s1", 0)]
                assert seqs == list(range(1, len(seqs) + 1))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for seq in range(1, 301):
        store.append_event("s1", event(seq))
    stop.set()
    for t in threads:
        t.join()
    assert errors == [] and store.last_seq("s1") == 300
