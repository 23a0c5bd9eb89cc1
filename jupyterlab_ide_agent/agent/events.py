"""Agent events: the one stream the Python API, the CLI and the WebSocket all see.

Every event is a plain JSON-able dict with ``type``, ``session_id``, ``seq``, ``turn_id`` and ``ts``.
``seq`` increases by one per event across the whole session (not per turn), so a client that
reconnects asks for ``after_seq=<last seen>`` and gets exactly what it missed.
"""

from __future__ import annotations

import time
from typing import Any

#: The closed set of event types. Clients ignore types they do not know.
EVENT_TYPES = frozenset(
    {
        "user_message",  # text, context: the prompt that started a turn
        "rules",  # rules [{path, scope, tokens, truncated, open_path}], warnings: the turn's rule files, when changed
        "queued",  # text: a prompt that waits for the running turn
        "text_delta",  # text
        "reasoning_delta",  # text
        "tool_call",  # call_id, name, arguments
        "tool_result",  # call_id, name, output, is_error, duration_ms
        "approval_request",  # call_id, name, arguments: waiting for "run" or "skip"
        "ensemble_member",  # member, state, ... (ConsultEnsemble)
        "ensemble_verdict",  # plan, agreements, disagreements, cost
        "usage",  # provider, model, tokens, cost_usd, session totals
        "compaction",  # messages, tokens_before, tokens_after, cost_usd
        "error",  # message, kind, provider, retryable
        "done",  # reason: completed | cancelled | error | max_steps
    }
)


class EventStream:
    """Stamps events with the session id and the next ``seq``."""

    def __init__(self, session_id: str, last_seq: int = 0) -> None:
        self.session_id = session_id
        self.last_seq = last_seq

    def make(self, type_: str, turn_id: str | None, **fields: Any) -> dict[str, Any]:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        self.last_seq += 1
        return {
            "type": type_,
            "session_id": self.session_id,
            "seq": self.last_seq,
            "turn_id": turn_id,
            "ts": time.time(),
            **fields,
        }
