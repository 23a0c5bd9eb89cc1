"""The header's "Rules" indicator: the user's rule files and the project's AGENTS.md that the agent reads,
listed with scope and size; a project file opens in JupyterLab. Screenshots: rules-*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes.base import ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def start(agent_lab: Any) -> tuple[Any, Path]:
    """A lab with a user rule (in the default folder, <jupyter_config_dir>/ide_agent/rules) and an
    AGENTS.md at the root."""
    lab = agent_lab()
    user_dir = lab.root.parent / "config" / "ide_agent" / "rules"  # the lab's JUPYTER_CONFIG_DIR
    user_dir.mkdir(parents=True)
    (user_dir / "style.md").write_text("Answer briefly.\n")
    (lab.root / "AGENTS.md").write_text("# Project rules\nRun the tests before you finish.\n")
    return lab, user_dir / "style.md"


def test_the_indicator_lists_the_active_rules(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab, user_rule = start(agent_lab)
    ui.open_lab(lab)
    ui.open_sidebar()
    button = ui.q(".jp-IDEAgent-rulesButton")
    button.filter(has_text="Rules: 2").wait_for()  # read on open, before any prompt
    tooltip = button.get_attribute("title") or ""
    assert f"user: {user_rule}" in tooltip and "project: AGENTS.md" in tooltip, tooltip

    button.click()
    popover = ui.q(".jp-IDEAgent-rulesPopover")
    popover.wait_for()
    rows = popover.locator(".jp-IDEAgent-rule")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-path") == str(user_rule)
    assert "user" in rows.nth(0).locator(".jp-IDEAgent-ruleFacts").inner_text()
    assert "project" in rows.nth(1).locator(".jp-IDEAgent-ruleFacts").inner_text()
    assert rows.nth(0).locator(".jp-mod-openable").count() == 0, "a file outside the root is only listed"
    ui.shot("rules-01-popover", sidebar_only=True)
    ui.page.keyboard.press("Escape")
    popover.wait_for(state="detached")

    # a rule file added while the sidebar is open: the next turn reads it and its rules event updates the count
    (user_rule.parent / "extra.md").write_text("One more rule.\n")
    fakes["openai"].script(ScriptedTurn(text="Noted."))
    ui.send("Follow the rules.")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="Noted.").wait_for()
    button.filter(has_text="Rules: 3").wait_for()
    assert "extra.md" in (button.get_attribute("title") or "")
    assert "Answer briefly." in str(fakes["openai"].requests[0]["body"])
    assert not ui.page.page_errors, ui.page.page_errors


def test_clicking_a_project_rule_opens_it(agent_lab: Any, ui: Any) -> None:
    lab, _ = start(agent_lab)
    ui.open_lab(lab)
    ui.open_sidebar()
    ui.q(".jp-IDEAgent-rulesButton").filter(has_text="Rules: 2").click()
    link = ui.q(".jp-IDEAgent-rulesPopover .jp-IDEAgent-rulePath.jp-mod-openable")
    link.filter(has_text="AGENTS.md").click()
    ui.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tabLabel", has_text="AGENTS.md").wait_for()
    ui.q(".jp-IDEAgent-rulesPopover").wait_for(state="detached")
    ui.shot("rules-02-opened")
    assert not ui.page.page_errors, ui.page.page_errors
