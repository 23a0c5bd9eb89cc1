"""REST and WebSocket routes under ``{base_url}ide-agent/``.

Every route is authenticated by the server's identity provider and authorized through its authorizer
(resource ``ide-agent``): REST handlers are ``APIHandler`` (which also enforces XSRF on writes) with
``@authorized``; the WebSocket checks the token like the kernel socket does, checks the Origin
(``WebSocketMixin``) and asks the authorizer before it opens. See docs/openapi.yaml.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_path_join
from tornado import web, websocket

from .agent.approval import DECISIONS
from .agent.approval import MODES as APPROVAL_MODES
from .agent.attachments import parse_attachments
from .agent.loop import IDEAgent
from .agent.session import AgentSession, SessionManager, SessionNotFound
from .memory.store import StoreError
from .tools.base import ToolError
from .tools.scripts import interrupt_any
from .workspace.files import MAX_LIMIT as FILES_MAX_LIMIT
from .workspace.files import FileIndex
from .workspace.processes import ProcessError
from .workspace.ray_jobs import RayJobError, RayJobNotFound

AUTH_RESOURCE = "ide-agent"
SESSION_ID = r"(?P<session_id>[^/]+)"


class _Base(APIHandler):
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
        limit = self.settings["ide_agent_max_message_bytes"]
        if len(self.request.body) > limit:
            raise web.HTTPError(413, f"Request body is larger than {limit} bytes")
        if not self.request.body:
            return {}
        try:
            body = parse_json(self.request.body)
        except ValueError as exc:
            raise web.HTTPError(400, f"Request body: {exc}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "Request body must be a JSON object")
        return body


class StatusHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        agent_cfg: Any = self.config.get("IDEAgent", {})
        rows = self.sessions.pool.status()
        main_model = agent_cfg.get("main_model", IDEAgent.main_model.default_value)
        problems = self.sessions.pool.problems(main_model)
        self.finish(
            {
                "version": self.settings["ide_agent_version"],
                "ready": not problems,
                "main_model": main_model,
                "providers": rows,
                "problems": problems,
            }
        )


class SessionsHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish({"sessions": [s.to_json() for s in self.sessions.list()]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        title = body.get("title")
        if title is not None and not isinstance(title, str):
            raise web.HTTPError(400, "title must be a string")
        try:
            session = self.sessions.create(title)
        except StoreError as exc:
            raise web.HTTPError(503, str(exc)) from None
        self.set_status(201)
        self.finish(session.to_json())


class SessionHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        self.finish(self.session_or_404(session_id).to_json())

    @web.authenticated
    @authorized
    async def patch(self, session_id: str) -> None:
        session = self.session_or_404(session_id)
        title = self.json_body().get("title")
        if not isinstance(title, str) or not title.strip():
            raise web.HTTPError(400, "title must be a non-empty string")
        try:
            session.rename(title.strip()[:200])
        except StoreError as exc:
            raise web.HTTPError(503, str(exc)) from None
        self.finish(session.to_json())

    @web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        try:
            await self.sessions.delete(session_id)
        except SessionNotFound:
            raise web.HTTPError(404, f"No IDE agent session {session_id!r}") from None
        self.set_status(204)
        self.finish()


class EventsHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        session = self.session_or_404(session_id)
        after = _int_arg(self.get_argument("after_seq", "0"))
        self.finish({"events": session.events_after(after)})


class WorkspaceHandler(_Base):
    """The session's workspace state: files changed, notebooks and their kernels, processes."""

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        agent = self.session_or_404(session_id).agent
        if self.get_argument("scan", "1") != "0":  # pollers pass scan=0: no mtime walk of the root
            await agent.workspace.refresh()
        self.set_header("Content-Type", "application/json")
        self.finish(agent.pool.redact(json.dumps(await agent.workspace.to_json(), default=str)))


class InterruptProcessHandler(_Base):
    """Interrupt one of the session's background processes or Ray jobs (the sidebar's stop button)."""

    @web.authenticated
    @authorized
    async def post(self, session_id: str, pid: str) -> None:
        agent = self.session_or_404(session_id).agent
        force = bool(self.json_body().get("force", False))
        try:
            result = await interrupt_any(agent.processes, agent.ray_jobs, pid, force=force)
        except (ProcessError, RayJobNotFound) as exc:
            raise web.HTTPError(404, str(exc)) from None
        except RayJobError as exc:  # the cluster did not answer or refused
            raise web.HTTPError(502, str(exc)) from None
        self.set_header("Content-Type", "application/json")  # a Ray job's reply carries its log tail: redacted
        self.finish(agent.pool.redact(json.dumps(result, default=str)))


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


class EnsembleHandler(_Base):
    """Ask the ensemble directly; 202 at once, the member and verdict events stream on the socket."""

    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        session = self.session_or_404(session_id)
        try:
            session.consult(*parse_consultation(self.json_body()))
        except (ValueError, ToolError) as exc:
            raise web.HTTPError(400, str(exc)) from None
        self.set_status(202)
        self.finish({"accepted": True})


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
        self.after_seq = _int_arg(self.get_argument("after_seq", "0"))
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


def _int_arg(value: str) -> int:
    try:
        return max(0, int(value))
    except ValueError:
        raise web.HTTPError(400, f"after_seq must be an integer, got {value!r}") from None


def route_handlers() -> list[tuple[str, type]]:
    base = "ide-agent"
    return [
        (url_path_join(base, "status"), StatusHandler),
        (url_path_join(base, "mcp"), McpServersHandler),
        (url_path_join(base, "mcp", MCP_SERVER), McpServerHandler),
        (url_path_join(base, "mcp", MCP_SERVER, "connect"), McpConnectHandler),
        (url_path_join(base, "files"), FilesHandler),
        (url_path_join(base, "sessions", SESSION_ID, "rules"), RulesHandler),
        (url_path_join(base, "sessions"), SessionsHandler),
        (url_path_join(base, "sessions", SESSION_ID), SessionHandler),
        (url_path_join(base, "sessions", SESSION_ID, "events"), EventsHandler),
        (url_path_join(base, "sessions", SESSION_ID, "stream"), StreamHandler),
        (url_path_join(base, "sessions", SESSION_ID, "workspace"), WorkspaceHandler),
        (url_path_join(base, "sessions", SESSION_ID, "ensemble"), EnsembleHandler),
        (url_path_join(base, "sessions", SESSION_ID, "processes", r"(?P<pid>[\w.-]+)", "interrupt"),
         InterruptProcessHandler),
    ]


class RulesHandler(_Base):
    """The rule files the session's next turn would read (the sidebar's "Rules" indicator): paths,
    scopes and sizes, never their text. ``?path=`` asks for the AGENTS.md nearest to that notebook
    or file; without it, the context of the session's last prompt is used."""

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        agent = self.session_or_404(session_id).agent
        path = self.get_argument("path", None)
        context = {"file": path} if path else agent.rules.last_context
        self.set_header("Content-Type", "application/json")
        self.finish(agent.pool.redact(json.dumps(agent.rules.current(context).to_json())))


class FilesHandler(_Base):
    """``GET files?q=&limit=50``: the workspace's files and notebooks, ranked for the prompt's ``@`` completion."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        query = self.get_argument("q", "")
        if len(query) > 500:
            raise web.HTTPError(400, "q must be at most 500 characters")
        try:
            limit = int(self.get_argument("limit", "50"))
        except ValueError:
            raise web.HTTPError(400, "limit must be an integer") from None
        if not 1 <= limit <= FILES_MAX_LIMIT:
            raise web.HTTPError(400, f"limit must be between 1 and {FILES_MAX_LIMIT}")
        index = self.settings.get("ide_agent_file_index")
        if index is None:  # one cached listing per server, built on first use
            index = self.settings["ide_agent_file_index"] = FileIndex(self.sessions.workspace_dir)
        self.finish(await index.search(query, limit))


MCP_SERVER = r"(?P<name>[^/]+)"


class _McpBase(_Base):
    """The MCP servers of this Jupyter server (one manager shared by every session)."""

    @property
    def mcp(self) -> Any:
        return self.settings["ide_agent_mcp"]

    def finish_redacted(self, data: dict[str, Any]) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(self.sessions.pool.redact(json.dumps(data)))


class McpServersHandler(_McpBase):
    """GET: every configured server: name, transport, command or URL (no query), source, on/off,
    state, last error and tools. Env and header values never appear. Starts nothing."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish_redacted(self.mcp.listing())


class McpServerHandler(_McpBase):
    """PATCH ``{"enabled": bool}``: turn a server on or off for this user (kept across restarts).
    Off stops it, and its tools leave every session's registry before the next model step."""

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        enabled = self.json_body().get("enabled")
        if not isinstance(enabled, bool):
            raise web.HTTPError(400, "'enabled' must be true or false")
        try:
            row = await self.mcp.set_enabled(name, enabled)
        except KeyError:
            raise web.HTTPError(404, f"No MCP server {name!r}") from None
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        except OSError as exc:
            raise web.HTTPError(500, f"Could not save the MCP server switch: {exc.strerror or exc}") from None
        self.finish_redacted(row)


class McpConnectHandler(_McpBase):
    """POST: start (or restart) one server now and list its tools; a failure shows in ``error``."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        try:
            row = await self.mcp.connect(name)
        except KeyError:
            raise web.HTTPError(404, f"No MCP server {name!r}") from None
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        self.finish_redacted(row)
