"""The REST and WebSocket routes through a real Jupyter server (pytest-jupyter)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection

from tests.fakes.base import ScriptedTool, ScriptedTurn


async def create_session(jp_fetch: Any, title: str | None = None) -> dict[str, Any]:
    body = json.dumps({"title": title} if title else {})
    response = await jp_fetch("ide-agent", "sessions", method="POST", body=body)
    assert response.code == 201
    return json.loads(response.body)


async def read_until_done(ws: WebSocketClientConnection, timeout: float = 15) -> list[dict[str, Any]]:
    events = []
    while True:
        message = await asyncio.wait_for(ws.read_message(), timeout)
        assert message is not None, "socket closed before done"
        event = json.loads(message)
        events.append(event)
        if event["type"] == "done":
            return events


async def test_status_reports_configured_providers_without_keys(jp_fetch: Any) -> None:
    response = await jp_fetch("ide-agent", "status")
    status = json.loads(response.body)
    assert status["ready"] is True and status["main_model"] == "openai:gpt-5"
    assert {p["name"] for p in status["providers"]} >= {"openai", "anthropic", "gemini", "xai"}
    assert "sk-fake" not in response.body.decode(), "a key must never reach the browser"




async def test_session_crud(jp_fetch: Any) -> None:
    session = await create_session(jp_fetch, "first")
    sid = session["id"]
    listed = json.loads((await jp_fetch("ide-agent", "sessions")).body)["sessions"]
    assert [s["id"] for s in listed] == [sid]
    renamed = await jp_fetch("ide-agent", "sessions", sid, method="PATCH", body=json.dumps({"title": "renamed"}))
    assert json.loads(renamed.body)["title"] == "renamed"
    deleted = await jp_fetch("ide-agent", "sessions", sid, method="DELETE")
    assert deleted.code == 204
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("ide-agent", "sessions", sid)
    assert err.value.code == 404


async def test_bad_session_id_gets_a_clear_404(jp_fetch: Any, jp_ws_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("ide-agent", "sessions", "no-such-session", "events")
    assert err.value.code == 404
    assert b"no-such-session" in err.value.response.body
    with pytest.raises(HTTPClientError) as err:
        await jp_ws_fetch("ide-agent", "sessions", "no-such-session", "stream")
    assert err.value.code == 404


async def test_malformed_bodies_are_400(jp_fetch: Any) -> None:
    for body in ("{not json", "[1, 2]", json.dumps({"title": 5})):
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("ide-agent", "sessions", method="POST", body=body)
        assert err.value.code == 400


async def test_requests_without_token_are_refused(jp_fetch: Any, jp_ws_fetch: Any, jp_base_url: str,
                                                  http_server_port: Any) -> None:
    from tornado.httpclient import AsyncHTTPClient
    from tornado.websocket import websocket_connect

    session = await create_session(jp_fetch)
    port = http_server_port[-1]
    base = f"127.0.0.1:{port}{jp_base_url}ide-agent"
    client = AsyncHTTPClient()
    for path in ("status", "sessions", f"sessions/{session['id']}", f"sessions/{session['id']}/events"):
        with pytest.raises(HTTPClientError) as err:
            await client.fetch(f"http://{base}/{path}")
        assert err.value.code == 403, path
    with pytest.raises(HTTPClientError) as err:
        await client.fetch(f"http://{base}/sessions", method="POST", body="{}")
    assert err.value.code == 403
    with pytest.raises(HTTPClientError) as err:
        await websocket_connect(f"ws://{base}/sessions/{session['id']}/stream")
    assert err.value.code == 403


async def test_websocket_streams_ordered_events_of_a_tool_turn(jp_fetch: Any, jp_ws_fetch: Any, fakes: Any,
                                                               jp_root_dir: Any) -> None:
    (jp_root_dir / "notes.md").write_text("the meeting is at 10\n")
    fakes["openai"].script(
        ScriptedTurn(reasoning="Read the notes.", tool_calls=[ScriptedTool("Read", {"path": "notes.md"})]),
        ScriptedTurn(text="The meeting is at 10.", chunks=5),
    )
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "When is the meeting?"}))
    events = await read_until_done(ws)
    types = [e["type"] for e in events]
    assert types[0] == "user_message" and types[-1] == "done"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert types.index("reasoning_delta") < types.index("tool_call") < types.index("tool_result")
    assert "".join(e["text"] for e in events if e["type"] == "text_delta") == "The meeting is at 10."
    assert events[-1]["reason"] == "completed"
    ws.close()

    # a client that reconnects after seq 3 gets exactly the rest, then live events
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream", params={"after_seq": "3"})
    replay = [json.loads(await asyncio.wait_for(ws.read_message(), 5)) for _ in range(len(events) - 3)]
    assert [e["seq"] for e in replay] == list(range(4, len(events) + 1))
    history = json.loads((await jp_fetch("ide-agent", "sessions", session["id"], "events",
                                         params={"after_seq": "0"})).body)["events"]
    assert history == events
    listed = json.loads((await jp_fetch("ide-agent", "sessions", session["id"])).body)
    assert listed["usage"]["input_tokens"] > 0 and listed["running"] is False
    ws.close()


async def test_websocket_cancel_and_bad_messages(jp_fetch: Any, jp_ws_fetch: Any, fakes: Any) -> None:
    fakes["openai"].script(ScriptedTurn(text="a b c d e f g h i j", chunks=10, chunk_delay=0.3))
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    for bad in ("not json", "[]", json.dumps({"type": "prompt", "text": ""}), json.dumps({"type": "dance"})):
        ws.write_message(bad)
        reply = json.loads(await asyncio.wait_for(ws.read_message(), 5))
        assert reply["type"] == "error" and reply["kind"] == "bad_request" and reply["seq"] is None
    ws.write_message(json.dumps({"type": "prompt", "text": "count slowly"}))
    events = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        events.append(event)
        if event["type"] == "text_delta" and len([e for e in events if e["type"] == "text_delta"]) == 1:
            ws.write_message(json.dumps({"type": "cancel"}))
        if event["type"] == "done":
            break
    assert events[-1]["reason"] == "cancelled"
    assert len([e for e in events if e["type"] == "text_delta"]) < 10
    ws.close()


async def test_two_prompts_at_once_are_queued_not_interleaved(jp_fetch: Any, jp_ws_fetch: Any, fakes: Any) -> None:
    fakes["openai"].script(ScriptedTurn(text="first answer", chunk_delay=0.05), ScriptedTurn(text="second answer"))
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "one"}))
    ws.write_message(json.dumps({"type": "prompt", "text": "two"}))
    first = await read_until_done(ws)
    second = await read_until_done(ws)
    assert any(e["type"] == "queued" and e["text"] == "two" for e in first)
    assert "".join(e["text"] for e in first if e["type"] == "text_delta") == "first answer"
    assert second[0]["type"] == "user_message" and second[0]["text"] == "two"
    assert "".join(e["text"] for e in second if e["type"] == "text_delta") == "second answer"
    ws.close()


async def test_deleting_a_session_closes_its_sockets(jp_fetch: Any, jp_ws_fetch: Any) -> None:
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    await jp_fetch("ide-agent", "sessions", session["id"], method="DELETE")
    assert await asyncio.wait_for(ws.read_message(), 5) is None
    assert ws.close_code == 4404


async def test_approval_over_the_socket(jp_fetch: Any, jp_ws_fetch: Any, fakes: Any, jp_root_dir: Any) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("ExecuteScript", {"command": "echo approved > ok.txt"})]),
        ScriptedTurn(text="done"),
    )
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "go", "approval_mode": "bogus"}))
    assert json.loads(await ws.read_message())["kind"] == "bad_request"
    ws.write_message(json.dumps({"type": "prompt", "text": "go", "approval_mode": "code"}))
    while True:
        event = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        if event["type"] == "approval_request":
            break
    ws.write_message(json.dumps({"type": "approval", "call_id": "nope", "decision": "run"}))
    assert "No tool call" in json.loads(await ws.read_message())["message"]
    ws.write_message(json.dumps({"type": "approval", "call_id": event["call_id"], "decision": "run"}))
    events = await read_until_done(ws)
    [result] = [e for e in events if e["type"] == "tool_result"]
    assert not result["is_error"]
    ws.close()


async def test_a_prompt_can_pick_the_model(jp_fetch: Any, jp_ws_fetch: Any, fakes: Any) -> None:
    fakes["anthropic"].script(ScriptedTurn(text="from claude"))
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "hi", "model": "nowhere:model"}))
    reply = json.loads(await ws.read_message())
    assert reply["kind"] == "bad_request" and "nowhere" in reply["message"]
    ws.write_message(json.dumps({"type": "prompt", "text": "hi", "model": "anthropic:claude-opus-4-1"}))
    events = await read_until_done(ws)
    assert "".join(e["text"] for e in events if e["type"] == "text_delta") == "from claude"
    assert [e["model"] for e in events if e["type"] == "usage"] == ["claude-opus-4-1"]
    assert fakes["anthropic"].requests and not fakes["openai"].requests
    ws.close()
