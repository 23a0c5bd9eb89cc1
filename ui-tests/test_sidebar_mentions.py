"""Attachments from the prompt: ``@`` completes the workspace's files (keyboard: arrows, Enter, Tab, Escape), the
picked file becomes a chip (× removes it), the notebook's selected cell is attached with one click, the fake provider
receives the contents, and after a page reload the sent prompt still shows its chips. Screenshots: mentions-*.png."""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest

from tests.fakes.base import ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"


def last_user_text(fake: Any) -> str:
    items = fake.requests[-1]["body"]["input"]
    users = [i for i in items if i.get("role") == "user"]
    return json.dumps(users[-1]["content"], ensure_ascii=False)


def make_workspace(root: Any) -> list[str]:
    (root / "analysis").mkdir()
    (root / "analysis" / "report_notes.md").write_text("Q3 churn rose to 7.4% (marker-7f3a)\n")
    (root / "prepare.py").write_text("print('prepare')\n")
    (root / "train.py").write_text("print('train')\n")
    (root / ".git").mkdir()
    (root / ".git" / "report_hidden.md").write_text("hidden\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("threshold = 0.42  # first cell"),
                nbformat.v4.new_code_cell("model.fit(X)  # second cell")]
    nbformat.write(nb, root / "explore.ipynb")
    return [c.id for c in nb.cells]


def options(ui: Any) -> list[str]:
    return [t.strip() for t in ui.q(".jp-IDEAgent-mention .jp-IDEAgent-mentionName").all_inner_texts()]


def test_at_completion_attaches_files_and_cells_and_the_chips_survive_a_reload(
        agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab()
    first_cell, _ = make_workspace(lab.root)
    openai = fakes["openai"]
    ui.open_lab(lab, "tree/explore.ipynb")
    ui.page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for(timeout=60000)
    ui.open_sidebar()

    # --- @ + part of a name: the list opens, best match first, hidden folders left out ----------------
    ui.prompt.click()
    ui.prompt.press_sequentially("Summarize @rep")
    ui.q(".jp-IDEAgent-mention").first.wait_for()
    ui.page.wait_for_function(
        "() => document.querySelectorAll('#jp-ide-agent-sidebar .jp-IDEAgent-mention').length === 3")
    assert options(ui) == ["report_notes.md", "prepare.py", "explore.ipynb"], "prefix, substring, then fuzzy"
    active = ui.q(".jp-IDEAgent-mention.jp-mod-active .jp-IDEAgent-mentionName")
    assert active.inner_text() == "report_notes.md"
    ui.prompt.press("ArrowDown")
    active.filter(has_text="prepare.py").wait_for()
    ui.prompt.press("ArrowUp")
    active.filter(has_text="report_notes.md").wait_for()
    ui.shot("mentions-01-completion", sidebar_only=True)
    ui.prompt.press("Enter")  # picks, does not send

    chips = ui.q(".jp-IDEAgent-prompt .jp-IDEAgent-attachmentChip")
    chips.filter(has_text="report_notes.md").wait_for()
    assert ui.q(".jp-IDEAgent-mentions").count() == 0
    assert ui.prompt.input_value() == "Summarize @analysis/report_notes.md "
    assert openai.requests == [], "Enter picked the file; nothing was sent"

    # --- Tab picks too; × removes the chip; Escape closes the list and leaves the text ------------------
    ui.prompt.press_sequentially("and @trai")
    ui.q(".jp-IDEAgent-mention.jp-mod-active").filter(has_text="train.py").wait_for()
    ui.prompt.press("Tab")
    chips.filter(has_text="train.py").wait_for()
    ui.q('.jp-IDEAgent-prompt .jp-IDEAgent-attachmentChip[data-path="train.py"] .jp-IDEAgent-attachmentRemove').click()
    chips.filter(has_text="train.py").wait_for(state="detached")
    ui.prompt.click()
    ui.prompt.press("Control+End")
    ui.prompt.press_sequentially("@pre")
    ui.q(".jp-IDEAgent-mention").first.wait_for()
    ui.prompt.press("Escape")
    ui.q(".jp-IDEAgent-mentions").wait_for(state="detached")
    assert ui.prompt.input_value().endswith("@pre"), ui.prompt.input_value()
    assert chips.count() == 1

    # --- one click attaches the notebook's active cell -------------------------------------------------
    cells_button = ui.q(".jp-IDEAgent-attachCells")
    cells_button.filter(has_text="Attach cell 1").wait_for()
    assert ui.q(".jp-IDEAgent-attachNotebook").inner_text() == "Attach notebook"
    cells_button.click()
    chips.filter(has_text="explore.ipynb · 1 cell").wait_for()
    ui.shot("mentions-02-chips", sidebar_only=True)

    # --- send: the model gets the contents; the message shows the chips ---------------------------------
    openai.script(ScriptedTurn(text="Churn rose; the threshold is 0.42."))
    ui.prompt.press("Control+End")
    ui.prompt.press_sequentially(" please")
    ui.prompt.press("Enter")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="threshold is 0.42").wait_for()
    sent = last_user_text(openai)
    for expected in ("analysis/report_notes.md", "marker-7f3a", "threshold = 0.42", first_cell):
        assert expected in sent, (expected, sent[:3000])
    assert "second cell" not in sent and "print('train')" not in sent, "only the chips are attached"
    assert chips.count() == 0, "the attachments went with that prompt"
    sent_chips = ui.q(".jp-IDEAgent-user .jp-IDEAgent-attachmentChip")
    assert sorted(sent_chips.all_inner_texts()) == ["explore.ipynb · 1 cell", "report_notes.md"]
    assert "sent" in (sent_chips.filter(has_text="report_notes.md").get_attribute("title") or "")
    ui.shot("mentions-03-sent")

    # --- a reload replays the session: the message keeps its chips --------------------------------------
    ui.reload()
    ui.open_sidebar()
    ui.q(".jp-IDEAgent-assistant").filter(has_text="threshold is 0.42").wait_for()
    assert sorted(ui.q(".jp-IDEAgent-user .jp-IDEAgent-attachmentChip").all_inner_texts()) == [
        "explore.ipynb · 1 cell", "report_notes.md"]
    ui.shot("mentions-04-after-reload", sidebar_only=True)
    assert not ui.page.page_errors, ui.page.page_errors
