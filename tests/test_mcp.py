"""MCP servers end to end: a stdio server and a streamable-HTTP server written with the SDK's own server
class (tests/mcp_servers/), called by the agent through the wire-level fake providers; crashes, timeouts,
tool-list changes, bad entries, the REST listing and switches, approval, and what is never shown."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from jupyterlab_ide_agent.mcp import McpManager
from jupyterlab_ide_agent.mcp.config import merge, parse_server
from jupyterlab_ide_agent.mcp.tool import qualified_name, repair_schema, result_to_text
from tests.conftest import providers_config
from tests.fakes.base import ScriptedTool, ScriptedTurn
from tests.mcp_servers.stdio_server import PNG
from tests.servers import free_port, wait_until_answering

SERVERS = Path(__file__).parent / "mcp_servers"
LAB_SECRET = "lab-env-secret-" + uuid.uuid4().hex[:8]
HTTP_TOKEN = "http-token-" + uuid.uuid4().hex[:8]
KINDS = ["openai", "anthropic", "gemini", "xai"]


def lab(**extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(SERVERS / "stdio_server.py")], "env": {"LAB_TOKEN": LAB_SECRET},
            **extra}


@pytest.fixture(scope="module")
def web_url() -> Iterator[str]:
    """The streamable-HTTP server, a subprocess on a free port, behind a bearer token."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVERS / "http_server.py"), str(port), HTTP_TOKEN])
    try:
        wait_until_answering(proc, lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close(),
                             "the HTTP MCP server", lambda: "(its output is in the test's captured output)")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def web(url: str, token: str = HTTP_TOKEN) -> dict[str, Any]:
    return {"url": url, "headers": {"Authorization": f"Bearer {token}"}}


def mcp_agent(make_agent: Any, kind: str, servers: dict[str, Any], **config: Any) -> Any:
    return make_agent(kind, mcp_servers=servers, mcp_config_file="", mcp_state_file="", **config)


async def run(agent: Any, prompt: str = "go", approve: str | None = None) -> list[dict[str, Any]]:
    events = []
    async for event in agent.run(prompt):
        events.append(event)
        if event["type"] == "approval_request" and approve:
            assert agent.approve(event["call_id"], approve)
    return events


def results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "tool_result"]


def tool_names(request: dict[str, Any]) -> set[str]:
    text = json.dumps(request["body"], default=str)
    return {word.strip('"') for word in text.replace(",", " ").split() if word.strip('"').startswith("mcp__")}


# --- the agent calls both servers ------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
async def test_agent_calls_stdio_and_http_tools(kind: str, fakes: Any, make_agent: Any, web_url: str) -> None:
    fakes[kind].script(
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__add", {"a": 2, "b": 40}),
                                 ScriptedTool("mcp__web__capital", {"country": "Japan"}),
                                 ScriptedTool("mcp__lab__env_token", {})]),
        ScriptedTurn(text="2 + 40 = 42 and the capital is Tokyo."),
    )
    agent = mcp_agent(make_agent, kind, {"lab": lab(), "web": web(web_url)})
    events = await run(agent)
    assert events[-1]["reason"] == "completed", events
    add, capital, token = results(events)
    assert not add["is_error"] and add["output"] == "42"
    assert add["data"] == {"mcp_server": "lab", "mcp_tool": "add"}
    assert not capital["is_error"] and "Tokyo" in capital["output"]
    # the env value reached the server (it printed it) but never the model or the events
    assert not token["is_error"] and token["output"] == "token is [redacted]"
    first, second = fakes[kind].requests[:2]
    assert {"mcp__lab__add", "mcp__lab__picture", "mcp__web__capital"} <= tool_names(first)
    assert "42" in str(second["body"]) and "Tokyo" in str(second["body"])
    everything = json.dumps(events) + json.dumps([r["body"] for r in fakes[kind].requests], default=str)
    assert LAB_SECRET not in everything and HTTP_TOKEN not in everything


async def test_schemas_reach_the_provider_as_the_server_gave_them(fakes: Any, make_agent: Any) -> None:
    agent = mcp_agent(make_agent, "anthropic", {"lab": lab()})
    await run(agent)
    [request] = fakes["anthropic"].requests
    tools = {t["name"]: t for t in request["body"]["tools"]}
    schema = tools["mcp__lab__add"]["input_schema"]
    assert schema["type"] == "object" and schema["required"] == ["a", "b"]
    assert schema["properties"]["a"]["type"] == "integer"
    assert "Add two integers." in tools["mcp__lab__add"]["description"]


async def test_image_and_structured_content_reach_the_model(fakes: Any, make_agent: Any) -> None:
    fakes["anthropic"].script(ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__picture", {})]),
                              ScriptedTurn(text="A plot."))
    agent = mcp_agent(make_agent, "anthropic", {"lab": lab()})
    events = await run(agent)
    [result] = results(events)
    assert not result["is_error"] and result["images"] == 1
    assert "Here is the plot." in result["output"]
    assert '{"points": [[0, 1], [1, 3]], "unit": "m"}' in result["output"]
    body = json.dumps(fakes["anthropic"].requests[1]["body"])
    assert PNG in body and '"media_type": "image/png"' in body


# --- failures ----------------------------------------------------------------------------------------
async def test_a_crashing_server_gives_a_clear_error_and_restarts_on_the_next_call(fakes: Any,
                                                                                   make_agent: Any) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__pid", {})]),
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__crash", {})]),
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__pid", {})]),
        ScriptedTurn(text="It came back."),
    )
    agent = mcp_agent(make_agent, "openai", {"lab": lab()})
    events = await run(agent)
    assert events[-1]["reason"] == "completed"
    before, crash, after = results(events)
    assert crash["is_error"]
    assert "closed the connection during 'crash'" in crash["output"]
    assert "fatal: out of coffee" in crash["output"], "the stderr tail explains the crash"
    assert "restarted on the next call" in crash["output"]
    assert not after["is_error"] and after["output"] != before["output"], "a new server process answered"
    assert "out of coffee" in str(fakes["openai"].requests[2]["body"]), "the model saw the error"
    # a standalone agent's cleanup stops the servers it started
    await agent.cleanup()
    pid = int(after["output"])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_server_that_exits_while_idle_is_restarted_at_the_next_use(fakes: Any, make_agent: Any) -> None:
    fakes["openai"].script(ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__pid", {})]), ScriptedTurn(text="a"),
                           ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__pid", {})]), ScriptedTurn(text="b"))
    agent = mcp_agent(make_agent, "openai", {"lab": lab()})
    [first] = results(await run(agent))
    os.kill(int(first["output"]), signal.SIGKILL)
    for _ in range(200):  # the manager notices the exit (stderr closes) and says so in the listing
        [row] = agent.mcp.listing()["servers"]
        if row["state"] == "error":
            break
        await asyncio.sleep(0.05)
    assert row["state"] == "error" and "exited" in row["error"]
    [second] = results(await run(agent))
    assert not second["is_error"] and second["output"] != first["output"]
    assert agent.mcp.listing()["servers"][0]["starts"] == 2


async def test_a_call_past_its_timeout_is_cancelled_without_blocking_the_loop(fakes: Any, make_agent: Any,
                                                                               web_url: str) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__web__slow", {"seconds": 60})]),
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__web__capital", {"country": "France"})]),
        ScriptedTurn(text="done"),
    )
    agent = mcp_agent(make_agent, "openai", {"web": {**web(web_url), "timeout": 1.5}})
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    events = await run(agent)
    beat.cancel()
    slow, capital = results(events)
    assert slow["is_error"]
    assert "did not answer 'slow' within 1.5 s" in slow["output"] and "cancelled" in slow["output"]
    assert ticks > 0, "the event loop kept running other tasks during the call"
    assert not capital["is_error"] and "Paris" in capital["output"], "the server works again on the next call"
    assert events[-1]["reason"] == "completed"


async def test_a_tool_list_change_reaches_the_next_model_step(fakes: Any, make_agent: Any) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__grow", {})]),
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__fresh", {})]),
        ScriptedTurn(text="ok"),
    )
    agent = mcp_agent(make_agent, "openai", {"lab": lab()})
    events = await run(agent)
    grow, fresh = results(events)
    assert grow["output"] == "grown"
    assert "mcp__lab__fresh" not in tool_names(fakes["openai"].requests[0])
    assert "mcp__lab__fresh" in tool_names(fakes["openai"].requests[1])
    assert not fresh["is_error"] and fresh["output"] == "fresh result"


async def test_bad_entries_are_reported_and_the_others_still_work(fakes: Any, make_agent: Any,
                                                                  web_url: str) -> None:
    fakes["openai"].script(ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__add", {"a": 1, "b": 1})]),
                           ScriptedTurn(text="2"))
    servers = {"lab": lab(), "missing": {"command": "/nonexistent/mcp-server"}, "nocommand": {"args": ["x"]},
               "denied": web(web_url, token="wrong"), "legacy": {"url": web_url, "type": "sse"}}
    agent = mcp_agent(make_agent, "openai", servers)
    events = await run(agent)
    assert events[-1]["reason"] == "completed"
    assert results(events)[0]["output"] == "2"
    rows = {row["name"]: row for row in agent.mcp.listing()["servers"]}
    assert rows["lab"]["state"] == "running"
    assert rows["missing"]["state"] == "error" and "command not found" in rows["missing"]["error"]
    assert rows["nocommand"]["state"] == "invalid" and "'command'" in rows["nocommand"]["error"]
    assert rows["denied"]["state"] == "error" and "could not start" in rows["denied"]["error"]
    assert rows["legacy"]["state"] == "invalid" and "SSE" in rows["legacy"]["error"]
    assert "wrong" not in json.dumps(rows), "header values never appear"


async def test_approval_mode_asks_before_mcp_tools_unless_read_only(fakes: Any, make_agent: Any) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__shout", {"text": "hi"}),
                                 ScriptedTool("mcp__lab__add", {"a": 1, "b": 2})]),
        ScriptedTurn(text="done"),
    )
    agent = mcp_agent(make_agent, "openai", {"lab": lab()}, approval_mode="code")
    events = await run(agent, approve="run")
    asked = [e["name"] for e in events if e["type"] == "approval_request"]
    assert asked == ["mcp__lab__shout"], "read-only tools (readOnlyHint) run without asking"
    shout, add = results(events)
    assert shout["output"] == "HI" and add["output"] == "3"


# --- inside Jupyter: one manager, REST listing and switches ------------------------------------------
@pytest.fixture
def user_mcp_file(tmp_path: Path) -> Path:
    path = tmp_path / "ide_agent_mcp.json"
    path.write_text(json.dumps({"mcpServers": {"lab": {"command": "/not/used"}, "filelab": lab()}}))
    return path


@pytest.fixture
def jp_server_config(fakes: Any, web_url: str, user_mcp_file: Path, tmp_path: Path) -> Config:
    return Config({
        "ServerApp": {"jpserver_extensions": {"jupyterlab_ide_agent": True}},
        "IDEAgentExtension": {"session_store_path": ""},
        "IDEAgent": {
            "providers": providers_config(fakes), "main_model": "openai:gpt-5",
            "mcp_servers": {"lab": lab(), "web": web(web_url), "broken": {"command": 42}},
            "mcp_config_file": str(user_mcp_file), "mcp_state_file": str(tmp_path / "mcp_state.json"),
        },
    })


async def fetch_json(jp_fetch: Any, *parts: str, **kw: Any) -> Any:
    return json.loads((await jp_fetch("ide-agent", *parts, **kw)).body)


async def test_rest_listing_connect_and_switches(jp_fetch: Any, jp_serverapp: Any, fakes: Any,
                                                 tmp_path: Path, caplog: Any) -> None:
    listing = await fetch_json(jp_fetch, "mcp")
    rows = {row["name"]: row for row in listing["servers"]}
    assert set(rows) == {"lab", "web", "broken", "filelab"}
    assert all(row["state"] in ("stopped", "invalid") for row in rows.values()), "nothing starts before it is needed"
    assert rows["lab"]["source"] == "config" and rows["filelab"]["source"] == "file"
    assert rows["lab"]["target"].endswith("stdio_server.py"), "the config entry wins the name clash"
    assert rows["web"]["transport"] == "http" and rows["web"]["target"].startswith("http://127.0.0.1:")
    assert rows["broken"]["state"] == "invalid" and "'command'" in rows["broken"]["error"]
    text = json.dumps(listing)
    assert LAB_SECRET not in text and HTTP_TOKEN not in text

    row = await fetch_json(jp_fetch, "mcp", "web", "connect", method="POST", body="")
    assert row["state"] == "running" and {t["name"] for t in row["tools"]} == {"capital", "slow"}
    assert {t["name"]: t["read_only"] for t in row["tools"]} == {"capital": True, "slow": False}

    # a session's model step sees every enabled server's tools, then the switched-off one leaves
    sessions = jp_serverapp.web_app.settings["ide_agent_sessions"]
    agent = sessions.create("mcp").agent
    assert agent.mcp is jp_serverapp.web_app.settings["ide_agent_mcp"], "one manager per server"
    await run(agent)
    assert {"mcp__lab__add", "mcp__web__capital", "mcp__filelab__add"} <= tool_names(fakes["openai"].requests[0])
    row = await fetch_json(jp_fetch, "mcp", "lab", method="PATCH", body=json.dumps({"enabled": False}))
    assert row["enabled"] is False and row["state"] == "disabled" and row["tools"] == []
    await run(agent)
    names = tool_names(fakes["openai"].requests[1])
    assert "mcp__lab__add" not in names and "mcp__filelab__add" in names
    assert json.loads((tmp_path / "mcp_state.json").read_text()) == {"enabled": {"lab": False}}

    # the switch survives a restart: a new manager on the same files reads it
    again = McpManager({"lab": lab()}, config_file="", state_file=tmp_path / "mcp_state.json")
    assert again.listing()["servers"][0]["state"] == "disabled"

    for method, parts, body, code in [
        ("PATCH", ("mcp", "nope"), {"enabled": True}, 404),
        ("PATCH", ("mcp", "lab"), {"enabled": "yes"}, 400),
        ("PATCH", ("mcp", "broken"), {"enabled": True}, 400),
        ("POST", ("mcp", "lab", "connect"), {}, 400),
    ]:
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("ide-agent", *parts, method=method, body=json.dumps(body))
        assert err.value.code == code, (parts, body)
    row = await fetch_json(jp_fetch, "mcp", "lab", method="PATCH", body=json.dumps({"enabled": True}))
    assert row["enabled"] is True and row["state"] == "stopped", "on again: it starts at the next model step"


# --- units: names, schemas, results, config ----------------------------------------------------------
def test_names_are_provider_safe_and_unique() -> None:
    assert qualified_name("files", "read_file") == "mcp__files__read_file"
    assert qualified_name("my.server", "a/b c") == "mcp__my_server__a_b_c"
    long_a, long_b = qualified_name("s", "x" * 80 + "a"), qualified_name("s", "x" * 80 + "b")
    assert len(long_a) == 64 and len(long_b) == 64 and long_a != long_b
    assert all(c.isalnum() or c in "_-" for c in long_a)


def test_schemas_are_repaired_only_where_providers_would_refuse_them() -> None:
    assert repair_schema(None) == {"type": "object", "properties": {}}
    assert repair_schema({"properties": {"q": {"type": "string"}}}) == {
        "type": "object", "properties": {"q": {"type": "string"}}}
    kept = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"],
            "$defs": {"x": {"type": "string"}}}
    assert repair_schema({**kept, "$schema": "http://json-schema.org/draft-07/schema#"}) == kept
    assert repair_schema({"type": "object", "properties": {"a": {"type": 5}}})["additionalProperties"] is True
    remote = {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}
    assert repair_schema(remote)["properties"] == {}, "never fetched while validating arguments"


def test_results_become_text_images_and_summaries() -> None:
    import mcp.types as mt

    result = mt.CallToolResult(content=[
        mt.TextContent(type="text", text="found"),
        mt.ResourceLink(type="resource_link", name="report", uri="file:///r.csv", mime_type="text/csv"),
        mt.EmbeddedResource(type="resource", resource=mt.TextResourceContents(uri="mem://a", text="alpha")),
        mt.ImageContent(type="image", data="AAAA", mime_type="image/svg+xml"),
    ], is_error=False)
    text, images = result_to_text(result)
    assert "found" in text and "[resource link report <file:///r.csv>, text/csv]" in text
    assert "[resource <mem://a> (unknown type)]\nalpha" in text
    assert "image/svg+xml" in text and images == []


def test_config_entries_are_checked_and_merged(caplog: Any) -> None:
    assert parse_server("a", {"command": "x", "timeout": -1}, "config").problem
    assert "not both" in (parse_server("a", {"command": "x", "url": "http://h/mcp"}, "config").problem or "")
    assert parse_server("a", {"url": "ftp://h"}, "config").problem
    assert parse_server("a", {"command": "x", "disabled": True}, "file").enabled is False
    http = parse_server("w", {"url": "https://u:pw-secret@h.example:8443/mcp?key=abc123", "headers": {"X": "v"}},
                        "file")
    assert http.target == "https://h.example:8443/mcp", "no user info or query in what is shown"
    with caplog.at_level(logging.INFO):
        merged = merge({"a": {"command": "mine"}}, {"a": {"command": "theirs"}, "b": {"command": "b"}},
                       Path("f.json"), logging.getLogger("test"))
    assert merged["a"].command == "mine" and merged["a"].source == "config" and merged["b"].source == "file"
    assert "using the config entry" in caplog.text


def test_the_user_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    manager = McpManager({}, config_file=path, state_file="")
    assert manager.listing()["servers"] == []
    path.write_text(json.dumps({"mcpServers": {"files": {"command": "npx", "args": ["-y", "server-files"]}}}))
    assert [row["name"] for row in manager.listing()["servers"]] == ["files"]
    path.write_text("{not json")
    listing = manager.listing()
    assert listing["servers"] == [] and "not valid JSON" in listing["problems"][0]


def test_a_wrong_option_type_leaves_mcp_off_without_stopping_the_server(caplog: Any) -> None:
    with caplog.at_level(logging.ERROR):
        manager = McpManager.from_config({"mcp_servers": ["not", "a", "dict"]}, cwd=".",
                                         log=logging.getLogger("test"))
    assert manager.listing()["servers"] == [] and "MCP is off" in caplog.text
