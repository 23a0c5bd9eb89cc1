"""The ensemble asked directly through the server: REST starts it, the socket streams it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.fakes.base import ScriptedTurn
from tests.test_handlers import create_session

SYNTHESIS = "## Plan\n1. Use a memory-mapped dataset.\n## Agreements\n- I/O bound\n## Disagreements\n- none"


async def read_until_verdict(ws: Any) -> list[dict[str, Any]]:
    events = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.read_message(), 20))
        events.append(event)
        if event["type"] == "ensemble_verdict":
            return events


async def test_direct_consultation_streams_members_and_verdict(jp_fetch: Any, jp_ws_fetch: Any, fakes: Any) -> None:
    for kind in ("anthropic", "xai", "gemini"):
        fakes[kind].script(ScriptedTurn(text=f"{kind} says: memory-map it", reasoning="hmm"))
    fakes["openai"].script(ScriptedTurn(text="openai says: memory-map it"), ScriptedTurn(text=SYNTHESIS))
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    response = await jp_fetch("ide-agent", "sessions", session["id"], "ensemble", method="POST",
                              body=json.dumps({"question": "How do I speed up my loader?"}))
    assert response.code == 202
    events = await read_until_verdict(ws)
    members = {e["member"] for e in events if e["type"] == "ensemble_member"}
    assert members == {"openai", "anthropic", "xai", "gemini", "synthesizer"}
    started = [e for e in events if e["type"] == "ensemble_member" and e["state"] == "started"]
    assert all(e["question"] == "How do I speed up my loader?" for e in started)
    verdict = events[-1]
    assert verdict["status"] == "ok" and "memory-mapped" in verdict["plan"]
    assert verdict["agreements"] == ["I/O bound"] and verdict["cost_usd"] > 0
    assert all(e["turn_id"] is None for e in events), "not part of a main-model turn"
    usage = json.loads((await jp_fetch("ide-agent", "sessions", session["id"])).body)["usage"]
    assert usage["cost_usd"] == pytest.approx(verdict["cost_usd"])
    # the same over the socket
    for kind in ("openai", "anthropic", "xai", "gemini"):
        fakes[kind].script(ScriptedTurn(text="again"))
    fakes["openai"].script(ScriptedTurn(text=SYNTHESIS))
    ws.write_message(json.dumps({"type": "ensemble", "question": "And now?", "members": ["openai", "gemini"]}))
    events = await read_until_verdict(ws)
    assert {m["name"] for m in events[-1]["members"]} == {"openai", "gemini"}
    ws.close()


async def test_bad_direct_requests_are_clear(jp_fetch: Any, jp_ws_fetch: Any) -> None:
    session = await create_session(jp_fetch)
    bad_bodies = ({}, {"question": ""}, {"question": "q", "members": "openai"},
                  {"question": "q", "members": ["nobody"]})
    for body in bad_bodies:
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("ide-agent", "sessions", session["id"], "ensemble", method="POST", body=json.dumps(body))
        assert err.value.code == 400
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "ensemble", "question": "q", "members": ["nobody"]}))
    reply = json.loads(await ws.read_message())
    assert reply["kind"] == "bad_request" and "nobody" in reply["message"]
    ws.close()
