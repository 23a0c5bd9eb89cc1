"""The session list: new, switch, rename, delete; the current session and its history survive a
browser refresh. Screenshots: sessions-*.png."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.base import ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def titles(lab: Any) -> dict[str, str]:
    return {s["id"]: s["title"] for s in lab.api("ide-agent/sessions")["sessions"]}


def test_new_switch_rename_delete(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab()
    openai = fakes["openai"]
    ui.open_lab(lab)
    ui.open_sidebar()
    header_title = ui.q(".jp-IDEAgent-sessionTitleText")

    # --- a first session: its first prompt names it -------------------------------------------
    openai.script(ScriptedTurn(text="Answer about the first topic."))
    ui.send("Explain the first topic")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="first topic.").wait_for()
    header_title.filter(has_text="Explain the first topic").wait_for()
    (first_id,) = titles(lab)

    # --- new -----------------------------------------------------------------------------------
    ui.q(".jp-IDEAgent-newSession").click()
    ui.q(".jp-IDEAgent-empty").wait_for()
    openai.script(ScriptedTurn(text="Second answer."))
    ui.send("Now a second topic")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="Second answer.").wait_for()
    header_title.filter(has_text="Now a second topic").wait_for()
    assert len(titles(lab)) == 2
    second_id = next(i for i in titles(lab) if i != first_id)

    # --- the list, and switching ----------------------------------------------------------------
    ui.q("button.jp-IDEAgent-sessionTitle").click()
    items = ui.q(".jp-IDEAgent-sessionItem")
    items.nth(1).wait_for()
    assert items.count() == 2
    current = ui.q(".jp-IDEAgent-sessionItem.jp-mod-current")
    assert current.get_attribute("data-session-id") == second_id
    ui.shot("sessions-01-list", sidebar_only=True)
    ui.q(f'.jp-IDEAgent-sessionItem[data-session-id="{first_id}"] .jp-IDEAgent-sessionPick').click()
    ui.q(".jp-IDEAgent-assistant").filter(has_text="first topic.").wait_for()
    assert ui.q(".jp-IDEAgent-assistant").filter(has_text="Second answer.").count() == 0
    assert ui.q(".jp-IDEAgent-user").count() == 1
    assert ui.q(".jp-IDEAgent-sessions").count() == 0, "picking a session closes the list"

    # --- rename ---------------------------------------------------------------------------------
    ui.q("button.jp-IDEAgent-sessionTitle").click()
    row = ui.q(f'.jp-IDEAgent-sessionItem[data-session-id="{first_id}"]')
    row.locator(".jp-IDEAgent-renameSession").click()
    field = row.locator(".jp-IDEAgent-renameInput")
    field.fill("Loader investigation")
    field.press("Enter")
    header_title.filter(has_text="Loader investigation").wait_for()
    assert titles(lab)[first_id] == "Loader investigation"

    # --- delete the other session (confirmed in a dialog) -----------------------------------------
    ui.q(f'.jp-IDEAgent-sessionItem[data-session-id="{second_id}"] .jp-IDEAgent-deleteSession').click()
    dialog = ui.page.locator(".jp-Dialog")
    dialog.wait_for()
    ui.shot("sessions-02-delete-dialog")
    dialog.locator("button.jp-mod-warn").click()
    ui.q(f'.jp-IDEAgent-sessionItem[data-session-id="{second_id}"]').wait_for(state="detached")
    assert list(titles(lab)) == [first_id]

    # --- a refresh brings back the current session and its history, once -------------------------
    ui.reload()
    ui.open_sidebar()
    ui.q(".jp-IDEAgent-assistant").filter(has_text="first topic.").wait_for()
    assert ui.q(".jp-IDEAgent-user").count() == 1
    header_title.filter(has_text="Loader investigation").wait_for()

    # --- deleting the current session moves to a fresh one ----------------------------------------
    ui.q("button.jp-IDEAgent-sessionTitle").click()
    ui.q(f'.jp-IDEAgent-sessionItem[data-session-id="{first_id}"] .jp-IDEAgent-deleteSession').click()
    ui.page.locator(".jp-Dialog button.jp-mod-warn").click()
    ui.q(".jp-IDEAgent-empty").wait_for()
    remaining = titles(lab)
    assert first_id not in remaining and len(remaining) == 1
    header_title.filter(has_text="New session").wait_for()
    ui.shot("sessions-03-after-delete", sidebar_only=True)
    assert not ui.page.page_errors, ui.page.page_errors
