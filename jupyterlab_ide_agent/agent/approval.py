"""Approval mode: the user confirms code-running tool calls before they run.

The loop asks, the sidebar (or the Python API via ``IDEAgent.approve``) answers "run" or "skip".
Every wait has a timeout, and a cancelled turn cancels the wait, so an unanswered request never
hangs a session. A skipped call becomes a tool result the model reads.
"""

from __future__ import annotations

import asyncio

MODES = ("never", "code")  # never ask / ask before tools that run code or scripts
DECISIONS = ("run", "skip")


class Approvals:
    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[str]] = {}
        #: calls asked about whose wait ended without an answer or timeout (the turn was cancelled)
        self.interrupted: set[str] = set()

    def pending(self) -> list[str]:
        return list(self._pending)

    async def wait(self, call_id: str, timeout: float) -> str:
        """The user's decision for ``call_id``; "timeout" if none came in time."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return "timeout"
        except asyncio.CancelledError:
            self.interrupted.add(call_id)
            raise
        finally:
            self._pending.pop(call_id, None)

    def decide(self, call_id: str, decision: str) -> bool:
        """Record a decision; False if nothing is waiting for that call (late or unknown)."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        future = self._pending.get(call_id)
        if future is None or future.done():
            return False
        future.set_result(decision)
        return True
