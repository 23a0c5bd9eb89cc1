"""What the script tools say: the model reads these lines, so each says the state, the numbers and what to do next.

Local processes and Ray jobs share the shape (status line, command, log, output tail) so the model compares them
at a glance; a Ray job adds Ray's status and message, the cluster's resource use and its dashboard link.
"""

from __future__ import annotations

from typing import Any

#: how much of Ray's status message is kept when the log tail already shows the output
MESSAGE_CHARS = 2000


def size(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s" if s >= 60 \
        else f"{seconds:.1f} s"


def process_state(info: dict[str, Any]) -> str:
    """'running for 12.3 s' / 'exited with code 0 after 3.1 s' / 'interrupted (SIGINT), exit code -2, after ...'."""
    took = duration(info["runtime_s"])
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
    head = f"pid {info['pid']}: {process_state(info)}"
    if info["processes"]:
        head += f" · CPU {info['cpu_percent']:.0f}% · memory {size(info['rss_bytes'])} (RSS)"
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


def _tail(info: dict[str, Any], tail_lines: int, running: bool) -> list[str]:
    tail = info["tail"]
    if not tail:
        return ["(no output yet)" if running else "(no output)"]
    if not tail_lines:
        return []
    shown = f"last {len(tail)} lines" if len(tail) < info["output_lines"] else "output"
    return [f"--- {shown} ---", *tail]


def cluster_use(usage: dict[str, list[float]] | None) -> str:
    """'CPU 2/8, GPU 1/1, memory 3.2 GB/60.0 GB' from Ray's {resource: [used, total]}; '' when not reported."""
    parts = []
    for name, (used, total) in (usage or {}).items():
        if name in ("memory", "object_store_memory"):
            label = "object store" if name == "object_store_memory" else "memory"
            parts.append(f"{label} {size(int(used))}/{size(int(total))}")
        else:
            parts.append(f"{name} {used:g}/{total:g}")
    return ", ".join(sorted(parts, key=lambda p: (not p.startswith(("CPU", "GPU")), p)))


def _ray_state(info: dict[str, Any]) -> str:
    status, took = info["ray_status"], duration(info["runtime_s"])
    if status == "RUNNING":
        return f"RUNNING for {took}"
    if status in ("PENDING", "SUBMITTING"):
        return f"{status} (waiting for the cluster to start it)"
    code = "" if info["exit_code"] is None else f", driver exit code {info['exit_code']}"
    return f"{status} after {took}{code}"


def format_ray_check(info: dict[str, Any], tail_lines: int) -> str:
    """CheckProcess's text for a Ray job."""
    head = f"{info['pid']} (Ray job on {info['address']}): {_ray_state(info)}"
    if use := cluster_use(info.get("cluster")):
        head += f" · cluster in use: {use}"
    lines = [head, f"command: {info['command']} (in {info['cwd'] or '.'})"]
    if info["stale"]:
        lines.append(f"Could not refresh it: {info['stale']} (the status above is the last one known).")
    message = (info.get("message") or "").strip()
    if message and info["ray_status"] not in ("RUNNING", "SUCCEEDED"):
        # Ray repeats the log's end in a failure message; the tail below shows it already
        message = message.splitlines()[0] if info["tail"] else message[:MESSAGE_CHARS]
        lines.append(f"Ray says: {message}")
    count = f"{info['output_lines']:,}{'' if info['output_lines_complete'] else '+'}"
    lines.append(f"log: {info['log_path']} ({count} lines, mirrored from the cluster)")
    lines += _tail(info, tail_lines, info["ray_status"] in ("RUNNING", "PENDING", "SUBMITTING"))
    lines.append(f"dashboard: {info['dashboard_url']}")
    return "\n".join(lines)


def format_ray_stop(res: dict[str, Any]) -> tuple[str, bool]:
    """InterruptProcess's text for a Ray job, and whether it is an error (the job did not stop in time)."""
    job, status = res["pid"], res["ray_status"]
    if not res["was_running"]:
        return f"{job} had already finished on Ray ({status}); nothing to stop.", False
    if status in ("PENDING", "RUNNING", "SUBMITTING"):
        return (f"Asked Ray to stop {job}, but it still reports {status}. Check again with "
                f"CheckProcess(pid=\"{job}\") or on the dashboard: {res['dashboard_url']}"), True
    tail = res["tail"][-5:]
    last = "\n--- last lines ---\n" + "\n".join(tail) if tail else ""
    return (f"{job} stopped: Ray reports {status} after {duration(res['runtime_s'])}. "
            f"Its output stays in {res['log_path']}.{last}"), False


def ray_row(info: dict[str, Any]) -> str:
    """One line of CheckProcess's listing for a Ray job."""
    last = f"\n    last: {info['tail'][-1]}" if info["tail"] else ""
    return f"{info['pid']} (Ray): {_ray_state(info)} · {info['command']}{last}"
