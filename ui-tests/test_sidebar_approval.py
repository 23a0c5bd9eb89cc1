"""Approval mode (setting approvalMode = "code"): code-running calls wait for Run / Skip in the sidebar.

The fake main model asks to run notebook code (skipped: it never runs, and the model reads that it
was skipped) and then a shell command (run: its file appears). Screenshots: approval-*.png.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.base import ScriptedTool, ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

DANGEROUS = 'import shutil\nshutil.rmtree("data")  # delete the raw data'


def test_run_and_skip(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab(settings={"approvalMode": "code"})
    (lab.root / "data").mkdir()
    (lab.root / "data" / "raw.csv").write_text("a,b\n1,2\n")
    openai = fakes["openai"]
    openai.script(
        ScriptedTurn(tool_calls=[ScriptedTool("JupyterNotebook", {
            "operation": "execute_ipython", "notebook_path": "clean.ipynb", "source": DANGEROUS}, call_id="call_nb")]),
        ScriptedTurn(tool_calls=[ScriptedTool("ExecuteScript", {"command": "echo approved > ran.txt"},
                                              call_id="call_sh")]),
        ScriptedTurn(text="Skipped the deletion; wrote ran.txt."),
    )
    ui.open_lab(lab)
    ui.open_sidebar()
    ui.send("Clean up the workspace.")

    # --- the notebook code waits; Skip ------------------------------------------------------------
    card = ui.q('.jp-IDEAgent-tool[data-call-id="call_nb"]')
    card.locator(".jp-IDEAgent-approval").wait_for()
    assert "jp-mod-waiting" in (card.get_attribute("class") or "")
    assert card.locator(".jp-IDEAgent-approvalCode").inner_text() == DANGEROUS
    assert "clean.ipynb" in card.locator(".jp-IDEAgent-approvalFacts").inner_text()
    ui.shot("approval-01-waiting")
    # the prompt went out with the setting
    assert "approval_mode" not in json.dumps(openai.requests[0]["body"]), "a client setting, not model input"
    card.locator(".jp-IDEAgent-approvalSkip").click()
    card.locator(".jp-IDEAgent-approvalOutcome").filter(has_text="Skipped by you").wait_for()
    assert card.locator(".jp-IDEAgent-approval").count() == 0
    assert (lab.root / "data" / "raw.csv").exists(), "a skipped call never runs"

    # --- the shell command waits; Run --------------------------------------------------------------
    card = ui.q('.jp-IDEAgent-tool[data-call-id="call_sh"]')
    card.locator(".jp-IDEAgent-approval").wait_for()
    assert card.locator(".jp-IDEAgent-approvalCode").inner_text() == "echo approved > ran.txt"
    assert not (lab.root / "ran.txt").exists(), "nothing runs before the user says so"
    ui.shot("approval-02-second-request", sidebar_only=True)
    card.locator(".jp-IDEAgent-approvalRun").click()
    card.locator(".jp-IDEAgent-approvalOutcome").filter(has_text="Approved").wait_for()
    card.locator(".jp-IDEAgent-toolStatus").filter(has_text="done").wait_for()
    ui.q(".jp-IDEAgent-assistant").filter(has_text="wrote ran.txt").wait_for()
    ui.wait_idle()
    deadline_ok = False
    for _ in range(50):
        if (lab.root / "ran.txt").exists():
            deadline_ok = True
            break
        ui.page.wait_for_timeout(100)
    assert deadline_ok, "the approved command ran"

    # the model read that the first call was skipped
    second = json.dumps(openai.requests[1]["body"])
    assert "The user chose not to run this call." in second
    ui.shot("approval-03-resolved")

    # after a reload the resolved cards stay resolved (no Run/Skip again)
    ui.reload()
    ui.open_sidebar()
    ui.q(".jp-IDEAgent-approvalOutcome").first.wait_for()
    assert ui.q(".jp-IDEAgent-approval").count() == 0
    assert not ui.page.page_errors, ui.page.page_errors
