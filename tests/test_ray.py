"""Scripts on a real Ray cluster: a local head (dashboard and Jobs API on 127.0.0.1) started once for this module.

The agent submits a script that prints progress, checks it twice (the output grows), stops it and sees it end;
a failing job shows its error; the workspace state and the REST routes list Ray jobs beside local processes; the
paths without a cluster (not configured, not installed, unreachable, silent) fail fast with what to do.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from jupyterlab_ide_agent.tools.base import ToolContext, ToolRegistry, ToolResult
from jupyterlab_ide_agent.tools.scripts import script_tools
from jupyterlab_ide_agent.workspace.processes import ProcessTable
from jupyterlab_ide_agent.workspace.ray_jobs import RayJobTable
from jupyterlab_ide_agent.workspace.state import WorkspaceState
from tests.conftest import providers_config
from tests.fakes.base import ScriptedTool, ScriptedTurn
from tests.servers import free_ports

pytestmark = pytest.mark.timeout(300)
pytest.importorskip("ray.job_submission", reason="Ray is an optional extra: pip install '.[ray]'")

PROGRESS_PY = """import time
for i in range(60):
    print(f"step {i}", flush=True)
    time.sleep(0.5)
"""
FAILING_PY = """import os
print("files:", sorted(os.listdir(".")), flush=True)
raise RuntimeError("the dataset is missing")
"""


def _ours(session_id: int, temp_dir: str) -> list[psutil.Process]:
    """Every process of our head: its session (``ray start`` ran in a new one), their descendants (job drivers
    may start their own sessions), and anything naming our temp dir. Found by id, never by a process name, so a
    Ray cluster of someone else on this machine is left alone (``ray stop`` would stop every one)."""
    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getsid(p.pid) == session_id or temp_dir in " ".join(p.info["cmdline"] or []):
                found[p.pid] = p
                found.update({c.pid: c for c in p.children(recursive=True)})
        except (OSError, psutil.Error):
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A one-node Ray head with its dashboard on free ports; every process of it is gone afterwards."""
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's unix sockets live under it
    gcs, dashboard, client, agent = free_ports(4)
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    # jobs run `python ...` from the head's PATH: make it this interpreter's, activated venv or not
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "RAY_USAGE_STATS_ENABLED": "0"}
    started = subprocess.Popen(
        [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}", "--dashboard-host=127.0.0.1",
         f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
         f"--dashboard-agent-listen-port={agent}", "--num-cpus=1", "--include-dashboard=true",
         "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        out, _ = started.communicate(timeout=180)
        assert started.returncode == 0, out.decode(errors="replace")[-3000:]
        deadline = time.monotonic() + 120
        while True:  # the Jobs API answers a little after the dashboard itself
            try:
                with urllib.request.urlopen(f"{address}/api/jobs/", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the Ray Jobs API did not come up"
            time.sleep(0.5)
        yield address
    finally:
        procs = _ours(started.pid, temp_dir)
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=3)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=10)
        left = [p for p in _ours(started.pid, temp_dir) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"Ray processes left behind: {left}"
        shutil.rmtree(temp_dir, ignore_errors=True)


async def until(pred: Any, timeout: float = 90.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await pred()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(every)
    return value


def registry_call(ctx: ToolContext) -> Any:
    registry = ToolRegistry(script_tools("http://ray-head:8265"))

    async def call(name: str, **args: Any) -> ToolResult:
        return await registry.run(name, args, ctx)

    return call


def tool_results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "tool_result"]


# ---------------------------------------------------------------- through the agent


async def test_the_agent_runs_a_script_on_ray_checks_it_twice_and_stops_it(
        ray_head: str, fakes: Any, make_agent: Any, tmp_path: Path) -> None:
    (tmp_path / "progress.py").write_text(PROGRESS_PY)
    agent = make_agent("openai", ray_address=ray_head)
    fake = fakes["openai"]

    async def turn(prompt: str, *calls: ScriptedTool) -> dict[str, Any]:
        fake.script(ScriptedTurn(tool_calls=list(calls)), ScriptedTurn(text="ok"))
        events = [e async for e in agent.run(prompt)]
        assert events[-1]["reason"] == "completed", events[-1]
        [result] = tool_results(events)
        return result

    started = await turn("Train on the cluster.", ScriptedTool("ExecuteScript", {
        "script_path": "progress.py", "target": "ray", "env_vars": {"RUN": "1"}}))
    assert not started["is_error"], started["output"]
    job = started["data"]["pid"]
    assert job.startswith("ray-") and started["data"]["target"] == "ray"
    assert f"Submitted Ray job {job}" in started["output"] and "keeps running" in started["output"]
    spec = next(t for t in fake.requests[0]["body"]["tools"] if t["name"] == "ExecuteScript")
    assert spec["parameters"]["properties"]["target"]["enum"] == ["local", "ray"]

    async def check() -> dict[str, Any]:
        return await turn("How is it going?", ScriptedTool("CheckProcess", {"pid": job, "tail_lines": 5}))

    first = await until(lambda: _when(check(), lambda r: "step 2" in r["output"]))
    assert "RUNNING for" in first["output"] and "python progress.py" in first["output"]
    assert "cluster in use: CPU" in first["output"] and f"/#/jobs/{job}" in first["output"]
    lines = _steps(first["output"])
    second = await until(lambda: _when(check(), lambda r: max(_steps(r["output"])) > max(lines)))
    assert "RUNNING for" in second["output"]
    # the workspace state rides on each prompt: the model was told about the job
    assert f"Ray job {job} (python progress.py): running" in json.dumps(fake.requests[-2]["body"])

    stopped = await turn("Stop it.", ScriptedTool("InterruptProcess", {"pid": job}))
    assert not stopped["is_error"], stopped["output"]
    assert f"{job} stopped: Ray reports STOPPED" in stopped["output"] and "last lines ---\nstep " in stopped["output"]
    rows = await agent.workspace.process_states()
    assert [(r["pid"], r["status"], r["target"]) for r in rows] == [(job, "stopped", "ray")]
    assert not [r for r in rows if r["status"] in ("running", "pending")]
    log = (tmp_path / rows[0]["log_path"]).read_text()
    assert "step 0\nstep 1\n" in log  # Ray's complete log, mirrored into the workspace
    again = await turn("Stop it again.", ScriptedTool("InterruptProcess", {"pid": job}))
    assert "had already finished on Ray (STOPPED)" in again["output"]


async def _when(result: Any, ok: Any) -> Any:
    value = await result
    return value if ok(value) else None


def _steps(text: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("step ")] or [-1]


# ---------------------------------------------------------------- the tools directly


async def test_a_failing_job_shows_its_error_and_heavy_dirs_are_not_uploaded(ray_head: str, tmp_path: Path) -> None:
    (tmp_path / "fail.py").write_text(FAILING_PY)
    for heavy in (".git", "node_modules", ".venv"):
        (tmp_path / heavy).mkdir()
        (tmp_path / heavy / "blob").write_bytes(b"x" * 1000)
    jobs = RayJobTable(ray_head, tmp_path, "s-fail", timeout=10)
    call = registry_call(ToolContext(tmp_path, "s-fail", services={"ray_jobs": jobs}))
    try:
        res = await call("ExecuteScript", script_path="fail.py", target="ray")
        assert not res.is_error, res.output
        job = res.data["pid"]

        async def ended() -> ToolResult | None:
            r = await call("CheckProcess", pid=job)
            return r if "FAILED after" in r.output else None

        out = (await until(ended)).output
        assert "driver exit code 1" in out and "Ray says: Job entrypoint command failed" in out
        assert "RuntimeError: the dataset is missing" in out  # the error tail
        files = next(line for line in out.splitlines() if line.startswith("files:"))
        assert "fail.py" in files and not any(d in files for d in (".git", "node_modules", ".venv", ".ide-agent"))
        listing = (await call("CheckProcess")).output
        assert f"{job} (Ray): FAILED after" in listing
        # a restarted server's session adopts its job again; another session cannot touch it
        reopened = RayJobTable(ray_head, tmp_path, "s-fail")
        assert (await reopened.check(job))["ray_status"] == "FAILED"
        stranger = registry_call(ToolContext(tmp_path, "other", services={"ray_jobs": RayJobTable(
            ray_head, tmp_path, "other")}))
        res = await stranger("InterruptProcess", pid=job)
        assert res.is_error and "is not a Ray job of this session" in res.output
    finally:
        jobs.close()


async def test_workspace_lists_ray_jobs_beside_local_processes(ray_head: str, tmp_path: Path) -> None:
    """Also the shared-file-system mode: nothing uploaded, the job runs in the same directory."""
    (tmp_path / "sub").mkdir()
    local = ProcessTable(tmp_path, grace=(0.5, 0.5), kill_wait=2.0)
    jobs = RayJobTable(ray_head, tmp_path, "s-side", upload_working_dir=False)
    state = WorkspaceState(tmp_path, processes=local, ray_jobs=jobs)
    call = registry_call(ToolContext(tmp_path, "s-side", services={"processes": local, "ray_jobs": jobs}))
    try:
        pid = (await call("ExecuteScript", command="echo local here; sleep 30")).data["pid"]
        where = "python -c 'import os; print(\"in\", os.getcwd(), flush=True)'; sleep 30"
        job = (await call("ExecuteScript", target="ray", cwd="sub", command=where)).data["pid"]

        async def both_running() -> list[dict[str, Any]] | None:
            rows = (await state.to_json())["processes"]
            ray_row = next(r for r in rows if r["target"] == "ray")
            return rows if ray_row["status"] == "running" and ray_row["tail"][-1:] != [] and \
                ray_row["tail"][-1].startswith("in ") else None

        rows = await until(both_running)
        by_target = {r["target"]: r for r in rows}
        assert by_target["local"]["pid"] == pid and by_target["ray"]["pid"] == job
        assert by_target["ray"]["tail"][-1] == f"in {tmp_path / 'sub'}"  # after Ray's own first lines
        assert by_target["ray"]["cwd"] == "sub" and by_target["ray"]["cluster"]["CPU"][1] == 1.0
        summary = await state.summary()
        assert f"Process {pid} (echo local here; sleep 30): running" in summary
        assert f"Ray job {job} (python -c" in summary and ": running" in summary
        res = await call("InterruptProcess", pid=job)
        assert "stopped: Ray reports STOPPED" in res.output, res.output
    finally:
        jobs.close()
        await local.stop_all(grace=(0.1, 0.1))


async def test_without_a_cluster_the_tools_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    call = registry_call(ToolContext(tmp_path, "s", services={"processes": ProcessTable(tmp_path)}))
    for res in (await call("ExecuteScript", script_path="train.py", target="ray"),
                await call("CheckProcess", pid="ray-0123456789")):
        assert res.is_error
        assert "No Ray cluster is configured" in res.output and "c.IDEAgent.ray_address" in res.output
        assert 'pip install "jupyterlab-ide-agent[ray]"' in res.output
    [spec] = [t for t in ToolRegistry(script_tools()).specs() if t.name == "ExecuteScript"]
    assert "has not configured" in spec.parameters["properties"]["target"]["description"]


async def test_unreachable_and_silent_clusters_fail_fast(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    [closed] = free_ports(1)
    silent = socket.socket()  # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        for address, expected in ((f"http://127.0.0.1:{closed}", "Cannot reach the Ray cluster"),
                                  (f"http://127.0.0.1:{silent.getsockname()[1]}", "")):
            jobs = RayJobTable(address, tmp_path, "s", timeout=1.0)
            call = registry_call(ToolContext(tmp_path, "s", services={"ray_jobs": jobs}))
            res = await call("ExecuteScript", script_path="train.py", target="ray")
            assert res.is_error and "Could not submit it to Ray" in res.output and address in res.output
            assert expected in res.output and "c.IDEAgent.ray_address" in res.output
            assert not jobs.ids()
    finally:
        silent.close()


def test_ray_missing_is_explained_and_never_imported_with_the_package(tmp_path: Path) -> None:
    """In a fresh interpreter where ``import ray`` fails, as without the extra."""
    code = """
import asyncio, sys
sys.modules["ray"] = None  # what an environment without the [ray] extra looks like to `import ray`
import jupyterlab_ide_agent.extension, jupyterlab_ide_agent.handlers, jupyterlab_ide_agent.agent.loop
from jupyterlab_ide_agent.workspace.ray_jobs import RayJobError, RayJobTable
assert "ray.job_submission" not in sys.modules
try:
    asyncio.run(RayJobTable("http://127.0.0.1:8265", sys.argv[1], "s").submit("true", sys.argv[1], "true"))
except RayJobError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Ray is not installed" in out.stdout and 'pip install "jupyterlab-ide-agent[ray]"' in out.stdout


# ---------------------------------------------------------------- REST


@pytest.fixture
def jp_server_config(fakes: dict[str, Any], ray_head: str) -> Config:
    return Config({
        "ServerApp": {"jpserver_extensions": {"jupyterlab_ide_agent": True}},
        "IDEAgent": {"providers": providers_config(fakes), "main_model": "openai:gpt-5", "ray_address": ray_head},
    })


async def test_rest_lists_and_interrupts_a_ray_job(
        ray_head: str, jp_fetch: Any, jp_serverapp: Any, jp_root_dir: Path) -> None:
    created = json.loads((await jp_fetch("ide-agent", "sessions", method="POST", body="{}")).body)
    agent = jp_serverapp.web_app.settings["ide_agent_sessions"].get(created["id"]).agent
    row = await agent.ray_jobs.submit("sleep 60", Path(jp_root_dir), "sleep 60")
    job = row["pid"]
    state = json.loads((await jp_fetch("ide-agent", "sessions", created["id"], "workspace",
                                       params={"scan": "0"})).body)
    assert [(p["pid"], p["target"]) for p in state["processes"]] == [(job, "ray")]
    stopped = json.loads((await jp_fetch("ide-agent", "sessions", created["id"], "processes", job, "interrupt",
                                         method="POST", body="{}")).body)
    assert stopped["pid"] == job and stopped["status"] == "stopped" and stopped["was_running"]
    for unknown in ("ray-0000000000", "4242"):
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("ide-agent", "sessions", created["id"], "processes", unknown, "interrupt",
                           method="POST", body="{}")
        assert err.value.code == 404, err.value
    # deleting the session leaves its Ray jobs to the cluster: a training run may be meant to outlive the chat
    survivor = (await agent.ray_jobs.submit("sleep 60", Path(jp_root_dir), "sleep 60"))["pid"]
    await jp_fetch("ide-agent", "sessions", created["id"], method="DELETE")
    later = RayJobTable(ray_head, jp_root_dir, created["id"])
    assert (await until(lambda: _when(later.check(survivor), lambda r: r["ray_status"] == "RUNNING")))
    assert (await later.stop(survivor))["ray_status"] == "STOPPED"
    later.close()
