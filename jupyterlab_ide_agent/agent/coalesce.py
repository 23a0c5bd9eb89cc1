"""Coalesce bursts of streamed deltas into fewer events, without delaying a slow stream.

A model sends a delta every 20-50 ms; a fast local server or a replay can send thousands per
second. Each event costs a store transaction, a JSON encoding and a WebSocket frame, so one event
per delta makes the server, not the model, the bottleneck (bench/stream.py). The rule here: a delta
that arrives at least ``window`` after the last event went out is sent at once (a normal model
stream is never held back); deltas that arrive faster are joined and sent when the window closes,
or earlier when anything else (a tool call, usage, a delta of the other kind) must go out after
them. Text and order are unchanged; only the number of events shrinks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..providers.base import ReasoningDelta, TextDelta

Delta = TextDelta | ReasoningDelta


class DeltaCoalescer:
    """Feed provider events in with :meth:`add`; they come out through ``put``."""

    def __init__(self, put: Callable[[Any], None], window: float = 0.016) -> None:
        self._put = put
        self._window = window
        self._loop = asyncio.get_running_loop()
        self._kind: type[Delta] | None = None
        self._parts: list[str] = []
        self._last_out = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def add(self, event: Any) -> None:
        if not isinstance(event, (TextDelta, ReasoningDelta)):
            self.flush()
            self._put(event)
            return
        if self._kind is type(event):
            self._parts.append(event.text)
            return
        self.flush()
        now = self._loop.time()
        if now - self._last_out >= self._window:
            self._put(event)
            self._last_out = now
            return
        self._kind = type(event)
        self._parts = [event.text]
        self._timer = self._loop.call_at(self._last_out + self._window, self.flush)

    def flush(self) -> None:
        """Send what is held (called by the timer, before any other event, and at the end)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._kind is not None:
            self._put(self._kind(text="".join(self._parts)))
            self._last_out = self._loop.time()
            self._kind, self._parts = None, []

    def close(self) -> None:
        """Drop what is held without sending it (the turn was cancelled)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._kind, self._parts = None, []
