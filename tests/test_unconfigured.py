"""With no key configured anywhere, JupyterLab starts and the API says what is missing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from traitlets.config import Config


@pytest.fixture
def jp_server_config() -> Config:
    return Config({"ServerApp": {"jpserver_extensions": {"jupyterlab_ide_agent": True}}})


async def test_status_names_the_missing_key(jp_fetch: Any) -> None:
    status = json.loads((await jp_fetch("ide-agent", "status")).body)
    assert status["ready"] is False
    assert any("OPENAI_API_KEY" in p for p in status["problems"])
    by_name = {p["name"]: p for p in status["providers"]}
    assert "ANTHROPIC_API_KEY" in by_name["anthropic"]["missing"]
    assert not by_name["openai"]["configured"]


async def test_a_prompt_without_key_ends_in_a_clear_error_event(jp_fetch: Any, jp_ws_fetch: Any) -> None:
    session = json.loads((await jp_fetch("ide-agent", "sessions", method="POST", body="{}")).body)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "hello"}))
    events = []
    while not events or events[-1]["type"] != "done":
        events.append(json.loads(await ws.read_message()))
    [error] = [e for e in events if e["type"] == "error"]
    assert error["kind"] == "config" and "OPENAI_API_KEY" in error["message"]
    ws.close()
    # and the server still serves
    assert (await jp_fetch("ide-agent", "status")).code == 200
