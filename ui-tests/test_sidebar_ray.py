"""The processes view with a Ray cluster: a local script and a Ray job side by side, the job with its "ray" badge,
its growing log and its cluster use; Interrupt stops the Ray job. Screenshots: processes-ray-*.png."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.base import ScriptedTool, ScriptedTurn
from tests.test_ray import PROGRESS_PY, ray_head  # noqa: F401 - the module's Ray head fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

LOCAL_PY = """import time
for i in range(600):
    print(f"local {i}", flush=True)
    time.sleep(0.2)
"""


def test_local_and_ray_jobs_side_by_side(agent_lab: Any, fakes: dict[str, Any], ui: Any, ray_head: str) -> None:  # noqa: F811
    lab = agent_lab(config=[f"c.IDEAgent.ray_address = {ray_head!r}"])
    (lab.root / "local.py").write_text(LOCAL_PY)
    (lab.root / "progress.py").write_text(PROGRESS_PY)
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("ExecuteScript", {"script_path": "local.py"}),
                                 ScriptedTool("ExecuteScript", {"script_path": "progress.py", "target": "ray"})]),
        ScriptedTurn(text="Both are running."),
    )
    ui.open_lab(lab)
    ui.open_sidebar()
    ui.send("Run the local script here and the training on the cluster.")
    ui.q(".jp-IDEAgent-assistant").filter(has_text="Both are running").wait_for()
    ui.q(".jp-IDEAgent-processesSummary").filter(has_text="2 running").wait_for(timeout=20000)

    ui.q(".jp-IDEAgent-processesToggle").click()
    ray_row = ui.q('.jp-IDEAgent-process[data-target="ray"]')
    local_row = ui.q('.jp-IDEAgent-process[data-target="local"]')
    local_row.wait_for()
    assert ray_row.locator(".jp-IDEAgent-rayBadge").inner_text() == "ray"
    assert local_row.locator(".jp-IDEAgent-rayBadge").count() == 0
    job = ray_row.get_attribute("data-pid") or ""
    assert job.startswith("ray-")
    # polled: Ray starts the job, and its mirrored log grows in the tail
    ui.page.wait_for_function(
        """sel => { const t = document.querySelector(sel); return t && /step ([3-9]|\\d\\d)/.test(t.textContent); }""",
        arg=f'{ui.SIDEBAR} .jp-IDEAgent-process[data-target="ray"].jp-mod-running .jp-IDEAgent-processTail',
        timeout=90000,
    )
    facts = ray_row.locator(".jp-IDEAgent-processFacts").inner_text()
    assert job in facts and "cluster CPU" in facts and "lines" in facts, facts
    ui.shot("processes-ray-01-side-by-side")

    ray_row.locator(".jp-IDEAgent-interrupt").click()
    ui.q(f'.jp-IDEAgent-process[data-pid="{job}"].jp-mod-stopped').wait_for(timeout=60000)
    assert ray_row.locator(".jp-IDEAgent-interrupt").count() == 0
    assert local_row.locator(".jp-IDEAgent-interrupt").count() == 1  # the local script runs on
    ui.shot("processes-ray-02-stopped", sidebar_only=True)
    local_row.locator(".jp-IDEAgent-interrupt").click()
    ui.q(".jp-IDEAgent-processesSummary").filter(has_text="2 finished").wait_for(timeout=20000)
    assert not ui.page.page_errors, ui.page.page_errors
