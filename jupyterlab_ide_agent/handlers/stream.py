"""The session's WebSocket: replay after ``after_seq``, then live events; prompts, cancel, approvals."""

from __future__ import annotations

import json
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web, websocket

from ..agent.approval import DECISIONS
from ..agent.approval import MODES as APPROVAL_MODES
from ..agent.attachments import parse_attachments
from ..agent.session import AgentSession, SessionNotFound
from ..tools.base import ToolError
from .base import AUTH_RESOURCE, parse_consultation, parse_json, seq_argument


class StreamHandler(WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    """``WS sessions/{id}/stream?after_seq=N``: replay after N, then live events; takes prompts."""

    auth_resource = AUTH_RESOURCE

    def set_default_headers(self) -> None:  # JupyterHandler's headers make no sense on a socket
        pass

    @property
    def max_message_size(self) -> int:  # tornado closes with 1009 past this
        return self.settings["ide_agent_max_message_bytes"]

    @ws_authenticated
    async def get(self, session_id: str) -> None:
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "execute", AUTH_RESOURCE)
        )
        if not allowed:
            raise web.HTTPError(403)
        try:
            self.session: AgentSession = self.settings["ide_agent_sessions"].get(session_id)
        except SessionNotFound:
            raise web.HTTPError(404, f"No IDE agent session {session_id!r}") from None
        self.after_seq = seq_argument(self.get_argument("after_seq", "0"))
        await super().get(session_id)

    def open(self, session_id: str) -> None:  # type: ignore[override]
        super().open()
        # replay then subscribe with no await in between: nothing missed, nothing twice
        for event in self.session.events_after(self.after_seq):
            self.write_message(json.dumps(event))
        self._unsubscribe = self.session.subscribe(
            self._send, on_close=lambda: self.close(4404, "session deleted")
        )

    def _send(self, event: dict[str, Any], data: str) -> None:
        try:
            self.write_message(data)
        except websocket.WebSocketClosedError:
            self._unsubscribe()

    def on_message(self, message: str | bytes) -> None:
        try:
            data = parse_json(message)
        except ValueError as exc:
            return self._reject(f"Message: {exc}")
        if not isinstance(data, dict):
            return self._reject("Message must be a JSON object.")
        kind = data.get("type")
        if kind == "prompt":
            text, context, mode = data.get("text"), data.get("context"), data.get("approval_mode")
            if not isinstance(text, str) or not text.strip():
                return self._reject("A prompt needs a non-empty 'text' string.")
            if context is not None and not isinstance(context, dict):
                return self._reject("'context' must be an object.")
            if context is not None and "attachments" in context:
                try:
                    refs = parse_attachments(context["attachments"])
                    context = {**context, "attachments": [ref.to_json() for ref in refs]}
                except ValueError as exc:
                    return self._reject(f"'context.attachments': {exc}")
            if mode is not None and mode not in APPROVAL_MODES:
                return self._reject(f"'approval_mode' must be one of {list(APPROVAL_MODES)}.")
            model = data.get("model") or None
            if model is not None:
                problems = ["'model' must be a string"] if not isinstance(model, str) else \
                    self.settings["ide_agent_sessions"].pool.problems(model)
                if problems:
                    return self._reject(f"Cannot use model {model!r}: {'; '.join(problems)}")
            self.session.submit(text, context, mode, model)
        elif kind == "cancel":
            self.session.cancel()
        elif kind == "ensemble":
            try:
                self.session.consult(*parse_consultation(data))
            except (ValueError, ToolError) as exc:
                self._reject(str(exc))
        elif kind == "approval":
            call_id, decision = data.get("call_id"), data.get("decision")
            if not isinstance(call_id, str) or decision not in DECISIONS:
                return self._reject("An approval needs 'call_id' and 'decision' ('run' or 'skip').")
            if not self.session.agent.approve(call_id, decision):
                self._reject(f"No tool call {call_id!r} is waiting for approval.")
        else:
            self._reject(f"Unknown message type {kind!r}; expected 'prompt', 'cancel', 'ensemble' or 'approval'.")

    def _reject(self, message: str) -> None:
        """A protocol error for this client only: not part of the session's log (no seq)."""
        self.write_message(
            json.dumps({"type": "error", "kind": "bad_request", "message": message, "seq": None,
                        "session_id": self.session.id})
        )

    def on_close(self) -> None:
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe:
            unsubscribe()
        super().on_close()
