"""Script tools on real processes: started in the background, watched, interrupted, and nothing left behind.

Everything goes through ToolRegistry.run as the agent loop does, except where the table itself is the subject.
Grace periods are short so the file runs in seconds; "nothing left" is checked on every pid a test saw.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from jupyterlab_ide_agent.tools import scripts
from jupyterlab_ide_agent.tools.base import ToolContext, ToolRegistry, ToolResult
from jupyterlab_ide_agent.tools.scripts import script_tools
from jupyterlab_ide_agent.workspace.processes import LineCounter, ProcessError, ProcessTable, read_tail

BUSY_PY = """
import time
t = time.time()
while time.time() - t < 30:
    pass
"""
STUBBORN_PY = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring INT and TERM", flush=True)
time.sleep(60)
"""
# a bash script whose child runs in the background: bash makes such children ignore SIGINT,
# so only the SIGTERM step reaches them, and killing bash first would orphan them
PARENT_SH = """
echo "parent $$"
python3 -c 'import time; [print("child", i, flush=True) or time.sleep(0.05) for i in range(1000)]' &
echo "child pid $!"
wait
"""


@pytest.fixture
async def table(tmp_path: Path):
    root = tmp_path / "ws"
    root.mkdir()
    t = ProcessTable(root, grace=(0.5, 0.5), kill_wait=2.0)
    yield t
    await t.stop_all(grace=(0.1, 0.1))


@pytest.fixture
def ctx(table: ProcessTable) -> ToolContext:
    return ToolContext(root=table.root, session_id="t", services={"processes": table})


@pytest.fixture
def call(ctx: ToolContext):
    registry = ToolRegistry(script_tools())

    async def _call(name: str, **args: Any) -> ToolResult:
        return await registry.run(name, args, ctx)

    return _call


def write(table: ProcessTable, name: str, text: str) -> str:
    (table.root / name).write_text(text)
    return name


async def until(pred: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def gone(pid: int) -> bool:
    """Not running and not a zombie: reaped."""
    return not psutil.pid_exists(pid)


async def finished(call: Any, pid: int) -> str:
    for _ in range(200):
        res = await call("CheckProcess", pid=pid)
        if "running for" not in res.output.splitlines()[0]:
            return res.output
        await asyncio.sleep(0.05)
    raise AssertionError("the process did not finish")


# ---------------------------------------------------------------- the seed's scenarios


async def test_python_script(call: Any, table: ProcessTable) -> None:
    write(table, "hello.py", "import sys\nprint('hello from', sys.version_info[0])\n")
    res = await call("ExecuteScript", script_path="hello.py")
    assert not res.is_error, res.output
    assert res.data and set(res.data) == {"pid", "command", "status", "log_path"}
    assert res.data["command"] == "python hello.py"
    out = await finished(call, res.data["pid"])
    assert "exited with code 0" in out and "hello from 3" in out
    assert (table.root / res.data["log_path"]).read_text() == "hello from 3\n"
    assert res.data["log_path"].startswith(".ide-agent/logs/") and res.data["log_path"].endswith(".log")


async def test_bash_script(call: Any, table: ProcessTable) -> None:
    write(table, "run.sh", "echo one\necho two >&2\nexit 3\n")
    res = await call("ExecuteScript", script_path="run.sh")
    out = await finished(call, res.data["pid"])
    assert "exited with code 3" in out and "one" in out and "two" in out  # stderr is in the log too


async def test_script_with_arguments_and_env(call: Any, table: ProcessTable) -> None:
    write(table, "args.py", "import os, sys\nprint(sys.argv[1:], os.environ['MY_VAR'], os.getcwd())\n")
    (table.root / "sub").mkdir()
    res = await call("ExecuteScript", script_path="args.py", args=["--epochs", "3", "a b"],
                     env_vars={"MY_VAR": "xyz"}, cwd="sub")
    assert res.data["command"] == "python args.py --epochs 3 'a b'"
    out = await finished(call, res.data["pid"])
    assert f"['--epochs', '3', 'a b'] xyz {table.root / 'sub'}" in out


async def test_interpreter_choice(call: Any, table: ProcessTable) -> None:
    write(table, "job.txt", "echo via bash $BASH_VERSION\n")
    res = await call("ExecuteScript", script_path="job.txt")
    assert res.is_error and "interpreter" in res.output
    res = await call("ExecuteScript", script_path="job.txt", interpreter="bash")
    assert "via bash 5" in await finished(call, res.data["pid"])
    tool = write(table, "tool", "#!/bin/sh\necho direct $1\n")
    os.chmod(table.root / tool, 0o755)
    res = await call("ExecuteScript", script_path="tool", args=["ok"])
    assert "direct ok" in await finished(call, res.data["pid"])


async def test_plain_command(call: Any) -> None:
    res = await call("ExecuteScript", command="echo abc | tr a-z A-Z && exit 4")
    out = res.output if "exited" in res.output else await finished(call, res.data["pid"])
    assert "ABC" in out and "exited with code 4" in out


async def test_command_that_finishes_at_once_is_reported_with_its_output(call: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(scripts, "STARTUP_WAIT", 5.0)  # the wait ends at the exit; a loaded machine may be slow
    res = await call("ExecuteScript", command="echo quick")
    assert "exited with code 0" in res.output and "quick" in res.output and not res.is_error
    res = await call("ExecuteScript", command="nonexistent-command-xyz")
    assert res.is_error and "exited with code 127" in res.output and "not found" in res.output


async def test_interrupt(call: Any, table: ProcessTable) -> None:
    write(table, "loop.py", "import time\ntry:\n    print('ready', flush=True)\n    time.sleep(60)\n"
                            "except KeyboardInterrupt:\n    print('bye')\n")
    res = await call("ExecuteScript", script_path="loop.py")
    pid = res.data["pid"]
    await until(lambda: table.check(pid, 1)["tail"] == ["ready"])  # its handler is in place
    stop = await call("InterruptProcess", pid=pid)
    assert not stop.is_error and "SIGINT ended it" in stop.output and "exit code 0" in stop.output
    assert stop.data["status"] == "interrupted" and gone(pid)
    check = await call("CheckProcess", pid=pid)
    assert "interrupted (after SIGINT)" in check.output and "bye" in check.output
    again = await call("InterruptProcess", pid=pid)
    assert "already finished" in again.output


async def test_cpu_and_memory_monitoring(call: Any, table: ProcessTable) -> None:
    write(table, "busy.py", BUSY_PY)
    pid = (await call("ExecuteScript", script_path="busy.py")).data["pid"]
    await asyncio.sleep(0.3)
    table.check(pid)
    await asyncio.sleep(0.5)
    info = table.check(pid)
    assert info["status"] == "running" and info["cpu_percent"] > 1 and info["rss_bytes"] > 1_000_000
    assert info["processes"] == 1
    out = (await call("CheckProcess", pid=pid)).output
    assert "CPU" in out and "MB (RSS)" in out and "1 process" in out
    await call("InterruptProcess", pid=pid, force=True)


async def test_missing_script_gives_a_clear_error(call: Any, table: ProcessTable) -> None:
    write(table, "train.py", "")
    res = await call("ExecuteScript", script_path="trian.py")
    assert res.is_error and "does not exist" in res.output and "did you mean 'train.py'" in res.output
    assert not table.pids()


# ---------------------------------------------------------------- the scenarios


async def test_progress_checked_twice_then_interrupted_leaves_nothing(call: Any, table: ProcessTable) -> None:
    write(table, "parent.sh", PARENT_SH)
    res = await call("ExecuteScript", script_path="parent.sh")
    pid = res.data["pid"]
    await until(lambda: table.check(pid, 0)["output_lines"] >= 5)
    first = table.check(pid, 5)
    await asyncio.sleep(0.4)
    second = table.check(pid, 5)
    assert second["output_lines"] > first["output_lines"] and second["tail"] != first["tail"]
    assert second["tail"][-1].startswith("child ") and second["processes"] == 2  # bash and its child
    assert second["rss_bytes"] > 0 and second["cpu_percent"] >= 0
    out = (await call("CheckProcess", pid=pid, tail_lines=3)).output
    assert "running for" in out and "2 processes" in out and "--- last 3 lines ---" in out
    lines = (table.root / res.data["log_path"]).read_text().splitlines()
    child = int(next(line for line in lines if line.startswith("child pid ")).split()[2])
    seen = {pid, child} | {p.pid for p in table.get(pid).tree()}

    stop = await call("InterruptProcess", pid=pid)
    assert not stop.is_error, stop.output
    assert "SIGTERM ended it" in stop.output  # the background child ignores SIGINT, as bash arranges
    assert all(gone(p) for p in seen), [(p, psutil.Process(p).status()) for p in seen if not gone(p)]
    assert not [p for p in psutil.process_iter() if _pgid(p.pid) == pid]
    assert table.check(pid)["processes"] == 0


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


async def test_process_ignoring_int_and_term_is_killed(call: Any, table: ProcessTable) -> None:
    write(table, "stubborn.py", STUBBORN_PY)
    pid = (await call("ExecuteScript", script_path="stubborn.py")).data["pid"]
    await until(lambda: table.check(pid, 1)["tail"] == ["ignoring INT and TERM"])
    t0 = time.monotonic()
    stop = await call("InterruptProcess", pid=pid)
    assert "SIGKILL ended it" in stop.output and "exit code -9" in stop.output
    assert 0.9 < time.monotonic() - t0 < 3  # both grace periods, then at once
    assert stop.data["status"] == "killed" and gone(pid)


async def test_force_kills_at_once(call: Any, table: ProcessTable) -> None:
    write(table, "stubborn.py", STUBBORN_PY)
    pid = (await call("ExecuteScript", script_path="stubborn.py")).data["pid"]
    t0 = time.monotonic()
    stop = await call("InterruptProcess", pid=pid, force=True)
    assert "SIGKILL ended it" in stop.output and time.monotonic() - t0 < 0.5 and gone(pid)


async def test_orphans_that_leave_the_group_are_stopped_and_reaped(table: ProcessTable) -> None:
    # the script double-forks a child into a new session, then exits: only the subreaper still sees it
    code = ("import subprocess, sys; p = subprocess.Popen(['sleep', '60'], start_new_session=True); "
            "print(p.pid, flush=True)")
    mp = table.start([sys.executable, "-c", code])
    assert await table.wait(mp.pid, 5)
    await until(lambda: table.check(mp.pid, 1)["tail"])
    orphan = int(table.check(mp.pid, 1)["tail"][0])
    info = table.check(mp.pid)
    assert info["status"] == "exited" and info["processes"] == 1 and psutil.Process(orphan).ppid() != 1
    res = await table.interrupt(mp.pid)
    assert res["signal"] == "SIGINT" and not res["was_running"] and gone(orphan)


async def test_stop_all_leaves_nothing_running(table: ProcessTable) -> None:
    (table.root / "stubborn.py").write_text(STUBBORN_PY)
    (table.root / "parent.sh").write_text(PARENT_SH)
    procs = [table.start([sys.executable, "stubborn.py"]), table.start(["bash", "parent.sh"]),
             table.start("sleep 30", shell=True)]
    await asyncio.sleep(0.3)
    seen = {p.pid for mp in procs for p in mp.tree()} | {mp.pid for mp in procs}
    sups = {mp.supervisor.pid for mp in procs}
    t0 = time.monotonic()
    results = await table.stop_all(grace=(0.2, 0.2))
    assert time.monotonic() - t0 < 2 and len(results) == 3 and not any(r["remaining"] for r in results)
    assert all(gone(p) for p in seen | sups)
    assert {table.check(mp.pid)["status"] for mp in procs} <= {"interrupted", "killed"}
    with pytest.raises(ProcessError, match="session has ended"):
        table.start(["true"])


async def test_pids_not_started_here_are_refused(call: Any) -> None:
    for pid in (os.getpid(), 1):
        for name, extra in (("InterruptProcess", {"force": True}), ("CheckProcess", {})):
            res = await call(name, pid=pid, **extra)
            assert res.is_error and "was not started by ExecuteScript in this session" in res.output
    assert psutil.pid_exists(os.getpid())


async def test_path_escapes_are_refused(call: Any, table: ProcessTable, tmp_path: Path) -> None:
    outside = tmp_path / "evil.py"
    outside.write_text("print('escaped')\n")
    os.symlink(outside, table.root / "link.py")
    os.symlink(tmp_path, table.root / "linkdir")
    for path in ("../evil.py", str(outside), "link.py", "linkdir/evil.py"):
        res = await call("ExecuteScript", script_path=path)
        assert res.is_error and "outside the workspace root" in res.output, path
    res = await call("ExecuteScript", command="pwd", cwd="..")
    assert res.is_error and "outside the workspace root" in res.output
    assert not table.pids()


async def test_returns_at_once_for_a_long_script(call: Any, table: ProcessTable) -> None:
    write(table, "long.py", "import time\ntime.sleep(30)\n")
    t0 = time.monotonic()
    res = await call("ExecuteScript", script_path="long.py")
    took = time.monotonic() - t0
    assert took < 0.75, took  # STARTUP_WAIT (0.25 s) included
    pid = res.data["pid"]
    assert f"Started pid {pid} in the background" in res.output and f"CheckProcess(pid={pid})" in res.output
    assert res.data["status"] == "running" and psutil.Process(pid).is_running()


async def test_bad_arguments_are_clear(call: Any, ctx: ToolContext) -> None:
    res = await call("ExecuteScript")
    assert res.is_error and "exactly one of" in res.output
    res = await call("ExecuteScript", script_path="a.py", command="ls")
    assert res.is_error and "exactly one of" in res.output
    res = await call("ExecuteScript", command="ls", args=["-l"])
    assert res.is_error and "whole command line" in res.output
    res = await call("ExecuteScript", command="env", env_vars={"A=B": "1"})
    assert res.is_error and "invalid environment variable name(s) ['A=B']" in res.output
    res = await call("ExecuteScript", script_path=".")
    assert res.is_error and "not a file" in res.output
    res = await ToolRegistry(script_tools()).run("CheckProcess", {"pid": 1}, ToolContext(ctx.root, "t"))
    assert res.is_error and "not available" in res.output


async def test_check_lists_the_session_and_snapshot_feeds_the_workspace(call: Any, table: ProcessTable) -> None:
    assert "No background processes" in (await call("CheckProcess")).output
    a = (await call("ExecuteScript", command="echo done")).data["pid"]
    b = (await call("ExecuteScript", command="echo working; sleep 30")).data["pid"]
    await until(lambda: table.check(b, 1)["tail"] == ["working"])
    assert await table.wait(a, 5)
    listing = (await call("CheckProcess")).output
    assert f"pid {a}: exited with code 0" in listing and f"pid {b}: running" in listing
    snap = {s["pid"]: s for s in table.snapshot()}
    assert snap[b]["status"] == "running" and snap[b]["tail"] == ["working"] and snap[b]["rss_mb"] > 0
    assert {"pid", "command", "status", "cpu_percent", "rss_mb", "tail", "log_path"} <= set(snap[a])


# ---------------------------------------------------------------- the log file


def test_tail_reads_only_the_end_of_a_big_log(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    with open(log, "wb") as fh:
        fh.write(b"x" * 1000 + b"\n")
        fh.write(b"".join(b"line %d\n" % i for i in range(2_000_000)))  # ~25 MB
        fh.write(b"epoch 1:  10%\repoch 1:  50%\repoch 1: 100%\n\x1b[32mgreen\x1b[0m\n" + b"y" * 5000)
    t0 = time.perf_counter()
    tail = read_tail(log, 4)
    assert time.perf_counter() - t0 < 0.2  # reads ~64 KB, not 25 MB
    assert tail[:3] == ["line 1999999", "epoch 1: 100%", "green"]
    assert tail[3].startswith("yyyy") and tail[3].endswith("[+4500 chars]")
    counter = LineCounter(log)
    lines, complete = counter.advance(8 << 20)
    assert not complete and counter.offset == 8 << 20 and 0 < lines < 2_000_000  # a budget bounds each call
    while not counter.advance(8 << 20)[1]:
        pass
    assert counter.advance(1)[0] == 2_000_000 + 4  # plus the last, unterminated line
    assert read_tail(log, 0) == [] and read_tail(tmp_path / "none.log", 5) == []


async def test_the_grace_periods_come_from_config(tmp_path: Path) -> None:
    """c.IDEAgent.script_grace sets how long InterruptProcess waits between SIGINT, SIGTERM and SIGKILL."""
    from traitlets.config import Config

    from jupyterlab_ide_agent import IDEAgent

    agent = IDEAgent(workspace_dir=tmp_path, config=Config({"IDEAgent": {"script_grace": 30.0}}))
    try:
        assert agent.processes.grace == (30.0, 30.0)
    finally:
        await agent.cleanup()
