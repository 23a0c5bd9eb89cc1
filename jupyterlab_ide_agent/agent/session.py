"""Sessions: one conversation each, its agent, its event log, its subscribers and its prompt queue.

A session owns a worker task that takes prompts one at a time, so two prompts sent at once are
queued (the second gets a ``queued`` event), never interleaved. Every event the agent yields is
appended to the log and handed to every subscriber *synchronously*: a WebSocket that replays the log
and then subscribes, with no ``await`` in between, can neither miss nor duplicate an event.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlets.config import Configurable

from ..host import NotebookHost
from ..providers.registry import ProviderPool
from .loop import IDEAgent

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


class SessionNotFound(KeyError):
    pass


@dataclass
class Prompt:
    text: str
    context: dict[str, Any] | None = None
    approval_mode: str | None = None
    model: str | None = None


class AgentSession:
    def __init__(self, agent: IDEAgent, title: str) -> None:
        self.agent = agent
        self.id = agent.session_id
        self.title = title
        self.created = time.time()
        self.updated = self.created
        self.log: list[Event] = []
        self._subscribers: set[Subscriber] = set()
        self._on_close: set[Callable[[], None]] = set()
        self._prompts: asyncio.Queue[Prompt] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._consultations: set[asyncio.Task[None]] = set()

    # --- subscribers -------------------------------------------------------------------------
    def events_after(self, seq: int) -> list[Event]:
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
        self.log.append(event)
        self.updated = event["ts"]
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # one broken client must not stop the others
                self.agent.log.exception("IDE agent subscriber failed; dropping it")
                self._subscribers.discard(callback)

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
                 host: NotebookHost | None = None) -> None:
        self.parent = parent
        self.workspace_dir = workspace_dir
        self.pool = pool
        self.host = host  # shared: a notebook's kernel is the same whichever session drives it
        self._sessions: dict[str, AgentSession] = {}

    def create(self, title: str | None = None) -> AgentSession:
        agent = IDEAgent(
            session_id=uuid.uuid4().hex,
            workspace_dir=self.workspace_dir,
            provider_pool=self.pool,
            host=self.host,
            parent=self.parent,
        )
        session = AgentSession(agent, title or "New session")
        self._sessions[session.id] = session
        return session

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

    async def shutdown(self) -> None:
        for session_id in list(self._sessions):
            await self.delete(session_id)
        if self.host is not None:
            await self.host.shutdown()
        await self.pool.aclose()
