"""JupyterNotebook on remote kernels: a real Jupyter Kernel Gateway, the server started with its URL.

``jupyter kernelgateway`` runs as a subprocess on 127.0.0.1 (with a token, and kernel listing on so sessions can be
shared), and the pytest-jupyter server is configured with ``c.GatewayClient.url``: its kernel, session and kernel spec
managers are then jupyter_server's Gateway* classes and every kernel lives in the gateway. The issue-3 notebook
scenario runs through the JupyterNotebook tool on :class:`ServerHost`, and the user's side is played through the
server's REST and WebSocket APIs as JupyterLab does (the server proxies both to the gateway).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from jupyter_server.gateway.gateway_client import GatewayClient
from traitlets.config import Config

from jupyterlab_ide_agent.host import ServerHost
from jupyterlab_ide_agent.host.execute import start_client
from jupyterlab_ide_agent.host.gateway import GatewayConnectionError
from tests import test_notebook_server as local_scenario
from tests.conftest import providers_config
from tests.servers import free_port, wait_until_answering

# The ServerHost fixtures and user-side helpers of the local-kernel scenario, reused unchanged on gateway kernels.
host, call = local_scenario.host, local_scenario.call
run_as_user, sessions_for = local_scenario.run_as_user, local_scenario.sessions_for

pytestmark = pytest.mark.timeout(180)


@dataclass
class Gateway:
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.url}/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return json.loads(body) if body else None

    def kernel_ids(self) -> set[str]:
        return {k["id"] for k in self.get("api/kernels")}

    def kernel_pid(self, kernel_id: str) -> int:
        """The process of a remote kernel: a child of the gateway whose command line names its connection file."""
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            if any(kernel_id in arg for arg in child.cmdline()):
                return child.pid
        raise AssertionError(f"no process for gateway kernel {kernel_id}")

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture(scope="module")
def kernel_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A Jupyter Kernel Gateway on a free local port, for this module; stopped (with its kernels) after."""
    home = tmp_path_factory.mktemp("gateway")
    port, token = free_port(), uuid.uuid4().hex
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "PYTHONUNBUFFERED": "1",
    }
    log = home / "gateway.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kernel_gateway",
                "--KernelGatewayApp.ip=127.0.0.1",
                f"--KernelGatewayApp.port={port}",
                "--KernelGatewayApp.port_retries=0",
                f"--KernelGatewayApp.auth_token={token}",
                "--JupyterWebsocketPersonality.list_kernels=True",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
        )
    gateway = Gateway(f"http://127.0.0.1:{port}", token, proc, log)
    try:
        wait_until_answering(proc, lambda: gateway.get("api"), "the kernel gateway", gateway.log_tail)
        yield gateway
    finally:
        # GatewayClient is a process-wide singleton: the next module's servers must not inherit this gateway. Here,
        # because a module fixture ends after every test's server has been cleaned up (through the gateway).
        GatewayClient.clear_instance()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def jp_server_config(fakes: dict[str, Any], kernel_gateway: Gateway) -> Config:
    """The server under test sends every kernel to the gateway (``--gateway-url``, ``--GatewayClient.auth_token``)."""
    GatewayClient.clear_instance()  # a process-wide singleton: never inherit another test's one
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"jupyterlab_ide_agent": True}},
            "GatewayClient": {"url": kernel_gateway.url, "auth_token": kernel_gateway.token},
            "IDEAgent": {"providers": providers_config(fakes), "main_model": "openai:gpt-5"},
        }
    )


async def test_the_server_runs_on_the_gateway(jp_serverapp: Any) -> None:
    assert jp_serverapp.gateway_config.gateway_enabled
    assert type(jp_serverapp.kernel_manager).__name__ == "GatewayMappingKernelManager"


async def test_variables_outputs_errors_on_a_remote_kernel(
    call, host: ServerHost, jp_fetch: Any, jp_root_dir: Path, kernel_gateway: Gateway
) -> None:
    first = await call("insert_execute_code_cell", source="x = 41\nprint('hello from the gateway')")
    assert not first.is_error, first.output
    assert "hello from the gateway" in first.output
    kid = first.data["kernel_id"]
    assert kid in kernel_gateway.kernel_ids()  # the kernel is the gateway's, under the gateway's id
    second = await call("insert_execute_code_cell", source="x + 1")
    assert not second.is_error and "Out[2]: 42" in second.output, second.output
    assert second.data["kernel_id"] == kid

    failed = await call("insert_execute_code_cell", source="def g():\n    raise KeyError('missing key')\ng()")
    assert failed.is_error and "KeyError: 'missing key'" in failed.output and "raise KeyError" in failed.output

    nb = nbformat.read(jp_root_dir / "nb.ipynb", as_version=4)
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "42" and nb.cells[1].execution_count == 2
    assert nb.cells[2].outputs[0]["ename"] == "KeyError"
    sessions = await sessions_for(jp_fetch, "nb.ipynb")  # what JupyterLab finds when it opens the notebook
    assert len(sessions) == 1 and sessions[0]["kernel"]["id"] == kid
    states = await host.notebook_states()
    assert states == [
        {"path": "nb.ipynb", "kernel_id": kid, "kernel_status": "idle", "execution_count": 3, "cell_count": 3}
    ]


async def test_interrupt_and_restart_a_remote_kernel(call, host: ServerHost) -> None:
    await call("insert_execute_code_cell", source="kept = [1, 2, 3]")
    running = asyncio.create_task(call("insert_execute_code_cell", source="import time\ntime.sleep(60)"))
    for _ in range(300):  # the gateway reports the kernel busy once the cell started
        if (await host.kernel_status("nb.ipynb"))["kernel_status"] == "busy":
            break
        await asyncio.sleep(0.1)
    interrupted = await call("interrupt_kernel")
    assert not interrupted.is_error and "Sent an interrupt" in interrupted.output
    slept = await asyncio.wait_for(running, 30)
    assert slept.is_error and "KeyboardInterrupt" in slept.output
    after = await call("execute_ipython", source="sum(kept)")
    assert not after.is_error and "6" in after.output

    looping = await call("insert_execute_code_cell", source="while True:\n    pass", timeout=1.5)
    assert looping.is_error and "ran past its 1.5 s timeout and was interrupted" in looping.output

    restarted = await call("restart_kernel")
    assert not restarted.is_error, restarted.output
    assert restarted.data["kernel_id"] == after.data["kernel_id"]  # same id: an open JupyterLab tab follows it
    gone = await call("execute_ipython", source="kept")
    assert gone.is_error and "NameError" in gone.output
    again = await call("execute_ipython", source="kept = 'back'\nkept")
    assert not again.is_error and "back" in again.output


async def test_a_notebook_open_in_jupyterlab_shares_its_remote_kernel(
    call, host: ServerHost, jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any, kernel_gateway: Gateway
) -> None:
    await call("create_notebook", "shared.ipynb")
    body = {"path": "shared.ipynb", "name": "shared.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    opened = json.loads((await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))).body)
    user_kernel = opened["kernel"]["id"]
    assert user_kernel in kernel_gateway.kernel_ids()
    assert await run_as_user(jp_ws_fetch, user_kernel, "user_var = 'from the user'") == {}

    ran = await call("insert_execute_code_cell", "shared.ipynb", source="agent_var = 41\nprint(user_var)")
    assert not ran.is_error, ran.output
    assert ran.data["kernel_id"] == user_kernel and "from the user" in ran.output
    seen = await run_as_user(jp_ws_fetch, user_kernel, "agent_var + 1")
    assert seen["data"]["text/plain"] == "42"
    assert len(await sessions_for(jp_fetch, "shared.ipynb")) == 1  # no second session

    await host.shutdown()  # the agent never stops a kernel it did not start
    assert user_kernel in jp_serverapp.kernel_manager and user_kernel in kernel_gateway.kernel_ids()


async def test_a_remote_kernel_that_dies_is_noticed_and_replaced(call, kernel_gateway: Gateway) -> None:
    first = await call("insert_execute_code_cell", source="x = 1")
    kid = first.data["kernel_id"]
    running = asyncio.create_task(call("insert_execute_code_cell", source="import time\ntime.sleep(60)"))
    await asyncio.sleep(1.0)
    os.kill(kernel_gateway.kernel_pid(kid), signal.SIGKILL)
    died = await asyncio.wait_for(running, 30)
    assert died.is_error and "the kernel died while running this cell" in died.output, died.output
    back = await call("execute_ipython", source="'x' in globals()")
    assert not back.is_error and "False" in back.output, back.output  # a fresh kernel


async def test_shutdown_stops_only_the_remote_kernels_it_started(
    call, host: ServerHost, jp_ws_fetch: Any, kernel_gateway: Gateway
) -> None:
    alone = (await call("insert_execute_code_cell", "alone.ipynb", source="1")).data["kernel_id"]
    watched = (await call("insert_execute_code_cell", "watched.ipynb", source="1")).data["kernel_id"]
    ws = await jp_ws_fetch("api", "kernels", watched, "channels")  # the user opened watched.ipynb
    try:
        await host.shutdown()
        remote = kernel_gateway.kernel_ids()
        assert alone not in remote and watched in remote
    finally:
        ws.close()


async def test_a_kernel_deleted_on_the_gateway_is_replaced(call, kernel_gateway: Gateway) -> None:
    first = await call("insert_execute_code_cell", source="x = 1")
    kernel_gateway.get(f"api/kernels/{first.data['kernel_id']}", method="DELETE")  # culled behind the server's back
    again = await call("execute_ipython", source="print('x' in globals())")
    assert not again.is_error and "False" in again.output, again.output
    assert again.data["kernel_id"] != first.data["kernel_id"]
    assert again.data["kernel_id"] in kernel_gateway.kernel_ids()


async def test_a_gateway_that_refuses_the_server_is_a_clear_error(call, jp_serverapp: Any) -> None:
    gateway = GatewayClient.instance()
    token = gateway.auth_token
    kid = (await call("insert_execute_code_cell", source="x = 1")).data["kernel_id"]
    gateway.auth_token = "not-the-token"  # e.g. a token rotated on the gateway but not in the server's config
    try:
        refused = await call("execute_ipython", source="x")
        assert refused.is_error and "Unauthorized" in refused.output and "401" in refused.output, refused.output
        assert "Traceback" not in refused.output
        with pytest.raises(GatewayConnectionError, match=r"401.*c\.GatewayClient\.auth_token"):
            await start_client(jp_serverapp.kernel_manager.get_kernel(kid), 10)
    finally:
        gateway.auth_token = token
    back = await call("execute_ipython", source="x + 1")
    assert not back.is_error and "2" in back.output, back.output
