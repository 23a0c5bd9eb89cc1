"""Durable sessions in SQLite: sessions, their full event log, usage, and the agent's memory.

Standard-library ``sqlite3`` in WAL mode, one file (by default ``<jupyter data dir>/ide_agent/
sessions.sqlite3``). Every write is one short transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a
crash loses at most the write in flight and never earlier data; SQLite's journal makes each one
all-or-nothing, and an error (disk full, read-only file, corrupt file) rolls it back and raises one
:class:`StoreError` with the path and what to do.

Why sync methods plus ``a*`` wrappers: with WAL and ``synchronous=NORMAL`` a one-event commit takes
about 50 us here (measured), cheap enough to call on the server's event loop right where the session
publishes the event, which keeps the log and the database in the same order with no queue that a crash
could lose. NORMAL survives a crash of the server process (the WAL is written before COMMIT returns);
only an OS crash or power cut may roll back the last commits, never corrupt the file. ``synchronous=
"FULL"`` closes that gap at about 3.4 ms per commit (measured), and bigger writes (a long history, a
delete with its checkpoint) can take longer still: the ``a*`` methods run on one dedicated thread, in
submission order, so the event loop never waits on the disk. Each thread gets its own connection
(never shared; ``close()`` closes them all); there is one writer process.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..agent.messages import Message, message_from_dict, message_to_dict
from ..providers.base import Usage

T = TypeVar("T")
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    main_model TEXT NOT NULL DEFAULT '', input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0, reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    type TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, position INTEGER NOT NULL,
    message TEXT NOT NULL, PRIMARY KEY (session_id, position)) WITHOUT ROWID;
"""


class StoreError(Exception):
    """Any failure of the session store, with a message a user can act on."""


def default_store_path() -> Path:
    """``<jupyter data dir>/ide_agent/sessions.sqlite3`` (honours ``JUPYTER_DATA_DIR``)."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "ide_agent" / "sessions.sqlite3"


@dataclass
class SessionRecord:
    id: str
    title: str
    created: float
    updated: float
    main_model: str = ""
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)
    last_seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "created": self.created, "updated": self.updated,
                "main_model": self.main_model, "last_seq": self.last_seq, "state": self.state,
                "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens,
                          "reasoning_tokens": self.usage.reasoning_tokens,
                          "cached_tokens": self.usage.cached_tokens, "cost_usd": round(self.cost_usd, 8)}}


def _explain(path: Path, action: str, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    low = text.lower()
    if "full" in low:
        hint = "the disk (or the store's size limit) is full: free space; nothing earlier was lost"
    elif "readonly" in low or "read-only" in low or "unable to open" in low:
        hint = "the file or its directory is not writable: fix the permissions or configure another path"
    elif "not a database" in low or "malformed" in low or "corrupt" in low:
        hint = "the file is not a valid SQLite database: move it away (a new one is created) or restore a backup"
    elif "locked" in low or "busy" in low:
        hint = "another process holds the database: only one Jupyter server should use this file"
    else:
        hint = "see the SQLite error"
    return StoreError(f"session store {path}: cannot {action}: {text} ({hint})")


class SessionStore:
    """The sessions of one server, in one SQLite file. ``max_bytes`` caps the file's size."""

    def __init__(self, path: str | Path | None = None, *, synchronous: str = "NORMAL",
                 max_bytes: int | None = None, busy_timeout: float = 5.0) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError("synchronous must be NORMAL, FULL or EXTRA")
        self.path = Path(path) if path is not None else default_store_path()
        self.synchronous, self.max_bytes, self.busy_timeout = synchronous.upper(), max_bytes, busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"session store {self.path}: cannot create its directory: {exc}") from exc
        try:
            self._migrate()
        except StoreError:
            self.close()
            raise

    def _migrate(self) -> None:
        version = self._read("open the database", "PRAGMA user_version")[0][0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"session store {self.path}: written by a newer version (schema {version}); "
                             "upgrade jupyterlab-ide-agent or configure another path")
        if version < SCHEMA_VERSION:  # only a new file is written to here: a read-only store still reads
            with self._write("create the tables") as db:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # --- connections and transactions ---------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"session store {self.path}: already closed")
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                # one connection per thread (thread-local); check_same_thread is off only so that
                # close() can close them all from the thread that shuts the store down
                db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                     check_same_thread=False)
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"cannot switch to WAL mode (journal_mode={mode})")
                db.execute(f"PRAGMA synchronous={self.synchronous}")
                db.execute("PRAGMA foreign_keys=ON")
                db.execute("PRAGMA secure_delete=ON")  # a deleted session's text does not linger in free pages
                if self.max_bytes:
                    page = db.execute("PRAGMA page_size").fetchone()[0]
                    db.execute(f"PRAGMA max_page_count={max(1, self.max_bytes // page)}")
            except sqlite3.Error as exc:
                if db is not None:
                    db.close()
                raise _explain(self.path, "open the database", exc) from exc
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One short write transaction: all of it or nothing."""
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                self._rollback(db)
                raise
        except sqlite3.Error as exc:
            raise _explain(self.path, action, exc) from exc

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        """SQLite may already have rolled back (disk full, I/O error): never mask the first error."""
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _read(self, action: str, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _explain(self.path, action, exc) from exc

    def close(self) -> None:
        """Close every connection (after the async writer drained)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._closed = True
        with self._lock:
            for db in self._connections:
                try:
                    db.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()

    # --- sessions ---------------------------------------------------------------------------------
    _COLUMNS = ("s.id, s.title, s.created, s.updated, s.main_model, s.input_tokens, s.output_tokens, "
                "s.reasoning_tokens, s.cached_tokens, s.cost_usd, s.state, "
                "(SELECT COALESCE(MAX(seq), 0) FROM events e WHERE e.session_id = s.id)")

    @staticmethod
    def _record(row: tuple[Any, ...]) -> SessionRecord:
        return SessionRecord(row[0], row[1], row[2], row[3], row[4], Usage(row[5], row[6], row[7], row[8]),
                             row[9], json.loads(row[10] or "{}"), row[11])

    def create_session(self, session_id: str | None = None, title: str = "New session", *,
                       main_model: str = "", state: dict[str, Any] | None = None,
                       created: float | None = None) -> SessionRecord:
        now = created if created is not None else time.time()
        sid = session_id or uuid.uuid4().hex
        with self._write("create a session") as db:
            db.execute("INSERT INTO sessions (id, title, created, updated, main_model, state) VALUES (?,?,?,?,?,?)",
                       (sid, title, now, now, main_model, json.dumps(state or {})))
        return SessionRecord(sid, title, now, now, main_model, state=dict(state or {}))

    def get_session(self, session_id: str) -> SessionRecord | None:
        rows = self._read("read a session", f"SELECT {self._COLUMNS} FROM sessions s WHERE s.id = ?", (session_id,))
        return self._record(rows[0]) if rows else None

    def list_sessions(self) -> list[SessionRecord]:
        """Most recently updated first."""
        rows = self._read("list sessions", f"SELECT {self._COLUMNS} FROM sessions s ORDER BY s.updated DESC")
        return [self._record(r) for r in rows]

    def rename_session(self, session_id: str, title: str) -> bool:
        with self._write("rename a session") as db:
            return db.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id)).rowcount > 0

    def save_state(self, session_id: str, state: dict[str, Any], *, main_model: str | None = None) -> None:
        """The agent's own state (``started_at``, switches...), as JSON, replacing the previous one."""
        with self._write("save the session state") as db:
            db.execute("UPDATE sessions SET state = ?, main_model = COALESCE(?, main_model) WHERE id = ?",
                       (json.dumps(state, default=str), main_model, session_id))

    def save_usage(self, session_id: str, usage: Usage, cost_usd: float) -> None:
        """The session's totals so far (set, not added: the agent keeps the running sums)."""
        with self._write("save usage") as db:
            db.execute("UPDATE sessions SET input_tokens=?, output_tokens=?, reasoning_tokens=?, cached_tokens=?, "
                       "cost_usd=? WHERE id=?", (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens,
                                                 usage.cached_tokens, cost_usd, session_id))

    def delete_session(self, session_id: str) -> bool:
        """Delete the session, its events and its history, then checkpoint so the WAL lets go of them."""
        with self._write("delete a session") as db:
            db.execute("DELETE FROM events WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM history WHERE session_id = ?", (session_id,))
            found = db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0
        self._read("checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)")
        return found

    # --- events -----------------------------------------------------------------------------------
    def append_event(self, session_id: str, event: dict[str, Any], data: str | None = None) -> None:
        """One event, one transaction; ``event["seq"]`` must be new for the session. ``data``: the
        event already serialized (the session serializes each event once for the store and the sockets)."""
        seq = int(event["seq"])
        data = data if data is not None else json.dumps(event, default=str)
        with self._write(f"append event {seq}") as db:
            db.execute("INSERT INTO events (session_id, seq, type, data) VALUES (?,?,?,?)",
                       (session_id, seq, str(event.get("type", "")), data))
            db.execute("UPDATE sessions SET updated = MAX(updated, ?) WHERE id = ?",
                       (float(event.get("ts") or time.time()), session_id))

    def events_after(self, session_id: str, seq: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT data FROM events WHERE session_id = ? AND seq > ? ORDER BY seq"
        args: list[Any] = [session_id, seq]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [json.loads(r[0]) for r in self._read("read events", sql, args)]

    def last_seq(self, session_id: str) -> int:
        rows = self._read("read the last seq", "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?",
                          (session_id,))
        return int(rows[0][0])

    # --- the agent's memory -----------------------------------------------------------------------
    def save_history(self, session_id: str, messages: Sequence[Message]) -> None:
        """Replace the agent's (compacted) history in one transaction: the old one or the new one."""
        rows = [(session_id, i, json.dumps(message_to_dict(m), default=str)) for i, m in enumerate(messages)]
        with self._write("save the history") as db:
            db.execute("DELETE FROM history WHERE session_id = ?", (session_id,))
            db.executemany("INSERT INTO history (session_id, position, message) VALUES (?,?,?)", rows)

    def load_history(self, session_id: str) -> list[Message]:
        rows = self._read("read the history", "SELECT message FROM history WHERE session_id = ? ORDER BY position",
                          (session_id,))
        try:
            return [message_from_dict(json.loads(r[0])) for r in rows]
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreError(f"session store {self.path}: the history of {session_id} cannot be read: {exc}") from exc

    # --- async: the same calls on one writer thread ------------------------------------------------
    async def _in_thread(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ide-agent-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, **kw))

    async def acreate_session(self, *a: Any, **kw: Any) -> SessionRecord:
        return await self._in_thread(self.create_session, *a, **kw)

    async def aget_session(self, session_id: str) -> SessionRecord | None:
        return await self._in_thread(self.get_session, session_id)

    async def alist_sessions(self) -> list[SessionRecord]:
        return await self._in_thread(self.list_sessions)

    async def arename_session(self, session_id: str, title: str) -> bool:
        return await self._in_thread(self.rename_session, session_id, title)

    async def adelete_session(self, session_id: str) -> bool:
        return await self._in_thread(self.delete_session, session_id)

    async def aappend_event(self, session_id: str, event: dict[str, Any]) -> None:
        await self._in_thread(self.append_event, session_id, event)

    async def aevents_after(self, session_id: str, seq: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        return await self._in_thread(self.events_after, session_id, seq, limit)

    async def alast_seq(self, session_id: str) -> int:
        return await self._in_thread(self.last_seq, session_id)

    async def asave_history(self, session_id: str, messages: Sequence[Message]) -> None:
        await self._in_thread(self.save_history, session_id, list(messages))

    async def aload_history(self, session_id: str) -> list[Message]:
        return await self._in_thread(self.load_history, session_id)

    async def asave_usage(self, session_id: str, usage: Usage, cost_usd: float) -> None:
        await self._in_thread(self.save_usage, session_id, usage, cost_usd)

    async def asave_state(self, session_id: str, state: dict[str, Any], *, main_model: str | None = None) -> None:
        await self._in_thread(self.save_state, session_id, state, main_model=main_model)
