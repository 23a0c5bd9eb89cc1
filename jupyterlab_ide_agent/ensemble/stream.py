"""Member events, with deltas coalesced so four streaming models do not flood the socket.

Providers stream a delta every few tokens; four members (five with the synthesizer) would put
hundreds of tiny events per second into the session log and onto every WebSocket. Deltas are buffered
per member and flushed every ``interval`` seconds (or when a buffer grows past ``max_chars``), still
streaming, in order. A state event (started, finished, failed) first flushes that member's buffer,
and every emit happens under one lock, so per member the order is always: started, deltas, then
exactly one finished or failed with nothing after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Self

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


async def _discard(type_: str, fields: dict[str, Any]) -> None:
    return None


class MemberEvents:
    """Emits ``ensemble_member`` events for one consultation; ``async with`` runs the flusher."""

    def __init__(self, emit: Emit | None, consultation_id: str, *, interval: float = 0.1,
                 max_chars: int = 2000, question: str | None = None) -> None:
        self._emit = emit or _discard
        self.consultation_id = consultation_id
        self.question = question  # on every "started" event, so any client can label the consultation
        self.interval = interval
        self.max_chars = max_chars
        self._buffers: dict[str, list[list[str]]] = {}  # member -> [[channel, text], ...]
        self._lock = asyncio.Lock()
        self._stopped = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._flusher = asyncio.create_task(self._flush_periodically())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopped.set()
        if self._flusher is None:
            return
        if exc[0] is None:
            await self._flusher  # it wakes at once, flushes what is left and ends
        else:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def emit(self, type_: str, fields: dict[str, Any]) -> None:
        """Emit any event (the verdict) in order with the member events."""
        async with self._lock:
            await self._flush_all()
            await self._emit(type_, {"consultation_id": self.consultation_id, **fields})

    async def state(self, member: str, state: str, **fields: Any) -> None:
        """started / finished / failed, after the member's pending deltas."""
        if state == "started" and self.question is not None:
            fields = {"question": self.question, **fields}
        async with self._lock:
            await self._flush(member)
            await self._send(member, state, fields)

    async def delta(self, member: str, channel: str, text: str) -> None:
        """Buffer a ``reasoning`` or ``text`` delta; consecutive ones of a channel merge."""
        if not text:
            return
        chunks = self._buffers.setdefault(member, [])
        if chunks and chunks[-1][0] == channel:
            chunks[-1][1] += text
        else:
            chunks.append([channel, text])
        if sum(len(c[1]) for c in chunks) >= self.max_chars:
            async with self._lock:
                await self._flush(member)

    async def _send(self, member: str, state: str, fields: dict[str, Any]) -> None:
        await self._emit("ensemble_member", {"consultation_id": self.consultation_id, "member": member,
                                             "state": state, **fields})

    async def _flush(self, member: str) -> None:
        chunks = self._buffers.pop(member, [])
        for channel, text in chunks:
            await self._send(member, channel, {"text": text})

    async def _flush_all(self) -> None:
        for member in list(self._buffers):
            await self._flush(member)

    async def _flush_periodically(self) -> None:
        while not self._stopped.is_set():
            try:
                await asyncio.wait_for(self._stopped.wait(), self.interval)
            except TimeoutError:
                pass
            async with self._lock:
                await self._flush_all()
