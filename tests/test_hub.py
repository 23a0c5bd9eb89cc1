"""Under JupyterHub: a user's server at ``/user/alice/`` with the hub's kind of identity provider and authorizer.

JupyterHub runs one Jupyter server per user, under ``base_url = /user/<name>/``, with an identity provider that
knows hub users by their tokens and an authorizer (``HubAuthorizer``) that lets only the server's owner (and whom
the hub grants access) in. :class:`HubUsers` and :class:`OwnerOnly` stand for them: the routes must live under the
prefix, serve the owner, refuse anyone else with 403 (every route, the WebSocket too), and keep each user's
sessions in that user's own data directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web, websocket
from tornado.httpclient import HTTPClientError
from traitlets import Dict, Unicode
from traitlets.config import Config

from jupyterlab_ide_agent.handlers import route_handlers
from tests.conftest import providers_config
from tests.fakes.base import ScriptedTurn
from tests.servers import free_port, wait_until_answering
from tests.test_ensemble_server import SYNTHESIS, read_until_verdict
from tests.test_handlers import create_session, read_until_done

REPO = Path(__file__).resolve().parents[1]
ALICE_TOKEN, MALLORY_TOKEN = "alice-hub-token", "mallory-hub-token"
ALICE = {"Authorization": f"token {ALICE_TOKEN}"}
MALLORY = {"Authorization": f"token {MALLORY_TOKEN}"}


class HubUsers(IdentityProvider):
    """Stands for JupyterHub's identity provider: every API token belongs to one hub user."""

    users = Dict(key_trait=Unicode(), value_trait=Unicode(), help="token -> hub user name").tag(config=True)

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        name = self.users.get(self.get_token(handler) or "")
        return User(username=name) if name else None


class OwnerOnly(Authorizer):
    """Stands for JupyterHub's ``HubAuthorizer``: the server's owner may do anything, any other hub user nothing."""

    owner = Unicode(help="the hub user who owns this server").tag(config=True)

    def is_authorized(self, handler: web.RequestHandler, user: User, action: str, resource: str) -> bool:
        return user.username == self.owner


@pytest.fixture
def jp_base_url() -> str:
    return "/user/alice/"


@pytest.fixture
def jp_auth_header() -> dict[str, str]:
    return dict(ALICE)


@pytest.fixture
def jp_server_config(fakes: dict[str, Any]) -> Config:
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"jupyterlab_ide_agent": True},
                "identity_provider_class": HubUsers,
                "authorizer_class": OwnerOnly,
            },
            "HubUsers": {"users": {ALICE_TOKEN: "alice", MALLORY_TOKEN: "mallory"}},
            "OwnerOnly": {"owner": "alice"},
            "IDEAgent": {"providers": providers_config(fakes), "main_model": "openai:gpt-5"},
        }
    )


def concrete(pattern: str, session_id: str) -> str:
    """A route pattern with its groups filled in: a real session id, any process id or MCP server name."""
    values = {"session_id": session_id, "pid": "12345", "name": "some-server"}
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values.get(m.group(1), "x"), pattern)


async def test_routes_live_under_the_users_prefix(jp_serverapp: Any, http_server_client: Any) -> None:
    status = await http_server_client.fetch("/user/alice/ide-agent/status", headers=ALICE)
    assert json.loads(status.body)["ready"] is True
    with pytest.raises(HTTPClientError) as err:  # nothing answers outside the user's prefix
        await http_server_client.fetch("/ide-agent/status", headers=ALICE)
    assert err.value.code == 404


async def test_the_owner_drives_every_route_and_the_stream(jp_fetch: Any, jp_ws_fetch: Any, fakes: Any) -> None:
    fakes["openai"].script(ScriptedTurn(text="Hello from behind the hub.", chunks=3))
    session = await create_session(jp_fetch, "alice's")
    sid = session["id"]
    assert [s["id"] for s in json.loads((await jp_fetch("ide-agent", "sessions")).body)["sessions"]] == [sid]

    ws = await jp_ws_fetch("ide-agent", "sessions", sid, "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "Say hello"}))
    events = await read_until_done(ws)
    assert events[-1]["reason"] == "completed"
    assert "".join(e["text"] for e in events if e["type"] == "text_delta") == "Hello from behind the hub."
    history = json.loads((await jp_fetch("ide-agent", "sessions", sid, "events")).body)["events"]
    assert history == events

    workspace = json.loads((await jp_fetch("ide-agent", "sessions", sid, "workspace")).body)
    assert isinstance(workspace, dict)
    for kind in ("anthropic", "xai", "gemini"):
        fakes[kind].script(ScriptedTurn(text=f"{kind}: fine"))
    fakes["openai"].script(ScriptedTurn(text="openai: fine"), ScriptedTurn(text=SYNTHESIS))
    asked = await jp_fetch(
        "ide-agent", "sessions", sid, "ensemble", method="POST", body=json.dumps({"question": "Is this fine?"})
    )
    assert asked.code == 202
    assert (await read_until_verdict(ws))[-1]["status"] == "ok"
    ws.close()

    with pytest.raises(HTTPClientError) as err:  # authorized, and then a plain "no such process"
        await jp_fetch("ide-agent", "sessions", sid, "processes", "12345", "interrupt", method="POST", body="{}")
    assert err.value.code == 404
    renamed = await jp_fetch("ide-agent", "sessions", sid, method="PATCH", body=json.dumps({"title": "renamed"}))
    assert json.loads(renamed.body)["title"] == "renamed"
    assert (await jp_fetch("ide-agent", "sessions", sid, method="DELETE")).code == 204


async def test_another_hub_user_is_refused_on_every_route(jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any) -> None:
    sid = (await create_session(jp_fetch, "alice's"))["id"]
    me = json.loads((await jp_fetch("api", "me", headers=dict(MALLORY))).body)
    assert me["identity"]["username"] == "mallory"  # known to the hub: what refuses her below is the authorizer
    checked = []
    for pattern, handler in route_handlers():  # every route the extension has, present and future
        path = concrete(pattern, sid)
        if issubclass(handler, websocket.WebSocketHandler):
            with pytest.raises(HTTPClientError) as err:
                await jp_ws_fetch(*path.split("/"), headers=dict(MALLORY))
            assert err.value.code == 403, path
            checked.append(f"WS {path}")
            continue
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if getattr(handler, method.lower()) is getattr(web.RequestHandler, method.lower()):
                continue  # the route does not serve this method
            body = "{}" if method in ("POST", "PUT", "PATCH") else None
            with pytest.raises(HTTPClientError) as err:
                await jp_fetch(*path.split("/"), method=method, body=body, headers=dict(MALLORY))
            assert err.value.code == 403, f"{method} {path}"
            checked.append(f"{method} {path}")
    assert {
        "GET ide-agent/status",
        "POST ide-agent/sessions",
        f"DELETE ide-agent/sessions/{sid}",
        f"WS ide-agent/sessions/{sid}/stream",
        f"POST ide-agent/sessions/{sid}/ensemble",
    } <= set(checked)
    # nothing the refused user sent changed alice's data
    listed = json.loads((await jp_fetch("ide-agent", "sessions")).body)["sessions"]
    assert [(s["id"], s["title"]) for s in listed] == [(sid, "alice's")]
    assert jp_serverapp.web_app.settings["ide_agent_sessions"].get(sid).events_after(0) == []


async def test_sessions_are_kept_in_the_users_data_dir(jp_serverapp: Any, jp_fetch: Any, jp_data_dir: Path) -> None:
    await create_session(jp_fetch)
    store = jp_serverapp.web_app.settings["ide_agent_sessions"].store
    assert store is not None and store.path == jp_data_dir / "ide_agent" / "sessions.sqlite3"
    assert store.path.is_file()


# ---------------------------------------------------------------- two users, two servers (as the hub spawns them)


class UserServer:
    """One user's ``jupyter server`` process under ``/user/<name>/``, with its own HOME (and maybe data dir)."""

    def __init__(self, name: str, home: Path, data_dir: Path | None, fakes: dict[str, Any]) -> None:
        self.name, self.home = name, home
        self.port, self.token = free_port(), f"{name}-token"
        (home / "work").mkdir(parents=True)
        config = {
            "ServerApp": {"jpserver_extensions": {"jupyterlab_ide_agent": True}},
            "IDEAgent": {"providers": providers_config(fakes), "main_model": "openai:gpt-5"},
        }
        (home / "jupyter_server_config.json").write_text(json.dumps(config))
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "XDG_")) and k not in ("PYTHONPATH",)
        }
        env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(home), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        if data_dir is not None:
            env["JUPYTER_DATA_DIR"] = str(data_dir)
        self.log = home / "server.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyter_server",
                    "--ServerApp.ip=127.0.0.1",
                    f"--ServerApp.port={self.port}",
                    "--ServerApp.port_retries=0",
                    f"--ServerApp.base_url=/user/{name}/",
                    f"--IdentityProvider.token={self.token}",
                    f"--ServerApp.root_dir={home / 'work'}",
                    "--allow-root",
                    "--no-browser",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=home,
            )

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/user/{self.name}/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def wait_ready(self) -> None:
        wait_until_answering(self.proc, lambda: self.api("ide-agent/status"), f"{self.name}'s server",
                             lambda: self.log.read_text(errors="replace")[-3000:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def two_users(tmp_path: Path, fakes: dict[str, Any]) -> Iterator[tuple[UserServer, UserServer]]:
    """alice's data dir comes from her HOME; bob's is set with JUPYTER_DATA_DIR (both ways a hub may run)."""
    servers = [
        UserServer("alice", tmp_path / "home-alice", None, fakes),
        UserServer("bob", tmp_path / "home-bob", tmp_path / "bob-data", fakes),
    ]
    try:
        for server in servers:
            server.wait_ready()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def test_two_users_never_see_each_others_sessions(two_users: tuple[UserServer, UserServer], tmp_path: Path) -> None:
    alice, bob = two_users
    mine = alice.api("ide-agent/sessions", "POST", {"title": "alice's secret plan"})
    theirs = bob.api("ide-agent/sessions", "POST", {"title": "bob's"})
    assert [s["id"] for s in alice.api("ide-agent/sessions")["sessions"]] == [mine["id"]]
    assert [s["id"] for s in bob.api("ide-agent/sessions")["sessions"]] == [theirs["id"]]

    alice_store = alice.home / ".local" / "share" / "jupyter" / "ide_agent" / "sessions.sqlite3"
    bob_store = tmp_path / "bob-data" / "ide_agent" / "sessions.sqlite3"
    assert alice_store.is_file() and bob_store.is_file()
    assert b"alice's secret plan" not in bob_store.read_bytes()
    stores = {p.resolve() for p in tmp_path.rglob("sessions.sqlite3")}
    assert stores == {alice_store.resolve(), bob_store.resolve()}  # nowhere else under either user
