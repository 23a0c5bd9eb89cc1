"""Sessions: one conversation each, its agent, its event log, its subscribers and its prompt queue.

A session owns a worker task that takes prompts one at a time, so two prompts sent at once are
queued (the second gets a ``queued`` event), never interleaved. Every event the agent yields is
appended to the log and handed to every subscriber *synchronously*: a WebSocket that replays the log
and then subscribes, with no ``await`` in between, can neither miss nor duplicate an event.

With a :class:`~..memory.store.SessionStore` the log is the SQLite store (one short transaction per
event, so a crash loses at most the event being written) and the agent's memory is saved at every
turn boundary, when every tool call has its result; after a restart the manager reopens every
session from it, and a turn the restart cut short ends with ``done(reason="interrupted")``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets.config import Configurable

from ..host import NotebookHost
from ..memory.store import SessionRecord, SessionStore, StoreError
from ..providers.registry import ProviderPool
from .loop import IDEAgent

Event = dict[str, Any]
#: receives each event and its JSON text (serialized once, keys redacted, for the store and sockets)
Subscriber = Callable[[Event, str], None]


class SessionNotFound(KeyError):
    pass


@dataclass
class Prompt:
    text: str
    context: dict[str, Any] | None = None
    approval_mode: str | None = None
    model: str | None = None


class AgentSession:
    def __init__(self, agent: IDEAgent, title: str, store: SessionStore | None = None) -> None:
        self.agent = agent
        self.id = agent.session_id
        self.title = title
        self.created = time.time()
        self.updated = self.created
        self.store = store
        self.log: list[Event] = []  # only without a store
        self._subscribers: set[Subscriber] = set()
        self._store_failing = False  # told once per outage, not once per failed write
        self._on_close: set[Callable[[], None]] = set()
        self._prompts: asyncio.Queue[Prompt] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._consultations: set[asyncio.Task[None]] = set()

    # --- subscribers -------------------------------------------------------------------------
    def events_after(self, seq: int) -> list[Event]:
        if self.store is not None:
            return self.store.events_after(self.id, seq)
        return [e for e in self.log if e["seq"] > seq]

    def subscribe(self, callback: Subscriber, on_close: Callable[[], None] | None = None) -> Callable[[], None]:
        """Receive every new event; ``on_close`` is called if the session is deleted."""
        self._subscribers.add(callback)
        if on_close is not None:
            self._on_close.add(on_close)

        def unsubscribe() -> None:
            self._subscribers.discard(callback)
            if on_close is not None:
                self._on_close.discard(on_close)

        return unsubscribe

    def _publish(self, event: Event) -> None:
        data = json.dumps(event, default=str)
        redacted = self.agent.pool.redact(data)  # defence in depth: no key leaves, whatever the source
        if redacted != data:
            data, event = redacted, json.loads(redacted)
        self._persist(event, data)
        self.updated = event["ts"]
        for callback in list(self._subscribers):
            try:
                callback(event, data)
            except Exception:  # one broken client must not stop the others
                self.agent.log.exception("IDE agent subscriber failed; dropping it")
                self._subscribers.discard(callback)

    def _persist(self, event: Event, data: str) -> None:
        if self.store is None:
            self.log.append(event)
            return
        try:
            self.store.append_event(self.id, event, data)
        except StoreError as exc:  # say so live, once per outage; earlier history stays intact in the store
            if self._store_failing:
                return
            self._store_failing = True
            self.agent.log.error("IDE agent: %s; events are not saved until it can write again", exc)
            warning = self.agent.events.make(
                "error", None, kind="store", retryable=False,
                message=f"{exc}. The conversation goes on, but it is not saved until the store can write again.")
            for callback in list(self._subscribers):
                callback(warning, json.dumps(warning))
        else:
            if self._store_failing:
                self._store_failing = False
                self.agent.log.info("IDE agent: the session store %s writes again", self.store.path)

    def save(self) -> None:
        """Save the agent's memory, usage and state (at a turn boundary: every call answered)."""
        if self.store is None:
            return
        try:
            self.store.save_history(self.id, self.agent.history)
            self.store.save_usage(self.id, self.agent.usage, self.agent.cost_usd)
            self.store.save_state(self.id, {"started_at": self.agent.started_at}, main_model=self.agent.main_model)
        except StoreError as exc:
            self.agent.log.error("IDE agent: %s", exc)
            self._publish(self.agent.events.make("error", None, kind="store", message=str(exc), retryable=False))

    def rename(self, title: str) -> None:
        self.title = title
        if self.store is not None:
            self.store.rename_session(self.id, title)

    # --- turns --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.agent.running or not self._prompts.empty() or bool(self._consultations)

    def submit(self, text: str, context: dict[str, Any] | None = None, approval_mode: str | None = None,
               model: str | None = None) -> None:
        """Queue a prompt; it runs when the turns before it are done. ``approval_mode`` and ``model``
        are the user's settings when they sent it; None keeps the configured ones."""
        if self.agent.running or not self._prompts.empty():
            self._publish(self.agent.events.make("queued", None, text=text))
        self._prompts.put_nowait(Prompt(text, context, approval_mode, model))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name=f"ide-agent-{self.id}")

    def cancel(self) -> bool:
        """Cancel the running turn and direct consultations, and drop queued prompts."""
        while not self._prompts.empty():
            self._prompts.get_nowait()
        for task in list(self._consultations):
            task.cancel()
        return self.agent.cancel() or bool(self._consultations)

    def consult(self, question: str, context: str | None = None, members: list[str] | None = None) -> None:
        """Ask the ensemble directly, without a main-model turn; its events stream on this session.

        Raises ``ToolError``/``ValueError`` at once for a misconfigured ensemble or unknown members.
        """
        ensemble = self.agent.make_ensemble()
        ensemble.select(members)

        async def emit(type_: str, fields: dict[str, Any]) -> None:
            self._publish(self.agent.events.make(type_, None, **fields))

        async def run() -> None:
            try:
                verdict = await ensemble.consult(question, context, emit, members)
                self.agent.add_cost(verdict.cost_usd)
                self.save()
            except asyncio.CancelledError:
                self._publish(self.agent.events.make("error", None, kind="cancelled",
                                                     message="The consultation was cancelled."))
            except Exception as exc:  # a bug of ours: say so on the stream, keep the session
                self.agent.log.exception("IDE agent consultation failed")
                self._publish(self.agent.events.make("error", None, kind="internal", message=str(exc)))

        task = asyncio.create_task(run(), name=f"ide-agent-ensemble-{self.id}")
        self._consultations.add(task)
        task.add_done_callback(self._consultations.discard)

    async def _work(self) -> None:
        while not self._prompts.empty():
            prompt = self._prompts.get_nowait()
            if prompt.approval_mode is not None:
                self.agent.approval_mode = prompt.approval_mode
            if prompt.model is not None:
                self.agent.main_model = prompt.model
            async for event in self.agent.run(prompt.text, prompt.context):
                self._publish(event)
            self.save()

    async def close(self) -> None:
        self.cancel()
        await asyncio.gather(*self._consultations, return_exceptions=True)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self.agent.cleanup()
        self._subscribers.clear()
        for on_close in list(self._on_close):
            on_close()
        self._on_close.clear()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created": self.created,
            "updated": self.updated,
            "running": self.running,
            "last_seq": self.agent.events.last_seq,
            "usage": {
                "input_tokens": self.agent.usage.input_tokens,
                "output_tokens": self.agent.usage.output_tokens,
                "cost_usd": round(self.agent.cost_usd, 8),
            },
        }


class SessionManager:
    """All sessions of one server (or one CLI process), sharing one provider pool."""

    def __init__(self, *, parent: Configurable | None, workspace_dir: Path, pool: ProviderPool,
                 host: NotebookHost | None = None, store: SessionStore | None = None) -> None:
        self.parent = parent
        self.workspace_dir = workspace_dir
        self.pool = pool
        self.host = host  # shared: a notebook's kernel is the same whichever session drives it
        self.store = store
        self._sessions: dict[str, AgentSession] = {}
        if store is not None:
            for record in store.list_sessions():
                self._reopen(record)

    def _agent(self, session_id: str, last_seq: int = 0) -> IDEAgent:
        return IDEAgent(session_id=session_id, workspace_dir=self.workspace_dir, provider_pool=self.pool,
                        host=self.host, parent=self.parent, last_seq=last_seq)

    def create(self, title: str | None = None) -> AgentSession:
        agent = self._agent(uuid.uuid4().hex)
        session = AgentSession(agent, title or "New session", self.store)
        if self.store is not None:
            self.store.create_session(session.id, session.title, main_model=agent.main_model,
                                      state={"started_at": agent.started_at})
        self._sessions[session.id] = session
        return session

    def _reopen(self, record: SessionRecord) -> None:
        """A stored session, as it was at its last turn boundary."""
        assert self.store is not None
        agent = self._agent(record.id, last_seq=record.last_seq)
        agent.history = self.store.load_history(record.id)
        agent.usage, agent.cost_usd = record.usage, record.cost_usd
        agent.started_at = record.state.get("started_at", record.created)
        agent.workspace.started_at = agent.started_at
        if record.main_model:
            agent.main_model = record.main_model
        session = AgentSession(agent, record.title, self.store)
        session.created, session.updated = record.created, record.updated
        self._sessions[record.id] = session
        last = self.store.events_after(record.id, max(0, record.last_seq - 1))
        if last and last[-1]["turn_id"] is not None and last[-1]["type"] != "done":
            turn = last[-1]["turn_id"]
            session._publish(agent.events.make(
                "error", turn, kind="interrupted", message="The server stopped while this turn ran."))
            session._publish(agent.events.make("done", turn, reason="interrupted"))

    def get(self, session_id: str) -> AgentSession:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise SessionNotFound(session_id) from None

    def list(self) -> list[AgentSession]:
        return sorted(self._sessions.values(), key=lambda s: s.updated, reverse=True)

    async def delete(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            raise SessionNotFound(session_id)
        await session.close()
        if self.store is not None:
            self.store.delete_session(session_id)

    async def shutdown(self) -> None:
        """Server shutdown: stop every session's work; stored sessions stay for the next start."""
        for session in list(self._sessions.values()):
            await session.close()
        self._sessions.clear()
        if self.host is not None:
            await self.host.shutdown()
        await self.pool.aclose()
        if self.store is not None:
            self.store.close()
