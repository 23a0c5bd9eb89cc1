"""End to end through a real Jupyter server: the model (a fake) drives notebooks and scripts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nbformat
import psutil

from tests.fakes.base import ScriptedTool, ScriptedTurn
from tests.test_handlers import create_session, read_until_done


async def test_model_creates_a_notebook_runs_a_cell_and_answers_from_its_output(
    jp_fetch: Any, jp_ws_fetch: Any, jp_root_dir: Any, fakes: Any
) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("JupyterNotebook", {
            "operation": "insert_execute_code_cell", "notebook_path": "analysis.ipynb",
            "source": "answer = 6 * 7\nanswer"})]),
        ScriptedTurn(tool_calls=[ScriptedTool("JupyterNotebook", {
            "operation": "execute_ipython", "notebook_path": "analysis.ipynb", "source": "print(answer + 1)"})]),
        ScriptedTurn(text="The answer is 42 (and 43 after it)."),
    )
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "Compute the answer in analysis.ipynb"}))
    events = await read_until_done(ws, timeout=60)
    results = [e for e in events if e["type"] == "tool_result"]
    assert [r["is_error"] for r in results] == [False, False], results
    assert "42" in results[0]["output"] and "43" in results[1]["output"], "variables persist in the kernel"
    # the model saw the cell's output
    assert "42" in str(fakes["openai"].requests[1]["body"])
    # the notebook on disk is valid and keeps the output
    nb = nbformat.read(jp_root_dir / "analysis.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == "42"
    # the workspace state knows the notebook and its kernel, and the model got it with the prompt
    state = json.loads((await jp_fetch("ide-agent", "sessions", session["id"], "workspace")).body)
    [notebook] = [n for n in state["notebooks"] if n["notebook"] == "analysis.ipynb"]
    assert notebook["kernel_status"] in {"idle", "busy"} and notebook["kernel_id"]
    assert any(c["path"] == "analysis.ipynb" for c in state["changes"])
    # the kernel is the server's own: JupyterLab would attach to it
    sessions = json.loads((await jp_fetch("api", "sessions")).body)
    assert notebook["kernel_id"] in {s["kernel"]["id"] for s in sessions}
    # the next prompt carries the workspace state to the model
    fakes["openai"].script(ScriptedTurn(text="ok"))
    ws.write_message(json.dumps({"type": "prompt", "text": "what is running?"}))
    await read_until_done(ws)
    last_request = str(fakes["openai"].requests[-1]["body"])
    assert "<workspace_state>" in last_request and "Notebook analysis.ipynb: kernel" in last_request
    ws.close()


async def test_model_runs_a_background_script_and_the_sidebar_can_stop_it(
    jp_fetch: Any, jp_ws_fetch: Any, jp_root_dir: Any, fakes: Any
) -> None:
    (jp_root_dir / "train.py").write_text(
        "import time\nfor epoch in range(1000):\n    print(f'epoch {epoch}', flush=True)\n    time.sleep(0.1)\n"
    )
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("ExecuteScript", {"script_path": "train.py"})]),
        ScriptedTurn(text="Training started."),
    )
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "start training"}))
    events = await read_until_done(ws)
    [result] = [e for e in events if e["type"] == "tool_result"]
    pid = result["data"]["pid"]
    assert psutil.pid_exists(pid)
    await asyncio.sleep(0.5)
    state = json.loads((await jp_fetch("ide-agent", "sessions", session["id"], "workspace")).body)
    [proc] = state["processes"]
    assert proc["pid"] == pid and proc["status"] == "running"
    stopped = json.loads((await jp_fetch("ide-agent", "sessions", session["id"], "processes", str(pid),
                                         "interrupt", method="POST", body="{}")).body)
    assert stopped["status"] != "running"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    ws.close()


async def test_deleting_a_session_stops_its_scripts(jp_fetch: Any, jp_ws_fetch: Any, jp_root_dir: Any,
                                                   fakes: Any) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("ExecuteScript", {"command": "sleep 300"})]),
        ScriptedTurn(text="sleeping"),
    )
    session = await create_session(jp_fetch)
    ws = await jp_ws_fetch("ide-agent", "sessions", session["id"], "stream")
    ws.write_message(json.dumps({"type": "prompt", "text": "sleep"}))
    events = await read_until_done(ws)
    [result] = [e for e in events if e["type"] == "tool_result"]
    pid = result["data"]["pid"]
    assert psutil.pid_exists(pid)
    await jp_fetch("ide-agent", "sessions", session["id"], method="DELETE")
    assert not psutil.pid_exists(pid)
