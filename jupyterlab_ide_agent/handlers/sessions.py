"""Status, sessions, their event logs, workspace state, rules, processes and direct ensemble questions."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..agent.loop import IDEAgent
from ..agent.session import SessionNotFound
from ..memory.store import StoreError
from ..tools.base import ToolError
from ..tools.scripts import interrupt_any
from ..workspace.processes import ProcessError
from ..workspace.ray_jobs import RayJobError, RayJobNotFound
from .base import BaseHandler, parse_consultation, seq_argument


class StatusHandler(BaseHandler):
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


class SessionsHandler(BaseHandler):
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


class SessionHandler(BaseHandler):
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


class EventsHandler(BaseHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        session = self.session_or_404(session_id)
        after = seq_argument(self.get_argument("after_seq", "0"))
        self.finish({"events": session.events_after(after)})


class WorkspaceHandler(BaseHandler):
    """The session's workspace state: files changed, notebooks and their kernels, processes."""

    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        agent = self.session_or_404(session_id).agent
        if self.get_argument("scan", "1") != "0":  # pollers pass scan=0: no mtime walk of the root
            await agent.workspace.refresh()
        self.set_header("Content-Type", "application/json")
        self.finish(agent.pool.redact(json.dumps(await agent.workspace.to_json(), default=str)))


class InterruptProcessHandler(BaseHandler):
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


class EnsembleHandler(BaseHandler):
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


class RulesHandler(BaseHandler):
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
