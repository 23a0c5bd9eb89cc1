"""Security through a real Jupyter server: authentication, origin, XSRF, the authorizer, path confinement through
the model's tools, keys that never leave the server, oversized messages, and a fuzzed socket.

Every route is taken from ``route_handlers()``, so a route added later is covered without touching this file.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import (
    AsyncHTTPClient,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
)
from tornado.websocket import WebSocketClientConnection, websocket_connect
from traitlets.config import Config

from jupyterlab_ide_agent.handlers import AUTH_RESOURCE, StreamHandler, route_handlers
from tests.conftest import providers_config
from tests.fakes.base import ScriptedTool, ScriptedTurn
from tests.test_faults import strict_loads

Event = dict[str, Any]
MB = 1024 * 1024
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
#: one distinctive key per provider, so any leak is found by a plain substring search
KEYS = {
    "openai": "sk-proj-LEAKCHECK-openai-4f1b9c2e7a",
    "anthropic": "sk-ant-api03-LEAKCHECK-anthropic-8d3e",
    "gemini": "AIzaLEAKCHECK-gemini-5c7a1f0b2d9e",
    "xai": "xai-LEAKCHECK-xai-6e2d4b8a1c3f",
}
ENV_KEY = ("IDE_AGENT_TEST_LOCAL_KEY", "sk-local-LEAKCHECK-from-env-0a9b8c7d")


class LABEXTENSION:  # a namespace
    path = Path(__file__).resolve().parent.parent / "jupyterlab_ide_agent" / "labextension"
    name = json.loads((path / "package.json").read_text())["name"]


# --- the server under test ------------------------------------------------------------------------------
class RecordingAuthorizer(Authorizer):
    """Records every question; denies what ``deny(action, resource)`` says (nothing by default)."""

    asked: ClassVar[list[tuple[str, str, str]]] = []

    def deny(self, action: str, resource: str) -> bool:
        return False

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        type(self).asked.append((handler.request.path, action, resource))
        return not self.deny(action, resource)


class DenyIDEAgent(RecordingAuthorizer):
    """Allows everything but the IDE agent (as a hub admin could for some users)."""

    def deny(self, action: str, resource: str) -> bool:
        return resource == AUTH_RESOURCE


class ReadOnlyIDEAgent(RecordingAuthorizer):
    """May look at sessions, may not change them or talk to the agent."""

    def deny(self, action: str, resource: str) -> bool:
        return resource == AUTH_RESOURCE and action != "read"


@pytest.fixture
def authorizer_class() -> type[Authorizer] | None:
    return None  # the server's default; parametrize to change


@pytest.fixture
def jp_server_config(fakes: dict[str, Any], authorizer_class: type[Authorizer] | None,
                     monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Config:
    monkeypatch.setenv(*ENV_KEY)
    providers = {name: {**values, "api_key": KEYS[name]} for name, values in providers_config(fakes).items()}
    # a key read from the environment (as most users configure it), on an OpenAI-compatible endpoint
    providers["local"] = {"kind": "openai", "api_key_env": ENV_KEY[0], "base_url": fakes["openai"].base_url,
                          "timeout": 5.0, "max_retries": 0}
    server: dict[str, Any] = {"jpserver_extensions": {"jupyterlab_ide_agent": True, "jupyterlab": True}}
    if authorizer_class is not None:
        authorizer_class.asked = []
        server["authorizer_class"] = authorizer_class
    # the built labextension, as `pip install` puts it (pytest-jupyter isolates the data paths)
    labextensions = tmp_path_factory.mktemp("labextensions")
    (labextensions / LABEXTENSION.name).symlink_to(LABEXTENSION.path)
    return Config({"ServerApp": server, "LabApp": {"extra_labextensions_path": [str(labextensions)]},
                   "IDEAgent": {"providers": providers, "main_model": "openai:gpt-5"}})


@pytest.fixture
def base(jp_fetch: Any, jp_http_port: int, jp_base_url: str) -> str:
    """The server's URL (``jp_fetch`` starts the HTTP server that serves the app)."""
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


async def raw(url: str, method: str = "GET", *, headers: dict[str, str] | None = None,
              body: str | bytes | None = None) -> HTTPResponse:
    """A request with exactly these headers (no token added), never raising for a status."""
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = "{}"
    return await AsyncHTTPClient().fetch(HTTPRequest(url, method=method, headers=headers or {}, body=body,
                                                     follow_redirects=False, request_timeout=60),
                                         raise_error=False)


def sessions(jp_serverapp: Any) -> Any:
    return jp_serverapp.web_app.settings["ide_agent_sessions"]


def routes(session_id: str, pid: str = "4242") -> list[tuple[str, str, type]]:
    """(method, path under the base URL, handler) for every method of every route of the extension."""
    out = []
    for pattern, handler in route_handlers():
        path = (pattern.replace(r"(?P<session_id>[^/]+)", session_id).replace(r"(?P<pid>[\w.-]+)", pid)
                .replace(r"(?P<name>[^/]+)", "some-server"))
        assert "(" not in path, f"a route parameter this test does not know: {pattern}"
        for method in HTTP_METHODS:
            if method in vars(handler):
                out.append((method.upper(), path, handler))
    return out


def ws_url(url: str) -> str:
    return "ws" + url[len("http"):]


def test_the_route_list_is_what_this_file_covers() -> None:
    found = {(m, p) for m, p, _ in routes("S")}
    assert ("GET", "ide-agent/sessions/S/stream") in found
    assert {("POST", "ide-agent/sessions/S/ensemble"), ("GET", "ide-agent/sessions/S/workspace"),
            ("POST", "ide-agent/sessions/S/processes/4242/interrupt"), ("DELETE", "ide-agent/sessions/S"),
            ("PATCH", "ide-agent/sessions/S")} <= found
    assert len(found) >= 11


# --- authentication ---------------------------------------------------------------------------------------
async def test_every_route_refuses_a_request_without_the_token(jp_serverapp: Any, base: str) -> None:
    session = sessions(jp_serverapp).create("untouched")
    for headers in ({}, {"Authorization": "token not-the-token"}):
        for method, path, handler in routes(session.id):
            if handler is StreamHandler:
                with pytest.raises(HTTPClientError) as err:
                    await websocket_connect(HTTPRequest(ws_url(base + path), headers=headers))
                assert getattr(err.value, "code", None) == 403, (path, err.value)
                continue
            response = await raw(base + path, method, headers=headers)
            assert response.code == 403, (method, path, headers, response.code)
            assert b"untouched" not in (response.body or b""), "no data in the refusal"
    # nothing happened: the session is still there, unrenamed, and the only one
    assert [(s.id, s.title) for s in sessions(jp_serverapp).list()] == [(session.id, "untouched")]
    assert session.events_after(0) == []
    # a token in the URL is the other accepted form (and the one a browser tab can use for the socket)
    token = jp_serverapp.identity_provider.token
    ok = await raw(base + f"ide-agent/sessions/{session.id}?token={token}")
    assert ok.code == 200


def login_cookie(response: HTTPResponse) -> str:
    """The ``Cookie`` header value for the cookies a response set."""
    jar = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    return "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())


@pytest.fixture
async def cookie_auth(jp_serverapp: Any, base: str) -> dict[str, str]:
    """Log in as a browser does (the token once, then a cookie), and fetch an XSRF cookie from the login page."""
    token = jp_serverapp.identity_provider.token
    login = await raw(base + "api/status", headers={"Authorization": f"token {token}"})
    assert login.code == 200
    cookie = login_cookie(login)
    assert cookie.startswith("username-"), cookie
    page = await raw(base + "login")
    xsrf = SimpleCookie()
    for header in page.headers.get_list("Set-Cookie"):
        xsrf.load(header)
    assert "_xsrf" in xsrf, page.headers
    return {"cookie": cookie, "xsrf": xsrf["_xsrf"].value}


async def test_cookie_authenticated_writes_need_the_xsrf_token(jp_serverapp: Any, base: str,
                                                               cookie_auth: dict[str, str]) -> None:
    session = sessions(jp_serverapp).create("untouched")
    cookie = {"Cookie": cookie_auth["cookie"]}
    # the cookie authenticates reads...
    assert (await raw(base + "ide-agent/sessions", headers=cookie)).code == 200
    # ...but no write without XSRF (a cross-site form or fetch cannot read the _xsrf cookie to send it)
    writes = [(m, p) for m, p, h in routes(session.id) if m != "GET"]
    assert {m for m, _ in writes} == {"POST", "PATCH", "DELETE"}
    for method, path in writes:
        body = json.dumps({"title": "pwned", "question": "q"}) if method != "DELETE" else None
        response = await raw(base + path, method, headers=cookie, body=body)
        assert response.code == 403, (method, path, response.code)
        assert b"XSRF" in response.body or b"xsrf" in response.body, response.body[:300]
    # with a foreign Origin, even a valid XSRF pair is refused
    both = {"Cookie": f"{cookie_auth['cookie']}; _xsrf={cookie_auth['xsrf']}", "X-XSRFToken": cookie_auth["xsrf"]}
    evil = await raw(base + "ide-agent/sessions", "POST", headers={**both, "Origin": "http://evil.example.com"})
    assert evil.code in (403, 404), evil.code
    assert [(s.id, s.title) for s in sessions(jp_serverapp).list()] == [(session.id, "untouched")]
    # the positive control: cookie + XSRF (what JupyterLab sends) is accepted
    renamed = await raw(base + f"ide-agent/sessions/{session.id}", "PATCH", headers=both,
                        body=json.dumps({"title": "renamed by the owner"}))
    assert renamed.code == 200 and session.title == "renamed by the owner"


async def test_cross_origin_websocket_is_refused(jp_serverapp: Any, base: str, cookie_auth: dict[str, str],
                                                 jp_http_port: int) -> None:
    session = sessions(jp_serverapp).create()
    url = ws_url(base + f"ide-agent/sessions/{session.id}/stream")
    cookie = {"Cookie": cookie_auth["cookie"]}
    for origin in ("http://evil.example.com", f"http://127.0.0.1.evil.example.com:{jp_http_port}",
                   f"http://127.0.0.1:{jp_http_port + 1}", f"http://localhost:{jp_http_port}", "null"):
        with pytest.raises(HTTPClientError) as err:
            await websocket_connect(HTTPRequest(url, headers={**cookie, "Origin": origin}))
        assert getattr(err.value, "code", None) == 403, (origin, err.value)
    assert session._subscribers == set()
    # the same browser from the server's own origin is let in
    ws = await websocket_connect(HTTPRequest(url, headers={**cookie, "Origin": f"http://127.0.0.1:{jp_http_port}"}))
    ws.write_message(json.dumps({"type": "nope"}))
    assert strict_loads(await asyncio.wait_for(ws.read_message(), 5))["kind"] == "bad_request"
    ws.close()


# --- authorization ----------------------------------------------------------------------------------------
ACTION_OF = {"GET": "read", "POST": "write", "PATCH": "write", "DELETE": "write"}


@pytest.mark.parametrize("authorizer_class", [DenyIDEAgent])
async def test_an_authorizer_that_denies_is_honoured_on_every_route(
        authorizer_class: type[RecordingAuthorizer], jp_serverapp: Any, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    session = sessions(jp_serverapp).create("untouched")
    for method, path, handler in routes(session.id):
        authorizer_class.asked.clear()
        with pytest.raises(HTTPClientError) as err:
            if handler is StreamHandler:
                await jp_ws_fetch(*path.split("/"))
            else:
                body = json.dumps({"title": "x", "question": "q"}) if method in ("POST", "PATCH") else None
                await jp_fetch(*path.split("/"), method=method, body=body)
        assert err.value.code == 403, (method, path)
        action = "execute" if handler is StreamHandler else ACTION_OF[method]
        ours = [(a, r) for p, a, r in authorizer_class.asked if p.endswith(path)]
        assert ours == [(action, AUTH_RESOURCE)], (method, path, authorizer_class.asked)
    assert [(s.id, s.title) for s in sessions(jp_serverapp).list()] == [(session.id, "untouched")]
    assert session.events_after(0) == [] and not session.running
    assert json.loads((await jp_fetch("api", "status")).body), "the rest of the server still answers"


@pytest.mark.parametrize("authorizer_class", [ReadOnlyIDEAgent])
async def test_a_read_only_authorizer_lets_reads_through_only(
        authorizer_class: type[RecordingAuthorizer], jp_serverapp: Any, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    session = sessions(jp_serverapp).create("untouched")
    for method, path, handler in routes(session.id):
        if method == "GET" and handler is not StreamHandler:
            assert (await jp_fetch(*path.split("/"))).code == 200, path
            continue
        with pytest.raises(HTTPClientError) as err:
            if handler is StreamHandler:
                await jp_ws_fetch(*path.split("/"))
            else:
                body = json.dumps({"title": "x", "question": "q"}) if method != "DELETE" else None
                await jp_fetch(*path.split("/"), method=method, body=body)
        assert err.value.code == 403, (method, path)
    assert [(s.id, s.title) for s in sessions(jp_serverapp).list()] == [(session.id, "untouched")]


# --- path confinement through the model's tools ------------------------------------------------------------
async def read_until_done(ws: WebSocketClientConnection, timeout: float = 30) -> list[Event]:
    events = []
    while True:
        message = await asyncio.wait_for(ws.read_message(), timeout)
        assert message is not None, f"socket closed ({ws.close_code})"
        events.append(strict_loads(message))
        if events[-1]["type"] == "done":
            return events


async def new_session(jp_fetch: Any, jp_ws_fetch: Any) -> tuple[str, WebSocketClientConnection]:
    sid = strict_loads((await jp_fetch("ide-agent", "sessions", method="POST", body="{}")).body)["id"]
    return sid, await jp_ws_fetch("ide-agent", "sessions", sid, "stream")


async def test_tools_run_by_the_server_refuse_paths_outside_the_root(
        jp_fetch: Any, jp_ws_fetch: Any, jp_root_dir: Path, fakes: Any) -> None:
    outside = jp_root_dir.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET-CONTENT\n")
    (outside / "evil.py").write_text("open('pwned', 'w').write('x')\n")
    (outside / "x.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (jp_root_dir / "leak.txt").symlink_to(outside / "secret.txt")
    (jp_root_dir / "leakdir").symlink_to(outside)
    (jp_root_dir / "leak.ipynb").symlink_to(outside / "x.ipynb")
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    escapes = ["../outside/secret.txt", str(outside / "secret.txt"), "leak.txt", "leakdir/secret.txt",
               "sub/../../outside/secret.txt"]
    nb_escapes = ["../outside/x.ipynb", str(outside / "x.ipynb"), "leak.ipynb", "leakdir/x.ipynb",
                  "../outside/new.ipynb"]
    calls = []
    for p in escapes:
        calls += [ScriptedTool("Read", {"path": p}), ScriptedTool("Write", {"path": p, "content": "pwned"}),
                  ScriptedTool("Edit", {"path": p, "old_string": "TOP", "new_string": "pwned"})]
    for p in ("..", str(outside), "leakdir"):
        calls += [ScriptedTool("ListDir", {"path": p}), ScriptedTool("Glob", {"pattern": "**/*", "path": p}),
                  ScriptedTool("Grep", {"pattern": "SECRET", "path": p})]
    for p in nb_escapes:
        calls += [ScriptedTool("JupyterNotebook", {"operation": op, "notebook_path": p, "source": "print(1)"})
                  for op in ("create_notebook", "insert_cell", "execute_ipython", "list_cells")]
    for p in ("../outside/evil.py", str(outside / "evil.py"), "leakdir/evil.py"):
        calls.append(ScriptedTool("ExecuteScript", {"script_path": p}))
    calls.append(ScriptedTool("ExecuteScript", {"command": "pwd", "cwd": "../outside"}))
    fakes["openai"].script(ScriptedTurn(tool_calls=calls), ScriptedTurn(text="I could not."))
    _, ws = await new_session(jp_fetch, jp_ws_fetch)
    ws.write_message(json.dumps({"type": "prompt", "text": "get out"}))
    events = await read_until_done(ws, timeout=60)
    results = [e for e in events if e["type"] == "tool_result"]
    assert len(results) == len(calls)
    for call, result in zip(calls, results, strict=True):
        assert result["is_error"] and "outside the workspace root" in result["output"], (call, result["output"])
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before, "nothing outside was written"
    assert "TOP-SECRET-CONTENT" not in json.dumps(events)
    assert "TOP-SECRET-CONTENT" not in json.dumps(fakes["openai"].requests[-1]["body"])
    assert [s for s in strict_loads((await jp_fetch("api", "sessions")).body)] == [], "no kernel was started"
    # the walkers inside the root do not follow the links out either
    fakes["openai"].script(ScriptedTurn(tool_calls=[ScriptedTool("Grep", {"pattern": "TOP-SECRET"}),
                                                    ScriptedTool("Glob", {"pattern": "**/secret.txt"})]),
                           ScriptedTurn(text="nothing"))
    ws.write_message(json.dumps({"type": "prompt", "text": "search"}))
    events = await read_until_done(ws)
    assert "TOP-SECRET-CONTENT" not in json.dumps(events)
    assert "leakdir/secret.txt" not in json.dumps([e for e in events if e["type"] == "tool_result"])
    ws.close()


# --- keys never leave the server ---------------------------------------------------------------------------
class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a record that cannot format is still searched raw
            line = f"{record.msg!r} {record.args!r}"
        self.lines.append(line)  # handle() holds the handler's lock


@pytest.fixture
def server_log(jp_serverapp: Any) -> Iterator[Capture]:
    """Every log line of the server at DEBUG (the server's own log, tornado's, ours, the SDKs')."""
    capture = Capture()
    capture.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    names = ["", "tornado", "openai", "anthropic", "httpx", "httpcore", "google_genai", "grpc", "jupyterlab_ide_agent"]
    loggers = [logging.getLogger(n) for n in names] + [jp_serverapp.log]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values()
                if isinstance(lg, logging.Logger) and not lg.propagate]
    levels = {lg: lg.level for lg in loggers}
    for lg in set(loggers):
        lg.addHandler(capture)
        lg.setLevel(logging.DEBUG)
    yield capture
    for lg in set(loggers):
        lg.removeHandler(capture)
        lg.setLevel(levels[lg])


def all_keys() -> list[str]:
    return [*KEYS.values(), ENV_KEY[1]]


def assert_no_key(what: str, text: str | bytes) -> None:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    for key in all_keys():
        assert key not in text, f"{key!r} leaked in {what}: ...{text[max(0, text.find(key) - 200):][:400]}..."


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "xai"])
async def test_a_provider_error_that_echoes_the_key_does_not_leak_it(
        kind: str, jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any, fakes: Any, server_log: Capture) -> None:
    """Gateways and some APIs echo the key they refused ("Incorrect API key provided: sk-..."): the error
    event, the REST log and the server's log must not carry it on. (Regression: the Anthropic adapter put the
    message in ProviderError.message unscrubbed and the loop published it as is.)"""
    from tests.conftest import TEST_MODELS

    sid, ws = await new_session(jp_fetch, jp_ws_fetch)
    sessions(jp_serverapp).get(sid).agent.main_model = f"{kind}:{TEST_MODELS[kind]}"
    fakes[kind].script(ScriptedTurn(status=401, error_message=f"Incorrect API key provided: {KEYS[kind]}"))
    ws.write_message(json.dumps({"type": "prompt", "text": "hi"}))
    events = await read_until_done(ws)
    [error] = [e for e in events if e["type"] == "error"]
    assert error["kind"] == "auth"
    assert_no_key("the error event", json.dumps(events))
    assert_no_key("GET events", (await jp_fetch("ide-agent", "sessions", sid, "events")).body)
    assert_no_key("the server log", "\n".join(server_log.lines))
    ws.close()


async def test_an_ensemble_member_error_that_echoes_the_key_does_not_leak_it(
        jp_fetch: Any, jp_ws_fetch: Any, fakes: Any, server_log: Capture) -> None:
    """(Regression: member failures reached the ensemble_member events and the verdict unredacted.)"""
    sid, ws = await new_session(jp_fetch, jp_ws_fetch)
    fakes["anthropic"].script(ScriptedTurn(status=401, error_message=f"invalid x-api-key: {KEYS['anthropic']}"))
    fakes["xai"].script(ScriptedTurn(status=401, error_message=f"bad key {KEYS['xai']}"))
    await jp_fetch("ide-agent", "sessions", sid, "ensemble", method="POST",
                   body=json.dumps({"question": "q?", "members": ["anthropic", "xai"]}))
    events = []
    while not events or events[-1]["type"] != "ensemble_verdict":
        events.append(strict_loads(await asyncio.wait_for(ws.read_message(), 20)))
    assert events[-1]["status"] == "failed"
    assert_no_key("the ensemble events", json.dumps(events))
    assert_no_key("the server log", "\n".join(server_log.lines))
    ws.close()


async def test_the_python_api_never_yields_a_key_either(fakes: Any, make_agent: Any) -> None:
    """The same echo without the server (the Python API, and so the CLI): the turn's error and the ensemble."""
    key = fakes["anthropic"].settings().api_key
    fakes["anthropic"].script(ScriptedTurn(status=401, error_message=f"invalid x-api-key: {key}"),
                              ScriptedTurn(status=401, error_message=f"invalid x-api-key: {key}"))
    agent = make_agent("anthropic")
    events = [event async for event in agent.run("hi")]
    assert [e["kind"] for e in events if e["type"] == "error"] == ["auth"]
    fakes["openai"].script(ScriptedTurn(tool_calls=[ScriptedTool("ConsultEnsemble", {
        "question": "q?", "members": ["anthropic"]})]), ScriptedTurn(text="ok"))
    agent.main_model = "openai:gpt-5"
    events += [event async for event in agent.run("ask the panel")]
    assert [e["state"] for e in events if e["type"] == "ensemble_member"][-1] == "failed"
    assert key not in json.dumps(events)


def leak_collector() -> tuple[list[str], Any]:
    """(leaks, check): ``check(what, text)`` records a leak instead of stopping at the first one."""
    leaks: list[str] = []

    def check(what: str, text: str | bytes) -> None:
        try:
            assert_no_key(what, text)
        except AssertionError as exc:
            leaks.append(str(exc).splitlines()[0][:400])

    return leaks, check


async def test_keys_never_reach_a_response_the_page_or_a_log_line(
        jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any, fakes: Any, server_log: Capture,
        caplog: pytest.LogCaptureFixture) -> None:
    leaks, check = leak_collector()
    status_body = (await jp_fetch("ide-agent", "status")).body
    status = strict_loads(status_body)
    assert {p["name"]: p["configured"] for p in status["providers"]} == {
        "openai": True, "anthropic": True, "gemini": True, "xai": True, "local": True}
    # a turn on each provider, and one on the endpoint whose key comes from the environment
    sid, ws = await new_session(jp_fetch, jp_ws_fetch)
    agent = sessions(jp_serverapp).get(sid).agent
    from tests.conftest import TEST_MODELS

    for model in [f"{k}:{m}" for k, m in TEST_MODELS.items()] + ["local:gpt-5"]:
        agent.main_model = model
        ws.write_message(json.dumps({"type": "prompt", "text": f"hello {model}"}))
        events = await read_until_done(ws)
        assert events[-1]["reason"] == "completed", events
    for name, fake in fakes.items():  # no provider got another one's key (nor a body with one)
        for n, request in enumerate(fake.requests):
            check(f"request {n} sent to {name}", json.dumps(request["body"]))
            headers = json.dumps(request["headers"])
            leaks.extend(f"{other}'s key was sent to {name}" for other, key in KEYS.items()
                         if other != name and key in headers)
    bodies = {
        "status": status_body,
        "sessions": (await jp_fetch("ide-agent", "sessions")).body,
        "session": (await jp_fetch("ide-agent", "sessions", sid)).body,
        "events": (await jp_fetch("ide-agent", "sessions", sid, "events")).body,
        "workspace": (await jp_fetch("ide-agent", "sessions", sid, "workspace")).body,
    }
    for name, body in bodies.items():
        check(f"GET {name}", body)
    # the page and the labextension bundle it loads
    page = (await jp_fetch("lab")).body.decode()
    assert f'"name": "{LABEXTENSION.name}"' in page, "the page loads the extension"
    check("the /lab page", page)
    files = sorted(p for p in (LABEXTENSION.path / "static").iterdir() if p.suffix == ".js")
    assert files, "the labextension is built"
    for file in files:
        served = await jp_fetch("lab", "extensions", LABEXTENSION.name, "static", file.name)
        assert served.body == file.read_bytes()
        check(f"the bundle {file.name}", served.body)
    ws.close()
    # every line the server logged meanwhile (at DEBUG), and at start-up. Start-up is checked for the key
    # from the environment only: traitlets logs the whole config at DEBUG ("Config changed: {...}"), so a key
    # written as c.IDEAgent.providers[...]["api_key"] is in a --debug log (see the report); api_key_env is not.
    assert len(server_log.lines) > 10, "the log capture works"
    for line in server_log.lines:
        check("a server log line", line)
    startup = "\n".join(r.getMessage() for r in caplog.get_records("setup"))
    assert "Config changed" in startup, "the start-up log was captured"
    assert ENV_KEY[1] not in startup
    assert not leaks, "\n".join(leaks)


async def test_keys_printed_by_tools_never_leave_the_server(
        jp_fetch: Any, jp_ws_fetch: Any, jp_root_dir: Path, fakes: Any, server_log: Capture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """(Regression: the workspace state was not redacted: GET .../workspace returned the processes' output
    tails as printed, and the summary on the next user message sent each process's last line to the model.)"""
    from jupyterlab_ide_agent.tools import scripts

    monkeypatch.setattr(scripts, "STARTUP_WAIT", 10.0)  # a command that ends at once is reported with its output
    leaks, check = leak_collector()
    # tools print keys the model never saw: a script and a kernel inherit the server's environment,
    # and a file the user wrote holds keys
    (jp_root_dir / "settings.env").write_text("".join(f"{k.upper()}_API_KEY={v}\n" for k, v in KEYS.items()))
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[
            ScriptedTool("ExecuteScript", {"command": "env | grep KEY; cat settings.env"}),
            ScriptedTool("JupyterNotebook", {"operation": "insert_execute_code_cell", "notebook_path": "k.ipynb",
                                             "source": "import os\nprint(dict(os.environ))\n"
                                                       "print(open('settings.env').read())"}),
            ScriptedTool("Read", {"path": "settings.env"}),
            ScriptedTool("Grep", {"pattern": "API_KEY", "output_mode": "content"}),
        ]),
        ScriptedTurn(text="done"),
        ScriptedTurn(text="nothing is running"),
    )
    sid, ws = await new_session(jp_fetch, jp_ws_fetch)
    ws.write_message(json.dumps({"type": "prompt", "text": "show me the environment"}))
    events = await read_until_done(ws, timeout=60)
    results = [e for e in events if e["type"] == "tool_result"]
    assert [(r["name"], r["is_error"]) for r in results] == [
        ("ExecuteScript", False), ("JupyterNotebook", False), ("Read", False), ("Grep", False)]
    for result in results:
        assert "[redacted API key]" in result["output"], result
    assert f"{ENV_KEY[0]}=[redacted API key]" in results[0]["output"], "the script printed the environment"
    assert f"'{ENV_KEY[0]}': '[redacted API key]'" in results[1]["output"], "the kernel printed the environment"
    # the next turn carries the workspace state (processes with their last output line) to the model
    ws.write_message(json.dumps({"type": "prompt", "text": "what is running?"}))
    events += await read_until_done(ws)
    check("the events", json.dumps(events))
    for n, request in enumerate(fakes["openai"].requests):
        check(f"request {n} sent to the model", json.dumps(request["body"]))
    for route in ("events", "workspace"):
        check(f"GET {route}", (await jp_fetch("ide-agent", "sessions", sid, route)).body)
    for line in server_log.lines:
        check("a server log line", line)
    ws.close()
    assert not leaks, "\n".join(leaks)


# --- oversized messages ------------------------------------------------------------------------------------
async def test_a_50_mb_prompt_over_the_socket_is_refused_and_the_server_keeps_serving(
        jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any, fakes: Any) -> None:
    sid, ws = await new_session(jp_fetch, jp_ws_fetch)
    ws.write_message(json.dumps({"type": "prompt", "text": "x" * (50 * MB)}))
    assert await asyncio.wait_for(ws.read_message(), 30) is None, "the server closes the socket"
    assert ws.close_code == 1009, (ws.close_code, ws.close_reason)  # 1009 = message too big
    session = sessions(jp_serverapp).get(sid)
    assert session.events_after(0) == [] and not session.running, "nothing of it reached the session"
    fakes["openai"].script(ScriptedTurn(text="still here"))
    ws = await jp_ws_fetch("ide-agent", "sessions", sid, "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "a normal prompt"}))
    events = await read_until_done(ws)
    assert events[-1]["reason"] == "completed" and events[0]["seq"] == 1
    ws.close()


async def test_a_50_mb_request_body_is_refused_on_every_route(jp_fetch: Any, jp_serverapp: Any) -> None:
    session = sessions(jp_serverapp).create("untouched")
    limit = jp_serverapp.web_app.settings["ide_agent_max_message_bytes"]
    for method, path, _ in routes(session.id):
        if method not in ("POST", "PATCH", "PUT"):
            continue
        size = 50 * MB if path == "ide-agent/sessions" else limit + 1
        body = json.dumps({"title": "t" * size})
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch(*path.split("/"), method=method, body=body, request_timeout=60)
        assert err.value.code == 413, (method, path, err.value.code)
        assert f"larger than {limit} bytes".encode() in err.value.response.body
    assert [(s.id, s.title) for s in sessions(jp_serverapp).list()] == [(session.id, "untouched")]
    assert (await jp_fetch("ide-agent", "sessions", method="POST", body="{}")).code == 201


# --- the socket's message parser ---------------------------------------------------------------------------

json_leaf = (st.none() | st.booleans() | st.integers(-10**20, 10**20)
             | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=10)
message_type = st.sampled_from(["prompt", "cancel", "ensemble", "approval", "", "PROMPT"]) | json_value
typed_message = st.fixed_dictionaries({"type": message_type}, optional={
    "text": st.text(max_size=40) | json_value,
    "context": st.dictionaries(st.text(max_size=8), json_value, max_size=3) | json_value,
    "approval_mode": st.sampled_from(["never", "code"]) | json_value,
    "question": st.text(max_size=40) | json_value,
    "members": st.lists(st.text(max_size=10), max_size=3) | json_value,
    "call_id": st.text(max_size=10) | json_value,
    "decision": st.sampled_from(["run", "skip"]) | json_value,
})
non_blank = st.text(min_size=1, max_size=40).filter(str.strip)
# messages the parser accepts, with junk where it does not look: they start turns and consultations
valid_message = st.one_of(
    st.fixed_dictionaries({"type": st.just("prompt"), "text": non_blank}, optional={
        "context": st.dictionaries(st.text(max_size=8), json_value, max_size=3),
        "approval_mode": st.sampled_from(["never", "code"]), "junk": json_value}),
    st.fixed_dictionaries({"type": st.just("ensemble"), "question": non_blank}, optional={
        "context": st.text(max_size=40),
        "members": st.lists(st.sampled_from(["openai", "anthropic", "gemini", "xai", "nobody"]), max_size=3)}),
    st.fixed_dictionaries({"type": st.just("approval"), "call_id": st.text(max_size=10),
                           "decision": st.sampled_from(["run", "skip"])}),
    st.fixed_dictionaries({"type": st.just("cancel")}, optional={"junk": json_value}),
)
socket_message = st.one_of(
    valid_message.map(json.dumps),
    typed_message.map(json.dumps),
    json_value.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
    typed_message.map(lambda m: json.dumps(m).encode("utf-16")),  # JSON in another UTF
)


async def test_fuzzed_socket_messages_never_crash_the_server_or_the_session(
        jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any, fakes: Any, server_log: Capture) -> None:
    sid, ws = await new_session(jp_fetch, jp_ws_fetch)
    loop = asyncio.get_running_loop()
    state = {"n": 0}

    async def exchange(message: str | bytes) -> None:
        """Send one message, then a marker the server answers at once; everything in between must be
        strict JSON, and the socket must stay open."""
        state["n"] += 1
        marker = f"marker-{state['n']}"
        ws.write_message(message, binary=isinstance(message, bytes))
        ws.write_message(json.dumps({"type": marker}))
        while True:
            reply = await asyncio.wait_for(ws.read_message(), 20)
            assert reply is not None, f"the server closed the socket ({ws.close_code}) after {message!r:.300}"
            event = strict_loads(reply)
            assert isinstance(event, dict) and "type" in event
            if event["type"] == "error" and marker in str(event.get("message")):
                assert event["kind"] == "bad_request" and event["seq"] is None
                return

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(socket_message)
    def fuzz(message: str | bytes) -> None:
        asyncio.run_coroutine_threadsafe(exchange(message), loop).result(60)

    await asyncio.to_thread(fuzz)
    # the session survived: stop what the fuzz started, then a normal turn works on the same socket
    session = sessions(jp_serverapp).get(sid)
    ws.write_message(json.dumps({"type": "cancel"}))
    for _ in range(400):
        if not session.running and not session._consultations:
            break
        await asyncio.sleep(0.05)
    assert not session.running
    fakes["openai"].script(ScriptedTurn(text="alive after the fuzz"))
    ws.write_message(json.dumps({"type": "prompt", "text": "are you alive?"}))
    while True:
        event = strict_loads(await asyncio.wait_for(ws.read_message(), 30))
        if event["type"] == "user_message" and event["text"] == "are you alive?":
            break
    rest = await read_until_done(ws)
    assert rest[-1]["reason"] == "completed"
    assert "".join(e["text"] for e in rest if e["type"] == "text_delta") == "alive after the fuzz"
    # the log and every other route still make sense
    logged = strict_loads((await jp_fetch("ide-agent", "sessions", sid, "events")).body)["events"]
    kinds = {e["type"] for e in logged}
    assert {"queued", "ensemble_member", "ensemble_verdict", "done"} <= kinds, "the fuzz reached turns and the ensemble"
    assert [e["seq"] for e in logged] == list(range(1, len(logged) + 1))
    assert strict_loads((await jp_fetch("ide-agent", "status")).body)["version"]
    crashes = [line for line in server_log.lines if "Uncaught exception" in line or "Traceback" in line]
    assert crashes == [], crashes[:3]
    ws.close()


# --- what the fuzz does not generate: inputs json.loads takes badly (regressions) --------------------------------
UNPARSABLE = {
    "an integer of 5000 digits": '{"type": "prompt", "text": "hi", "n": ' + "1" * 5000 + "}",
    "100000 nested arrays": "[" * 100_000,
}


@pytest.mark.parametrize("message", list(UNPARSABLE.values()), ids=list(UNPARSABLE))
async def test_the_socket_answers_json_it_cannot_parse_with_bad_request(
        message: str, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    """(Regression: json.loads raises a plain ValueError past 4300 digits and RecursionError on deep nesting;
    on_message caught neither, so tornado logged 'Uncaught exception' and dropped the connection.)"""
    _, ws = await new_session(jp_fetch, jp_ws_fetch)
    ws.write_message(message)
    reply = await asyncio.wait_for(ws.read_message(), 10)
    assert reply is not None, f"the server dropped the connection ({ws.close_code})"
    assert strict_loads(reply)["kind"] == "bad_request"
    ws.close()


async def test_nan_and_infinity_are_refused_not_logged(jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any) -> None:
    """(Regression: NaN in a prompt's context landed in the user_message event as a bare NaN, which the
    browser's JSON.parse rejects, on the socket and in GET events, for as long as the session's log lasts.)"""
    sid, ws = await new_session(jp_fetch, jp_ws_fetch)
    ws.write_message('{"type": "prompt", "text": "hi", "context": {"scale": NaN, "max": Infinity}}')
    reply = strict_loads(await asyncio.wait_for(ws.read_message(), 10))  # a browser could not parse the event
    assert reply["type"] == "error" and reply["kind"] == "bad_request"
    strict_loads((await jp_fetch("ide-agent", "sessions", sid, "events")).body)
    ws.close()


async def test_a_lone_surrogate_does_not_poison_the_session(jp_fetch: Any, jp_ws_fetch: Any, fakes: Any) -> None:
    """(Regression: "\\ud800" is valid JSON text but not UTF-8; it entered the history and every later request
    of the session failed with UnicodeEncodeError, kind 'internal'.)"""
    _, ws = await new_session(jp_fetch, jp_ws_fetch)
    ws.write_message(json.dumps({"type": "prompt", "text": "broken \ud800 text"}))
    first = strict_loads(await asyncio.wait_for(ws.read_message(), 10))
    if first["type"] != "error":  # accepted: then that turn may fail, but the session must not
        await read_until_done(ws)
    fakes["openai"].script(ScriptedTurn(text="fine"))
    ws.write_message(json.dumps({"type": "prompt", "text": "a normal prompt"}))
    events = await read_until_done(ws)
    assert events[-1]["reason"] == "completed", [e for e in events if e["type"] == "error"]
    ws.close()


REST_UNPARSABLE = {**UNPARSABLE, "a lone surrogate": json.dumps({"title": "bad \ud800 title"})}


@pytest.mark.parametrize("body", list(REST_UNPARSABLE.values()), ids=list(REST_UNPARSABLE))
async def test_rest_bodies_it_cannot_take_are_400_and_change_nothing(body: str, jp_fetch: Any,
                                                                    jp_serverapp: Any) -> None:
    """(Regression: a 5000-digit integer or deep nesting was a 500 'Unhandled error'; a lone surrogate in a
    title was a 500 from the store's UnicodeEncodeError after the in-memory session was created or renamed.)"""
    session = sessions(jp_serverapp).create("untouched")
    for method, path in (("POST", ("ide-agent", "sessions")), ("PATCH", ("ide-agent", "sessions", session.id))):
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch(*path, method=method, body=body)
        assert err.value.code == 400, (method, err.value.code, err.value.response.body)
    assert [(s.id, s.title) for s in sessions(jp_serverapp).list()] == [(session.id, "untouched")]


async def test_a_key_someone_else_logs_is_redacted_in_the_server_log(
        jp_serverapp: Any, server_log: Capture) -> None:
    """jupyter_server's gateway kernel manager logs the server's environment at INFO when it starts a
    remote kernel; whatever logs a key through the server's logger, the line reaches no handler with it."""
    jp_serverapp.log.info("Starting kernel with env %s", {ENV_KEY[0]: ENV_KEY[1], "PATH": "/usr/bin"})
    jp_serverapp.log.warning(f"config: {KEYS['anthropic']}")
    lines = [line for line in server_log.lines if "Starting kernel with env" in line or "config: " in line]
    assert len(set(lines)) == 2, server_log.lines[-5:]  # (the capture sits on several loggers)
    assert all(ENV_KEY[1] not in line and KEYS["anthropic"] not in line for line in lines), lines
    assert all("[redacted API key]" in line for line in lines), lines
