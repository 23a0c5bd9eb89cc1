"""The processes view: a script the agent started (ExecuteScript) shows with CPU, memory, runtime and
its output tail, and its Interrupt button stops it. Screenshots: processes-*.png."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.base import ScriptedTool, ScriptedTurn

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

TRAIN = """import time
step = 0
while True:
    step += 1
    print(f"epoch {step} loss {1 / step:.4f}", flush=True)
    sum(i * i for i in range(200_000))  # some CPU
    time.sleep(0.2)
"""


def test_a_script_started_by_the_agent_shows_and_is_interrupted(agent_lab: Any, fakes: dict[str, Any], ui: Any) -> None:
    lab = agent_lab()
    (lab.root / "train.py").write_text(TRAIN)
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("ExecuteScript", {"script_path": "train.py"})]),
        ScriptedTurn(text="Training started in the background."),
    )
    ui.open_lab(lab)
    ui.open_sidebar()
    summary = ui.q(".jp-IDEAgent-processesSummary")
    assert summary.inner_text() == "no scripts"
    ui.send("Train the model in the background.")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="Training started").wait_for()
    # the collapsed bar already counts it
    summary.filter(has_text="1 running").wait_for(timeout=10000)

    ui.q(".jp-IDEAgent-processesToggle").click()
    row = ui.q(".jp-IDEAgent-process.jp-mod-running")
    row.wait_for()
    assert "train.py" in row.locator(".jp-IDEAgent-processCommand").inner_text()
    # polled: the tail moves on and the stats fill in
    ui.page.wait_for_function(
        """sel => { const t = document.querySelector(sel); return t && /epoch ([3-9]|\\d\\d)/.test(t.textContent); }""",
        arg=f"{ui.SIDEBAR} .jp-IDEAgent-process.jp-mod-running .jp-IDEAgent-processTail",
        timeout=20000,
    )
    facts = row.locator(".jp-IDEAgent-processFacts").inner_text()
    assert "CPU" in facts and "MB" in facts and " s" in facts and "lines" in facts, facts
    pid = int(row.get_attribute("data-pid") or 0)
    assert pid > 0
    ui.shot("processes-01-running")

    row.locator(".jp-IDEAgent-interrupt").click()
    ui.q(f'.jp-IDEAgent-process[data-pid="{pid}"].jp-mod-interrupted').wait_for(timeout=20000)
    assert ui.q(".jp-IDEAgent-interrupt").count() == 0
    state = lab.api(f"ide-agent/sessions/{lab.api('ide-agent/sessions')['sessions'][0]['id']}/workspace")
    (proc,) = [p for p in state["processes"] if p["pid"] == pid]
    assert proc["status"] == "interrupted", proc
    summary.filter(has_text="1 finished").wait_for()
    ui.shot("processes-02-interrupted", sidebar_only=True)
    ui.dark_theme()
    ui.shot("processes-03-dark", sidebar_only=True)
    assert not ui.page.page_errors, ui.page.page_errors
