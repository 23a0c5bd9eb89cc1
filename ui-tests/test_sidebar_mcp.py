"""The MCP panel: the configured servers and their tools show in the sidebar after the agent used one,
a broken entry says what is wrong, and the switch turns a server off (and on again) for this user.
Screenshots: mcp-*.png."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.base import ScriptedTool, ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

STDIO_SERVER = Path(__file__).resolve().parents[1] / "tests" / "mcp_servers" / "stdio_server.py"
SERVERS = {
    "lab": {"command": sys.executable, "args": [str(STDIO_SERVER)], "env": {"LAB_TOKEN": "ui-secret-value"}},
    "broken": {"args": ["no command"]},
}


def test_panel_lists_servers_and_tools_and_toggles_one(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab(config=[f"c.IDEAgent.mcp_servers = {SERVERS!r}"])
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("mcp__lab__add", {"a": 20, "b": 22})]),
        ScriptedTurn(text="The MCP server says 42."),
    )
    ui.open_lab(lab)
    ui.open_sidebar()
    summary = ui.q(".jp-IDEAgent-mcpSummary")
    summary.filter(has_text="1 of 2 servers on").wait_for()
    assert "failing" in summary.inner_text(), "the broken entry counts as failing"

    ui.send("Add 20 and 22 with the MCP tool.")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="says 42").wait_for()
    summary.filter(has_text="tools").wait_for(timeout=15000)  # refreshed when the turn ended

    ui.q(".jp-IDEAgent-mcpToggle").click()
    row = ui.q('.jp-IDEAgent-mcpServer[data-server="lab"]')
    row.locator(".jp-IDEAgent-mcpState").filter(has_text="connected").wait_for()
    tools = row.locator(".jp-IDEAgent-mcpTool").all_inner_texts()
    assert {"add", "shout", "picture"} <= set(tools), tools
    assert row.locator(".jp-IDEAgent-mcpTool.jp-mod-readOnly").filter(has_text="add").count() == 1
    assert "stdio_server.py" in row.locator(".jp-IDEAgent-mcpTarget").inner_text()
    broken = ui.q('.jp-IDEAgent-mcpServer[data-server="broken"]')
    assert "invalid entry" in broken.locator(".jp-IDEAgent-mcpState").inner_text()
    assert "'command'" in broken.locator(".jp-IDEAgent-mcpError").inner_text()
    assert broken.locator("input[role=switch]").is_disabled()
    assert "ui-secret-value" not in ui.q(".jp-IDEAgent-mcp").inner_text()
    ui.shot("mcp-01-servers", sidebar_only=True)

    switch = row.locator("input[role=switch]")
    assert switch.is_checked()
    switch.click()
    row.locator(".jp-IDEAgent-mcpState").filter(has_text="off").wait_for()
    assert row.locator(".jp-IDEAgent-mcpTool").count() == 0
    listed = {s["name"]: s for s in lab.api("ide-agent/mcp")["servers"]}
    assert listed["lab"]["enabled"] is False and listed["lab"]["state"] == "disabled"
    summary.filter(has_text="0 of 2 servers on").wait_for()
    ui.shot("mcp-02-off", sidebar_only=True)

    switch.click()
    row.locator(".jp-IDEAgent-mcpState").filter(has_text="starts when needed").wait_for()
    row.locator(".jp-IDEAgent-mcpConnect").click()
    row.locator(".jp-IDEAgent-mcpState").filter(has_text="connected").wait_for(timeout=30000)
    assert lab.api("ide-agent/mcp")["servers"][0]["enabled"] is True
    ui.dark_theme()
    ui.shot("mcp-03-dark", sidebar_only=True)
    assert not ui.page.page_errors, ui.page.page_errors
