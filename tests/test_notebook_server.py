"""JupyterNotebook through a real Jupyter server: the server's contents, session and kernel managers, real kernels.

The user's side is played through the server's REST and WebSocket APIs exactly as JupyterLab does it (POST
/api/sessions to open a notebook, /api/kernels/{id}/channels to run code), so "the agent and the user share one
kernel" is checked from both ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import pytest_asyncio

from jupyterlab_ide_agent.host import HostError, ServerHost
from jupyterlab_ide_agent.tools.base import ToolContext, ToolRegistry, ToolResult
from jupyterlab_ide_agent.tools.notebook import notebook_tools


@pytest_asyncio.fixture
async def host(jp_serverapp: Any) -> AsyncIterator[ServerHost]:
    h = ServerHost(jp_serverapp, interrupt_grace=5)
    yield h
    await h.shutdown()


@pytest.fixture
def call(host: ServerHost, jp_root_dir: Path):
    registry = ToolRegistry(notebook_tools(default_timeout=30))
    ctx = ToolContext(root=jp_root_dir, session_id="t", services={"host": host})

    async def _call(operation: str, notebook_path: str = "nb.ipynb", check: bool = True, **args: Any) -> ToolResult:
        result = await registry.run("JupyterNotebook", {"operation": operation, "notebook_path": notebook_path,
                                                        **args}, ctx)
        target = jp_root_dir / notebook_path
        if check and target.suffix == ".ipynb" and target.is_file() and not target.is_symlink():
            nbformat.validate(nbformat.read(target, as_version=4))  # valid after every operation
        return result

    return _call


async def sessions_for(jp_fetch: Any, path: str) -> list[dict[str, Any]]:
    return [s for s in json.loads((await jp_fetch("api", "sessions")).body) if s["path"] == path]


def user_send(ws: Any, code: str) -> str:
    """Send an execute_request over a kernel WebSocket as a JupyterLab notebook tab does; its msg_id."""
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "user", "session": uuid.uuid4().hex,
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    return msg_id


async def user_wait(ws: Any, msg_id: str) -> dict[str, Any]:
    """The content of the request's execute_result (or error) message, ``{}`` if there was none."""
    found: dict[str, Any] = {}
    while True:
        msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] in ("execute_result", "error"):
            found = msg["content"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return found


async def run_as_user(jp_ws_fetch: Any, kernel_id: str, code: str) -> dict[str, Any]:
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        return await user_wait(ws, user_send(ws, code))
    finally:
        ws.close()


async def test_variables_persist_and_jupyterlab_would_attach(call, host: ServerHost, jp_fetch: Any,
                                                               jp_root_dir: Path) -> None:
    first = await call("insert_execute_code_cell", source="x = 41")
    second = await call("insert_execute_code_cell", source="x + 1")
    assert not second.is_error and "Out[2]: 42" in second.output
    assert first.data["kernel_id"] == second.data["kernel_id"]
    sessions = await sessions_for(jp_fetch, "nb.ipynb")  # what JupyterLab finds when it opens the notebook
    assert len(sessions) == 1 and sessions[0]["kernel"]["id"] == first.data["kernel_id"]
    assert sessions[0]["type"] == "notebook"
    nb = nbformat.read(jp_root_dir / "nb.ipynb", as_version=4)
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "42" and nb.cells[1].execution_count == 2
    assert await host.notebook_states() == [{"path": "nb.ipynb", "kernel_id": first.data["kernel_id"],
                                             "kernel_status": "idle", "execution_count": 2, "cell_count": 2}]


async def test_a_notebook_open_in_jupyterlab_shares_its_kernel(call, host: ServerHost, jp_fetch: Any,
                                                                jp_ws_fetch: Any, jp_serverapp: Any) -> None:
    await call("create_notebook", "shared.ipynb")
    body = {"path": "shared.ipynb", "name": "shared.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    opened = json.loads((await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))).body)
    user_kernel = opened["kernel"]["id"]
    assert await run_as_user(jp_ws_fetch, user_kernel, "user_var = 'from the user'") == {}

    ran = await call("insert_execute_code_cell", "shared.ipynb", source="x = 41\nprint(user_var)")
    assert not ran.is_error, ran.output
    assert ran.data["kernel_id"] == user_kernel and "from the user" in ran.output
    seen = await run_as_user(jp_ws_fetch, user_kernel, "x + 1")
    assert seen["data"]["text/plain"] == "42"
    assert len(await sessions_for(jp_fetch, "shared.ipynb")) == 1  # no second session

    await host.shutdown()  # the agent never stops a kernel it did not start
    assert user_kernel in jp_serverapp.kernel_manager


async def test_a_failing_user_cell_does_not_lose_the_agents_request(call, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    await call("insert_execute_code_cell", source="n = 1")
    kid = (await sessions_for(jp_fetch, "nb.ipynb"))[0]["kernel"]["id"]
    ws = await jp_ws_fetch("api", "kernels", kid, "channels")
    try:
        user = user_send(ws, "import time\ntime.sleep(0.7)\nraise RuntimeError('user cell failed')")
        await asyncio.sleep(0.3)  # the user's cell is running; ours queues behind it and is aborted by its error
        ran = await call("execute_ipython", source="print(n + 1)")
        assert not ran.is_error and "2" in ran.output, ran.output
        assert (await user_wait(ws, user))["ename"] == "RuntimeError"
    finally:
        ws.close()


async def test_error_cell_returns_the_traceback(call, jp_root_dir: Path) -> None:
    result = await call("insert_execute_code_cell", source="def g():\n    raise KeyError('missing key')\ng()")
    assert result.is_error
    assert "KeyError: 'missing key'" in result.output and "raise KeyError" in result.output
    assert "\x1b[" not in result.output
    nb = nbformat.read(jp_root_dir / "nb.ipynb", as_version=4)
    assert nb.cells[0].outputs[0]["ename"] == "KeyError"


async def test_infinite_loop_times_out_and_the_kernel_stays_usable(call) -> None:
    await call("insert_execute_code_cell", source="kept = [1, 2, 3]")
    loop = await call("insert_execute_code_cell", source="while True:\n    pass", timeout=1.5)
    assert loop.is_error and "ran past its 1.5 s timeout and was interrupted" in loop.output
    assert "KeyboardInterrupt" in loop.output
    after = await call("execute_ipython", source="sum(kept)")
    assert not after.is_error and "6" in after.output
    assert after.data["kernel_id"] == loop.data["kernel_id"]
    restarted = await call("restart_kernel")
    assert restarted.data["kernel_id"] == loop.data["kernel_id"]  # same id: an open JupyterLab tab follows it
    gone = await call("execute_ipython", source="kept")
    assert gone.is_error and "NameError" in gone.output


async def test_a_killed_kernel_is_recovered(call, host: ServerHost, jp_serverapp: Any) -> None:
    first = await call("insert_execute_code_cell", source="x = 1")
    kid = first.data["kernel_id"]
    pid = jp_serverapp.kernel_manager.get_kernel(kid).provisioner.pid
    running = asyncio.create_task(call("insert_execute_code_cell", source="import time\ntime.sleep(30)"))
    await asyncio.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    died = await asyncio.wait_for(running, 15)
    assert died.is_error and "the kernel died while running this cell" in died.output
    back = await call("execute_ipython", source="'x' in globals()")
    assert not back.is_error and "False" in back.output  # a fresh kernel
    assert back.data["kernel_id"] == kid  # revived under the same id: an open JupyterLab tab stays attached

    # shut down behind the agent's back: the next call gets a new kernel and a new session
    await jp_serverapp.kernel_manager.shutdown_kernel(kid)
    again = await call("execute_ipython", source="print('alive')")
    assert not again.is_error and "alive" in again.output and again.data["kernel_id"] != kid


async def test_shutdown_stops_only_unattached_kernels_it_started(call, host: ServerHost, jp_serverapp: Any,
                                                                 jp_ws_fetch: Any) -> None:
    alone = (await call("insert_execute_code_cell", "alone.ipynb", source="1")).data["kernel_id"]
    watched = (await call("insert_execute_code_cell", "watched.ipynb", source="1")).data["kernel_id"]
    ws = await jp_ws_fetch("api", "kernels", watched, "channels")  # the user opened watched.ipynb
    try:
        await host.shutdown()
        km = jp_serverapp.kernel_manager
        assert alone not in km and watched in km
    finally:
        ws.close()


async def test_paths_and_bad_input_through_the_server(call, host: ServerHost, jp_root_dir: Path,
                                                      tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, jp_root_dir / "linkdir")
    for bad in ["../x.ipynb", str(outside / "x.ipynb"), "linkdir/x.ipynb"]:
        result = await call("insert_cell", bad, source="x")
        assert result.is_error and "outside the workspace root" in result.output, bad
    assert list(outside.iterdir()) == []
    with pytest.raises(HostError, match="not a notebook path inside the root"):
        host.api_path("../x.ipynb")

    created = await call("insert_cell", "deep/er/nb.ipynb", source="print('deep')")
    assert created.data["action"] == "created"
    ran = await call("execute_cell", "deep/er/nb.ipynb", index=0)
    assert "deep" in ran.output
    missing = await call("read_cell", "nope.ipynb", index=0)
    assert missing.is_error and "does not exist" in missing.output
    (jp_root_dir / "broken.ipynb").write_text("{}")
    broken = await call("insert_cell", "broken.ipynb", check=False, source="x")
    assert broken.is_error and "broken.ipynb" in broken.output
    assert (jp_root_dir / "broken.ipynb").read_text() == "{}"
