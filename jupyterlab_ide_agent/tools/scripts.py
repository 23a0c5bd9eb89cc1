"""Script tools: ExecuteScript, CheckProcess and InterruptProcess, on this machine or on a Ray cluster.

Long jobs (training, data processing, a server) must not hold the agent's turn: ExecuteScript starts them in the
background and returns at once with a pid; the model polls with CheckProcess while it keeps working, and stops them
with InterruptProcess. Local scripts run in the session's :class:`ProcessTable` (``ctx.services["processes"]``);
with ``target="ray"`` they are Ray jobs in its :class:`RayJobTable` (``ctx.services["ray_jobs"]``, present when
``c.IDEAgent.ray_address`` is set), named by a string id instead of a pid. Paths go through :func:`resolve_in_root`.
Every result's ``data`` is ``{"pid", "command", "status", "log_path"}`` (plus ``"target": "ray"`` for Ray jobs),
what the workspace state tracks.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from ..workspace.processes import ProcessError, ProcessTable
from ..workspace.ray_client import NOT_CONFIGURED, RayJobError
from ..workspace.ray_jobs import RayJobTable
from .base import Tool, ToolContext, ToolError, ToolResult
from .paths import display_path, resolve_in_root
from .script_text import duration, format_check, format_ray_check, format_ray_stop, process_state, ray_row

#: ExecuteScript waits this long so a command that fails (or finishes) at once is reported with its output
STARTUP_WAIT = 0.25
INTERPRETERS = {".py": "python", ".sh": "bash", ".bash": "bash"}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _table(ctx: ToolContext) -> ProcessTable:
    table = ctx.services.get("processes")
    if table is None:
        raise ToolError(
            "Background processes are not available in this session (no process table is set up). "
            "Run short commands from a notebook cell instead."
        )
    return table


def _ray_table(ctx: ToolContext) -> RayJobTable:
    table = ctx.services.get("ray_jobs")
    if table is None:
        raise ToolError(NOT_CONFIGURED)
    return table


def _data(info: dict[str, Any]) -> dict[str, Any]:
    data = {k: info.get(k) for k in ("pid", "command", "status", "log_path")}
    return {**data, "target": "ray"} if info.get("target") == "ray" else data


def _target_help(ray_address: str | None) -> str:
    if ray_address:
        return ("'local' (default): on this machine. 'ray': submitted as a Ray job to the cluster at "
                f"{ray_address}; `cwd` is its working directory (uploaded to the cluster unless the server shares "
                "its file system), only `env_vars` are set there, and the job keeps running if this chat is "
                "deleted. Check and stop it with its id ('ray-...') like a pid.")
    return "'local' (default). 'ray' needs a Ray cluster, which this server has not configured."


class ExecuteScript(Tool):
    name = "ExecuteScript"
    runs_code = True
    description = (
        "Start a Python or Bash script, or a shell command, in the BACKGROUND and return at once with its pid. "
        "Use it for anything that may take more than a few seconds (training, data processing, downloads, servers); "
        "keep working while it runs, poll it with CheckProcess(pid) and stop it with InterruptProcess(pid). "
        "Give exactly one of `script_path` (a file in the workspace; interpreter 'auto' picks python for .py and "
        "bash for .sh) or `command` (a bash command line; pipes and && work). stdout and stderr go to a log file "
        "under .ide-agent/logs/. Python output is unbuffered, so progress shows up as it is printed."
    )

    def __init__(self, ray_address: str | None = None) -> None:
        if ray_address:
            self.description += (" With target='ray' it runs as a job on the Ray cluster instead (for work that "
                                 "needs the cluster's CPUs, GPUs or memory).")
        self.parameters = _schema(
            {
                "script_path": {"type": "string", "description": "Script to run, relative to the workspace root."},
                "command": {"type": "string", "description": "A shell command line, instead of script_path."},
                "interpreter": {"type": "string", "enum": ["auto", "python", "bash"], "default": "auto",
                                "description": "How to run script_path; 'auto' decides by the file extension."},
                "args": {"type": "array", "items": {"type": "string"}, "default": [],
                         "description": "Arguments passed to the script."},
                "env_vars": {"type": "object", "additionalProperties": {"type": "string"},
                             "description": "Extra environment variables, e.g. {\"EPOCHS\": \"3\"}."},
                "cwd": {"type": "string", "default": ".",
                        "description": "Working directory, relative to the workspace root (default: the root)."},
                "target": {"type": "string", "enum": ["local", "ray"], "default": "local",
                           "description": f"Where it runs. {_target_help(ray_address)}"},
                "ray_resources": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"num_cpus": {"type": "number", "minimum": 0},
                                   "num_gpus": {"type": "number", "minimum": 0}},
                    "description": "target 'ray' only: CPUs/GPUs Ray reserves for the script's own process.",
                },
            },
            [],
        )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        on_ray = args.get("target", "local") == "ray"
        table = None if on_ray else _table(ctx)
        ray_table = _ray_table(ctx) if on_ray else None
        if args.get("ray_resources") and not on_ray:
            raise ToolError("`ray_resources` goes with target 'ray'.")
        script, command = args.get("script_path"), args.get("command")
        if bool(script) == bool(command):
            raise ToolError("Give exactly one of `script_path` (a script file) or `command` (a shell command line).")
        cwd = resolve_in_root(ctx.root, args.get("cwd", "."), must_exist=True)
        if not cwd.is_dir():
            raise ToolError(f"cwd {args['cwd']!r} is not a directory")
        if command and (args.get("args") or args.get("interpreter", "auto") != "auto"):
            raise ToolError("`args` and `interpreter` go with script_path; with `command`, write the whole "
                            "command line (arguments included) in `command`.")
        if ray_table is not None:
            return await self._submit(ray_table, args, ctx, cwd)
        assert table is not None
        if command:
            argv, display = command, command
        else:
            argv, display = self._script_argv(script, args, ctx)
        try:
            proc = await asyncio.to_thread(table.start, argv, cwd, args.get("env_vars"), bool(command),
                                           display=display)
            await table.wait(proc.pid, STARTUP_WAIT)
            info = await asyncio.to_thread(table.check, proc.pid, 20)
        except ProcessError as exc:
            raise ToolError(f"Could not start it: {exc}") from exc
        if info["status"] != "running":  # finished or failed at once: report it like CheckProcess would
            return ToolResult(format_check(info, 20), is_error=info["exit_code"] != 0, data=_data(info))
        pid = info["pid"]
        return ToolResult(
            f"Started pid {pid} in the background: {display}\n"
            f"Output goes to {info['log_path']}.\n"
            f"Check it with CheckProcess(pid={pid}) (status, CPU, memory, last lines); "
            f"stop it with InterruptProcess(pid={pid}).",
            data=_data(info),
        )

    async def _submit(self, table: RayJobTable, args: dict[str, Any], ctx: ToolContext, cwd: Path) -> ToolResult:
        """A Ray job: the entrypoint names the script relative to ``cwd``, which becomes the job's working dir."""
        if args.get("command"):
            entrypoint = display = args["command"]
        else:
            path, kind = self._script(args["script_path"], args, ctx, ray=True)
            try:
                where = path.relative_to(cwd).as_posix()
            except ValueError:
                if table.upload_working_dir:
                    raise ToolError(f"{display_path(ctx.root, path)} is outside cwd {args.get('cwd', '.')!r}: only "
                                    "cwd is uploaded to the Ray cluster. Set cwd to a folder that holds the script."
                                    ) from None
                where = str(path)
            extra = [str(a) for a in args.get("args", [])]
            entrypoint = shlex.join([kind, where, *extra])
            display = shlex.join([kind, display_path(ctx.root, path), *extra])
        bad = [k for k in args.get("env_vars") or {} if not k or "=" in k or "\0" in k]
        if bad:
            raise ToolError(f"invalid environment variable name(s) {bad}")
        try:
            row = await table.submit(entrypoint, cwd, display, args.get("env_vars"), args.get("ray_resources"))
        except RayJobError as exc:
            raise ToolError(f"Could not submit it to Ray: {exc}") from exc
        job = row["pid"]
        return ToolResult(
            f"Submitted Ray job {job} to the cluster at {table.address}: {display}\n"
            f"Ray status: PENDING (it starts once the cluster has set up its environment).\n"
            f"Its output is mirrored to {row['log_path']}; Ray dashboard: {row['dashboard_url']}\n"
            f"Check it with CheckProcess(pid=\"{job}\") (status, runtime, cluster use, last lines); stop it with "
            f"InterruptProcess(pid=\"{job}\"). It keeps running on the cluster if this chat session is deleted.",
            data=_data(row),
        )

    @classmethod
    def _script_argv(cls, script: str, args: dict[str, Any], ctx: ToolContext) -> tuple[list[str], str]:
        path, kind = cls._script(script, args, ctx)
        shown = display_path(ctx.root, path)
        extra = [str(a) for a in args.get("args", [])]
        prefix = {"python": [sys.executable or "python3"], "bash": ["bash"], "direct": []}[kind]
        label = {"python": ["python"], "bash": ["bash"], "direct": []}[kind]
        return [*prefix, str(path), *extra], shlex.join([*label, shown, *extra])

    @staticmethod
    def _script(script: str, args: dict[str, Any], ctx: ToolContext, ray: bool = False) -> tuple[Path, str]:
        """The script's path and how to run it: 'python', 'bash' or (local only) 'direct' by its shebang."""
        try:
            path = resolve_in_root(ctx.root, script, must_exist=True)
        except ToolError as exc:
            raise ToolError(f"Cannot run the script: {exc}. Create it first (Write) or find it with Glob.") from exc
        shown = display_path(ctx.root, path)
        if not path.is_file():
            raise ToolError(f"{shown} is not a file; script_path must name a script")
        kind = args.get("interpreter", "auto")
        if kind == "auto":
            kind = INTERPRETERS.get(path.suffix.lower(), "")
            if not kind:
                if not ray and _has_shebang(path) and os.access(path, os.X_OK):
                    kind = "direct"
                else:
                    raise ToolError(f"Cannot tell how to run {shown} from its extension; "
                                    "set interpreter to 'python' or 'bash'.")
        return path, kind


def _has_shebang(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


PID_SCHEMA = {"type": ["integer", "string"],
              "description": "The pid ExecuteScript returned, or the id of a Ray job ('ray-...')."}


def _pid(args: dict[str, Any]) -> int | str:
    """A local pid (an integer, also when written as digits) or a Ray job id (any other string)."""
    value = args["pid"]
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value.strip() if isinstance(value, str) else int(value)


class CheckProcess(Tool):
    name = "CheckProcess"
    description = (
        "Status of a background process started by ExecuteScript: running or exited (with exit code), runtime, "
        "CPU % and memory (RSS) of it and all its children, its output line count and the last `tail_lines` lines "
        "of its output. For a Ray job: Ray's status, runtime, the cluster's resource use and the log tail. "
        "Omit `pid` to list every process and Ray job of this session."
    )
    parameters = _schema(
        {
            "pid": PID_SCHEMA,
            "tail_lines": {"type": "integer", "minimum": 0, "maximum": 500, "default": 50,
                           "description": "How many of the last output lines to show."},
        },
        [],
    )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        tail = args.get("tail_lines", 50)
        if "pid" not in args:
            return await self._list(ctx)
        pid = _pid(args)
        if isinstance(pid, str):
            try:
                info = await _ray_table(ctx).check(pid, tail)
            except RayJobError as exc:
                raise ToolError(str(exc)) from exc
            return ToolResult(format_ray_check(info, tail), is_error=bool(info["stale"]), data=_data(info))
        table = _table(ctx)
        try:
            info = await asyncio.to_thread(table.check, pid, tail)
        except ProcessError as exc:
            raise ToolError(str(exc)) from exc
        return ToolResult(format_check(info, tail), data=_data(info))

    @staticmethod
    async def _list(ctx: ToolContext) -> ToolResult:
        ray_table = ctx.services.get("ray_jobs")
        local = _table(ctx) if ray_table is None else ctx.services.get("processes")
        infos = await asyncio.to_thread(local.snapshot, 1) if local is not None else []
        jobs = await ray_table.snapshot(1) if ray_table is not None else []
        if not infos and not jobs:
            return ToolResult("No background processes in this session yet (start one with ExecuteScript).")
        rows = [f"pid {i['pid']}: {process_state(i)} · {i['command']}"
                + (f"\n    last: {i['tail'][-1]}" if i["tail"] else "") for i in infos]
        rows += [ray_row(j) for j in jobs]
        return ToolResult("\n".join(rows), data={"processes": [_data(i) for i in infos + jobs]})


class InterruptProcess(Tool):
    name = "InterruptProcess"
    description = (
        "Stop a background process started by ExecuteScript, with everything it started: SIGINT (Python raises "
        "KeyboardInterrupt, so scripts can save and exit cleanly), then SIGTERM, then SIGKILL, each after a grace "
        "period. force=true sends SIGKILL at once. A Ray job ('ray-...') is stopped by Ray (SIGTERM to its driver, "
        "SIGKILL if it lingers). Only processes and jobs of this session can be stopped."
    )
    parameters = _schema(
        {
            "pid": PID_SCHEMA,
            "force": {"type": "boolean", "default": False, "description": "Kill at once (SIGKILL); local only."},
        },
        ["pid"],
    )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pid = _pid(args)
        if isinstance(pid, str):
            try:
                res = await _ray_table(ctx).stop(pid)
            except RayJobError as exc:
                raise ToolError(str(exc)) from exc
            text, failed = format_ray_stop(res)
            return ToolResult(text, is_error=failed, data=_data(res))
        try:
            res = await _table(ctx).interrupt(pid, force=bool(args.get("force")))
        except ProcessError as exc:
            raise ToolError(str(exc)) from exc
        pid, code = res["pid"], res["exit_code"]
        if res["signal"] is None and not res["remaining"]:
            state = "exited with code" if res["status"] == "exited" else f"was {res['status']}, exit code"
            text = f"pid {pid} had already finished ({state} {code}); nothing to stop."
        elif res["remaining"]:
            return ToolResult(
                f"pid {pid}: {len(res['remaining'])} process(es) survived SIGKILL (pids "
                f"{', '.join(map(str, res['remaining']))}); they may be stuck in the kernel (e.g. on a dead mount).",
                is_error=True, data=_data(res),
            )
        else:
            lead = f"exit code {code}" if res["was_running"] else "its main process had already exited"
            text = (f"pid {pid} stopped: {res['signal']} ended it after {duration(res['runtime_s'])} ({lead}). "
                    f"Nothing of it is left running. Its output stays in {res['log_path']}.")
        return ToolResult(text, data=_data(res))


async def interrupt_any(processes: ProcessTable, ray_jobs: RayJobTable | None, pid: str,
                        force: bool = False) -> dict[str, Any]:
    """The sidebar's stop button: a local pid (digits) or a Ray job id. Raises ProcessError or RayJobError."""
    if pid.isdigit():
        return await processes.interrupt(int(pid), force=force)
    if ray_jobs is None:
        raise ProcessError(f"{pid!r} is not a process of this session")
    return await ray_jobs.stop(pid)


def script_tools(ray_address: str | None = None) -> list[Tool]:
    """One instance of each script tool, ready for a :class:`ToolRegistry`; Ray is offered when it is configured."""
    return [ExecuteScript(ray_address), CheckProcess(), InterruptProcess()]
