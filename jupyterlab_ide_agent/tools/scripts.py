"""Script tools: ExecuteScript, CheckProcess and InterruptProcess, on the session's :class:`ProcessTable`.

Long jobs (training, data processing, a server) must not hold the agent's turn: ExecuteScript starts them in the
background and returns at once with a pid; the model polls with CheckProcess while it keeps working, and stops them
with InterruptProcess. The table comes from ``ctx.services["processes"]``; paths go through :func:`resolve_in_root`.
Every result's ``data`` is ``{"pid", "command", "status", "log_path"}``, what the workspace state tracks.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from ..workspace.processes import ProcessError, ProcessTable
from .base import Tool, ToolContext, ToolError, ToolResult
from .paths import display_path, resolve_in_root

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


def _data(info: dict[str, Any]) -> dict[str, Any]:
    return {k: info.get(k) for k in ("pid", "command", "status", "log_path")}


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s" if s >= 60 \
        else f"{seconds:.1f} s"


def _state(info: dict[str, Any]) -> str:
    """'running for 12.3 s' / 'exited with code 0 after 3.1 s' / 'interrupted (SIGINT), exit code -2, after ...'."""
    took = _duration(info["runtime_s"])
    if info["status"] == "running":
        return f"running for {took}"
    code = "exit code unknown" if info["exit_code"] is None else f"exit code {info['exit_code']}"
    if info["status"] == "exited":
        return f"exited with code {info['exit_code']} after {took}"
    sent = info.get("signals_sent") or []
    by = f" (after {', '.join(sent)})" if sent else ""
    return f"{info['status']}{by}, {code}, after {took}"


def format_check(info: dict[str, Any], tail_lines: int) -> str:
    """CheckProcess's text: one status line, the command and log, then the output tail."""
    head = f"pid {info['pid']}: {_state(info)}"
    if info["processes"]:
        head += f" · CPU {info['cpu_percent']:.0f}% · memory {_size(info['rss_bytes'])} (RSS)"
        head += f" · {info['processes']} process{'es' if info['processes'] != 1 else ''}"
        if info["status"] != "running":
            head += " still running in its tree (InterruptProcess stops them)"
    count = f"{info['output_lines']:,}{'' if info['output_lines_complete'] else '+'}"
    lines = [head, f"command: {info['command']}", f"log: {info['log_path']} ({count} lines)"]
    tail = info["tail"]
    if not tail:
        lines.append("(no output yet)" if info["status"] == "running" else "(no output)")
    elif tail_lines:
        shown = f"last {len(tail)} lines" if len(tail) < info["output_lines"] else "output"
        lines += [f"--- {shown} ---", *tail]
    return "\n".join(lines)


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
    parameters = _schema(
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
        },
        [],
    )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        table = _table(ctx)
        script, command = args.get("script_path"), args.get("command")
        if bool(script) == bool(command):
            raise ToolError("Give exactly one of `script_path` (a script file) or `command` (a shell command line).")
        cwd = resolve_in_root(ctx.root, args.get("cwd", "."), must_exist=True)
        if not cwd.is_dir():
            raise ToolError(f"cwd {args['cwd']!r} is not a directory")
        if command:
            if args.get("args") or args.get("interpreter", "auto") != "auto":
                raise ToolError("`args` and `interpreter` go with script_path; with `command`, write the whole "
                                "command line (arguments included) in `command`.")
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

    @staticmethod
    def _script_argv(script: str, args: dict[str, Any], ctx: ToolContext) -> tuple[list[str], str]:
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
                if _has_shebang(path) and os.access(path, os.X_OK):
                    kind = "direct"
                else:
                    raise ToolError(f"Cannot tell how to run {shown} from its extension; "
                                    "set interpreter to 'python' or 'bash'.")
        extra = [str(a) for a in args.get("args", [])]
        prefix = {"python": [sys.executable or "python3"], "bash": ["bash"], "direct": []}[kind]
        label = {"python": ["python"], "bash": ["bash"], "direct": []}[kind]
        return [*prefix, str(path), *extra], shlex.join([*label, shown, *extra])


def _has_shebang(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


def _pid(args: dict[str, Any]) -> int:
    return int(args["pid"])


class CheckProcess(Tool):
    name = "CheckProcess"
    description = (
        "Status of a background process started by ExecuteScript: running or exited (with exit code), runtime, "
        "CPU % and memory (RSS) of it and all its children, its output line count and the last `tail_lines` lines "
        "of its output. Omit `pid` to list every process of this session."
    )
    parameters = _schema(
        {
            "pid": {"type": "integer", "description": "The pid ExecuteScript returned."},
            "tail_lines": {"type": "integer", "minimum": 0, "maximum": 500, "default": 50,
                           "description": "How many of the last output lines to show."},
        },
        [],
    )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        table = _table(ctx)
        tail = args.get("tail_lines", 50)
        if "pid" not in args:
            infos = await asyncio.to_thread(table.snapshot, 1)
            if not infos:
                return ToolResult("No background processes in this session yet (start one with ExecuteScript).")
            rows = [f"pid {i['pid']}: {_state(i)} · {i['command']}"
                    + (f"\n    last: {i['tail'][-1]}" if i["tail"] else "") for i in infos]
            return ToolResult("\n".join(rows), data={"processes": [_data(i) for i in infos]})
        try:
            info = await asyncio.to_thread(table.check, _pid(args), tail)
        except ProcessError as exc:
            raise ToolError(str(exc)) from exc
        return ToolResult(format_check(info, tail), data=_data(info))


class InterruptProcess(Tool):
    name = "InterruptProcess"
    description = (
        "Stop a background process started by ExecuteScript, with everything it started: SIGINT (Python raises "
        "KeyboardInterrupt, so scripts can save and exit cleanly), then SIGTERM, then SIGKILL, each after a grace "
        "period. force=true sends SIGKILL at once. Only processes of this session can be stopped."
    )
    parameters = _schema(
        {
            "pid": {"type": "integer", "description": "The pid ExecuteScript returned."},
            "force": {"type": "boolean", "default": False, "description": "Kill at once (SIGKILL)."},
        },
        ["pid"],
    )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        table = _table(ctx)
        try:
            res = await table.interrupt(_pid(args), force=bool(args.get("force")))
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
            text = (f"pid {pid} stopped: {res['signal']} ended it after {_duration(res['runtime_s'])} ({lead}). "
                    f"Nothing of it is left running. Its output stays in {res['log_path']}.")
        return ToolResult(text, data=_data(res))


def script_tools() -> list[Tool]:
    """One instance of each script tool, ready for a :class:`ToolRegistry`."""
    return [ExecuteScript(), CheckProcess(), InterruptProcess()]
