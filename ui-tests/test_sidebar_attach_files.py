"""Attachments from the file browser: several files and notebooks selected there, right-click, "Attach to IDE
Agent": the sidebar opens with one chip per file (a selected folder is skipped, with a notification; a folder's own
menu has no such entry), and the fake provider receives the contents. Screenshots: attach-files-*.png."""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest

from tests.fakes.base import ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ENTRY = "Attach to IDE Agent"


def last_user_text(fake: Any) -> str:
    items = fake.requests[-1]["body"]["input"]
    users = [i for i in items if i.get("role") == "user"]
    return json.dumps(users[-1]["content"], ensure_ascii=False)


def make_workspace(root: Any) -> None:
    (root / "data").mkdir()
    (root / "data" / "inside.py").write_text("print('inside the folder')  # marker-folder\n")
    (root / "alpha.py").write_text("LEARNING_RATE = 0.003  # marker-alpha\n")
    (root / "zulu.py").write_text("print('not selected')  # marker-zulu\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("epochs = 12  # marker-notebook")]
    nbformat.write(nb, root / "beta.ipynb")


def test_file_browser_selection_attaches_one_chip_per_file(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab()
    make_workspace(lab.root)
    openai = fakes["openai"]
    ui.open_lab(lab)
    page = ui.page

    def item(name: str) -> Any:
        return page.locator(".jp-DirListing-content .jp-DirListing-item").filter(
            has=page.locator(".jp-DirListing-itemText", has_text=name))

    item("beta.ipynb").wait_for(timeout=60000)
    menu_entry = page.locator(".lm-Menu .lm-Menu-item").filter(has_text=ENTRY)

    # --- a folder's menu does not offer the entry -------------------------------------------------------
    item("data").click(button="right")
    page.locator(".lm-Menu .lm-Menu-item").filter(has_text="Copy Path").wait_for()
    assert menu_entry.count() == 0, "folders cannot be attached"
    page.keyboard.press("Escape")
    page.locator(".lm-Menu").wait_for(state="detached")

    # --- select alpha.py, then beta.ipynb (shift: the range) and the folder (ctrl), right-click -----------
    item("alpha.py").click()
    item("beta.ipynb").click(modifiers=["Shift"])
    item("data").click(modifiers=["Control"])
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-DirListing-content .jp-DirListing-item.jp-mod-selected').length === 3")
    item("alpha.py").click(button="right")
    menu_entry.wait_for()
    ui.shot("attach-files-01-context-menu")
    menu_entry.click()

    chips = ui.q(".jp-IDEAgent-prompt .jp-IDEAgent-attachmentChip")

    def chip_paths() -> list[str]:
        return sorted(chips.evaluate_all("nodes => nodes.map(n => n.dataset.path)"))

    ui.q('.jp-IDEAgent-prompt .jp-IDEAgent-attachmentChip[data-path="beta.ipynb"]').wait_for()
    assert chip_paths() == ["alpha.py", "beta.ipynb"], "one chip per file, the folder skipped"
    page.locator(".Toastify__toast").filter(has_text="skipped the folder data").wait_for()
    ui.shot("attach-files-02-chips")

    # --- attaching alpha.py again (with zulu.py) adds no second alpha.py chip; x removes zulu.py's -----------
    item("alpha.py").click()
    item("zulu.py").click(modifiers=["Control"])
    item("zulu.py").click(button="right")
    menu_entry.click()
    zulu = ui.q('.jp-IDEAgent-prompt .jp-IDEAgent-attachmentChip[data-path="zulu.py"]')
    zulu.wait_for()
    assert chip_paths() == ["alpha.py", "beta.ipynb", "zulu.py"]
    zulu.locator(".jp-IDEAgent-attachmentRemove").click()
    zulu.wait_for(state="detached")

    # --- send: the model gets both files' contents, and only theirs --------------------------------------
    openai.script(ScriptedTurn(text="The learning rate is 0.003 over 12 epochs."))
    ui.send("Summarize the training setup")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="over 12 epochs").wait_for()
    sent = last_user_text(openai)
    for expected in ("alpha.py", "marker-alpha", "beta.ipynb", "epochs = 12  # marker-notebook"):
        assert expected in sent, (expected, sent[:3000])
    assert "marker-folder" not in sent and "marker-zulu" not in sent, "only the selected files are attached"
    assert chips.count() == 0, "the attachments went with that prompt"
    sent_chips = ui.q(".jp-IDEAgent-user .jp-IDEAgent-attachmentChip")
    assert sorted(sent_chips.all_inner_texts()) == ["alpha.py", "beta.ipynb"]
    ui.shot("attach-files-03-sent")
    assert not page.page_errors, page.page_errors
