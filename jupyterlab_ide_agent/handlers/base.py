"""What every route shares: authentication, authorization, the body-size limit and strict parsing
of client JSON (the REST bodies and the WebSocket messages alike)."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..agent.session import AgentSession, SessionManager, SessionNotFound

AUTH_RESOURCE = "ide-agent"


SESSION_ID = r"(?P<session_id>[^/]+)"


class BaseHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        # every route, whether or not it reads its body: an oversized request is refused up front
        limit = self.settings["ide_agent_max_message_bytes"]
        if len(self.request.body or b"") > limit:
            raise web.HTTPError(413, f"Request body is larger than {limit} bytes")

    @property
    def sessions(self) -> SessionManager:
        return self.settings["ide_agent_sessions"]

    def session_or_404(self, session_id: str) -> AgentSession:
        try:
            return self.sessions.get(session_id)
        except SessionNotFound:
            raise web.HTTPError(404, f"No IDE agent session {session_id!r}") from None

    def json_body(self) -> dict[str, Any]:
        """The request's JSON object (its size was checked in ``prepare``); a clear 400 otherwise."""
        if not self.request.body:
            return {}
        try:
            body = parse_json(self.request.body)
        except ValueError as exc:
            raise web.HTTPError(400, f"Request body: {exc}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "Request body must be a JSON object")
        return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: str | bytes) -> Any:
    """Strict JSON from a client: no NaN/Infinity (a browser cannot parse them back), no text that
    is not valid UTF-8 (a lone surrogate would poison the history for every later request), and
    numbers or nesting past Python's limits are a clear error. Raises ValueError with the reason."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeError:
        raise ValueError("not valid UTF-8 text") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    return value


def seq_argument(value: str) -> int:
    try:
        return max(0, int(value))
    except ValueError:
        raise web.HTTPError(400, f"after_seq must be an integer, got {value!r}") from None


def parse_consultation(body: dict[str, Any]) -> tuple[str, str | None, list[str] | None]:
    """Validate a direct ensemble request (REST body or socket message); ValueError says why."""
    question, context, members = body.get("question"), body.get("context"), body.get("members")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' must be a non-empty string")
    if context is not None and not isinstance(context, str):
        raise ValueError("'context' must be a string")
    if members is not None and (not isinstance(members, list) or not all(isinstance(m, str) for m in members)):
        raise ValueError("'members' must be a list of member names")
    return question, context, members
