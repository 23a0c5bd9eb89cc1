"""Commands from the notebook cell context menu and the palette: the requests carry the notebook path
and the cells (id, type, source, traceback) as context, checked on what the fake provider received.
Also "Insert as cell" and "Copy" on a code block of an answer. Screenshots: commands-*.png."""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest

from tests.fakes.base import ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
TRACEBACK = [
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
    "\x1b[0;31mZeroDivisionError\x1b[0m                         Traceback (most recent call last)",
    "Cell \x1b[0;32mIn[2], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m \x1b[38;5;241m1\x1b[39m\x1b[38;5;241m/\x1b[39mratio",
    "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero",
]


def make_notebook(root: Any) -> list[str]:
    """``err.ipynb``: a plain cell, then a cell whose saved output is a ZeroDivisionError. Returns the cell ids."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    ok = nbformat.v4.new_code_cell("ratio = 0\nscale = 41", execution_count=1)
    bad = nbformat.v4.new_code_cell("1/ratio", execution_count=2)
    bad.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                          traceback=TRACEBACK)]
    nb.cells = [ok, bad]
    nbformat.write(nb, root / "err.ipynb")
    return [ok.id, bad.id]


def cell_sources(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor",
        "nodes => nodes.map(n => Array.from(n.querySelectorAll('.cm-line')).map(l => l.textContent).join('\\n'))",
    )


def context_menu(page: Any, cell: Any, label: str) -> None:
    cell.locator(".jp-InputPrompt").click()  # make it the active cell (command mode)
    cell.locator(".jp-InputPrompt").click(button="right")
    item = page.locator(".lm-Menu .lm-Menu-item").filter(has_text=label)
    item.wait_for()
    item.click()


def last_input(fake: Any) -> str:
    """The last user message the fake OpenAI received, as text."""
    body = fake.requests[-1]["body"]
    return json.dumps(body.get("input"), ensure_ascii=False)


def test_cell_context_menu_sends_the_cells(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab()
    ok_id, bad_id = make_notebook(lab.root)
    openai = fakes["openai"]
    ui.open_lab(lab, "tree/err.ipynb")
    cells = ui.page.locator(f"{NOTEBOOK} .jp-Cell")
    cells.nth(1).locator(".jp-OutputArea-output").filter(has_text="ZeroDivisionError").wait_for(timeout=60000)

    # --- explain the error: sent at once, with the cell and its traceback -------------------------
    openai.script(ScriptedTurn(text="`ratio` is 0, so `1/ratio` divides by zero."))
    context_menu(ui.page, cells.nth(1), "Explain the Error of the Active Cell")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="divides by zero").wait_for()
    sent = last_input(openai)
    for expected in ("err.ipynb", bad_id, "1/ratio", "ZeroDivisionError: division by zero", "Traceback"):
        assert expected in sent, (expected, sent[:2000])
    assert "\\u001b[" not in sent and "\x1b[" not in sent, "ANSI colour codes are stripped"
    assert ok_id not in sent, "only the active cell"
    chip = ui.q(".jp-IDEAgent-user .jp-IDEAgent-contextChip").last
    assert chip.inner_text() == "err.ipynb · cell 2 (error)"
    ui.shot("commands-01-explain-error")

    # --- ask about the selected cell: attached, then the user's question ---------------------------
    openai.script(ScriptedTurn(text="It sets up:\n\n```python\nprint(scale + 1)\n```\n\nthen divides."))
    context_menu(ui.page, cells.nth(0), "Ask About the Selected Cells")
    pending = ui.q(".jp-IDEAgent-prompt .jp-IDEAgent-contextChip")
    pending.wait_for()
    assert pending.inner_text() == "err.ipynb · cell 1"
    ui.shot("commands-02-context-attached", sidebar_only=True)
    ui.send("What does this cell do?")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="then divides").wait_for()
    sent = last_input(openai)
    assert "What does this cell do?" in sent and ok_id in sent and "scale = 41" in sent, sent[:2000]
    assert pending.count() == 0, "the context went with that prompt only"

    # --- a code block of the answer: Copy, and Insert as cell below the active cell ----------------
    block = ui.q(".jp-IDEAgent-assistant .jp-IDEAgent-codeBlock").last
    block.locator(".jp-IDEAgent-copyCode").click()
    block.locator(".jp-IDEAgent-copyCode").filter(has_text="Copied").wait_for()
    cells.nth(0).locator(".jp-InputPrompt").click()
    block.locator(".jp-IDEAgent-insertCode").click()
    ui.page.wait_for_function(
        "sel => document.querySelectorAll(sel).length === 3", arg=f"{NOTEBOOK} .jp-Cell", timeout=10000
    )
    assert cell_sources(ui.page) == ["ratio = 0\nscale = 41", "print(scale + 1)", "1/ratio"]
    ui.shot("commands-03-inserted")

    # --- consult the ensemble on the selected cells (no text selected): ensemble mode ---------------
    context_menu(ui.page, cells.nth(0), "Consult the Ensemble on the Selection")
    ui.q(".jp-IDEAgent-prompt.jp-mod-ensemble .jp-IDEAgent-contextChip").wait_for()
    ui.send("Is this setup sound?")
    block = ui.q(".jp-IDEAgent-turn.jp-mod-consultation")
    block.locator(".jp-IDEAgent-verdict").wait_for(timeout=60000)
    assert "Is this setup sound?" in block.locator(".jp-IDEAgent-ensembleQuestion").inner_text()
    member_request = json.dumps(fakes["gemini"].requests[-1]["body"], ensure_ascii=False)
    assert "Is this setup sound?" in member_request and "scale = 41" in member_request, member_request[:2000]
    assert ui.q(".jp-IDEAgent-prompt.jp-mod-ensemble").count() == 0, "back to the agent after sending"

    # --- the palette lists every command ------------------------------------------------------------
    labels = ui.palette("IDE Agent", "IDE Agent: Open")
    for label in ("IDE Agent: Open", "IDE Agent: New Session", "IDE Agent: Ask About the Selected Cells",
                  "IDE Agent: Explain the Error of the Active Cell", "IDE Agent: Fix the Error of the Active Cell",
                  "IDE Agent: Consult the Ensemble on the Selection", "IDE Agent: Stop"):
        assert label in labels, (label, labels)
    assert not ui.page.page_errors, ui.page.page_errors


def test_fix_error_and_stop_from_the_palette(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab()
    _, bad_id = make_notebook(lab.root)
    openai = fakes["openai"]
    ui.open_lab(lab, "tree/err.ipynb")
    cells = ui.page.locator(f"{NOTEBOOK} .jp-Cell")
    cells.nth(1).locator(".jp-OutputArea-output").filter(has_text="ZeroDivisionError").wait_for(timeout=60000)
    cells.nth(1).locator(".jp-InputPrompt").click()
    slow = " ".join(f"step{i}" for i in range(300))
    openai.script(ScriptedTurn(text=slow, chunks=150, chunk_delay=0.2))
    ui.palette("Fix the Error", "IDE Agent: Fix the Error of the Active Cell")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="step1").wait_for()
    sent = last_input(openai)
    assert "Fix the error" in sent and bad_id in sent and "ZeroDivisionError" in sent
    ui.palette("IDE Agent: Stop", "IDE Agent: Stop")
    ui.q(".jp-IDEAgent-doneNote").filter(has_text="Stopped").wait_for(timeout=15000)
    assert "step299" not in ui.q(".jp-IDEAgent-assistant").last.inner_text()
    assert not ui.page.page_errors, ui.page.page_errors
