"""Sessions survive a server restart: a new server app on the same SQLite store reopens them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.serverapp import ServerApp

from jupyterlab_ide_agent.agent.messages import AssistantMessage, ToolResultMessage, UserMessage
from tests.fakes.base import ScriptedTool, ScriptedTurn
from tests.test_handlers import create_session, read_until_done


async def restart(jp_serverapp: Any, jp_configurable_serverapp: Any) -> Any:
    """Stop the first app's sessions as a shutdown would, then start a second app."""
    await jp_serverapp.web_app.settings["ide_agent_sessions"].shutdown()
    ServerApp.clear_instance()
    return jp_configurable_serverapp()


async def test_a_restart_reopens_sessions_with_history_and_the_agent_continues(
    jp_serverapp: Any, jp_fetch: Any, jp_ws_fetch: Any, jp_configurable_serverapp: Any, fakes: Any,
    jp_root_dir: Any,
) -> None:
    (jp_root_dir / "plan.md").write_text("step 1: load data\n")
    fakes["openai"].script(ScriptedTurn(tool_calls=[ScriptedTool("Read", {"path": "plan.md"})]),
                           ScriptedTurn(text="The plan starts with loading data."))
    session = await create_session(jp_fetch, "durable")
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "What is the plan?"}))
    before = await read_until_done(ws)
    ws.close()
    usage_before = json.loads((await jp_fetch("ide-agent", "sessions", session["id"])).body)["usage"]

    app2 = await restart(jp_serverapp, jp_configurable_serverapp)
    manager = app2.web_app.settings["ide_agent_sessions"]
    [reopened] = manager.list()
    assert reopened.id == session["id"] and reopened.title == "durable"
    assert reopened.events_after(0) == before, "the full event history is back"
    assert [type(m) for m in reopened.agent.history] == [UserMessage, AssistantMessage, ToolResultMessage,
                                                         AssistantMessage]
    assert reopened.agent.cost_usd == usage_before["cost_usd"] > 0

    # the agent continues from its memory, and seq continues too
    fakes["openai"].script(ScriptedTurn(text="Next: clean it."))
    received: list[dict[str, Any]] = []
    reopened.subscribe(lambda event, _data: received.append(event))
    reopened.submit("And after that?")
    for _ in range(200):
        if received and received[-1]["type"] == "done":
            break
        await asyncio.sleep(0.05)
    assert received[0]["seq"] == before[-1]["seq"] + 1
    assert received[-1]["reason"] == "completed"
    assert "The plan starts with loading data." in str(fakes["openai"].requests[-1]["body"])
    await manager.shutdown()


async def test_a_turn_cut_by_a_restart_ends_as_interrupted(
    jp_serverapp: Any, jp_fetch: Any, jp_ws_fetch: Any, jp_configurable_serverapp: Any, fakes: Any
) -> None:
    fakes["openai"].script(ScriptedTurn(text="a b c d e f g h", chunks=8, chunk_delay=0.5))
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "slow"}))
    while json.loads(await ws.read_message())["type"] != "text_delta":
        pass
    ws.close()
    # a crash: the process stops without a clean end of the turn (nothing more is written)
    manager = jp_serverapp.web_app.settings["ide_agent_sessions"]
    manager.store.close()
    ServerApp.clear_instance()
    app2 = jp_configurable_serverapp()
    [reopened] = app2.web_app.settings["ide_agent_sessions"].list()
    tail = reopened.events_after(0)[-2:]
    assert [e["type"] for e in tail] == ["error", "done"] and tail[-1]["reason"] == "interrupted"
    assert reopened.agent.history == [], "memory is saved at turn boundaries: the cut turn is not half-kept"
    await app2.web_app.settings["ide_agent_sessions"].shutdown()
    manager.store = None  # already closed
    await manager.shutdown()


async def test_deleting_a_session_deletes_its_data(jp_serverapp: Any, jp_fetch: Any, fakes: Any,
                                                   jp_configurable_serverapp: Any) -> None:
    session = await create_session(jp_fetch, "to delete")
    await jp_fetch("ide-agent", "sessions", session["id"], method="DELETE")
    store = jp_serverapp.web_app.settings["ide_agent_sessions"].store
    assert store.get_session(session["id"]) is None and store.events_after(session["id"], 0) == []
    app2 = await restart(jp_serverapp, jp_configurable_serverapp)
    assert app2.web_app.settings["ide_agent_sessions"].list() == []
    await app2.web_app.settings["ide_agent_sessions"].shutdown()
