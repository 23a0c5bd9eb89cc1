"""WorkspaceState: what the agent has touched and what is running, for the model and the sidebar.

Three sources, each the authority on its part:
- files: what the agent's tools report in ``ToolResult.data`` (``observe``), plus what a cheap
  mtime scan of the workspace sees change on disk between turns (``refresh``): a user editing a file
  or a script writing results shows up too;
- notebooks: the notebook host's live view (kernel status, execution count, cells);
- processes: the session's process table (status, CPU, memory, output tail) and, when a Ray cluster is
  configured, its Ray job table (Ray's status, output tail, cluster use), side by side: each row says its
  ``target`` ("local" or "ray"); a Ray job's ``pid`` is its job id.

``summary()`` is the compact text the agent gets at the start of every turn (attached to the
user's message rather than the system prompt, so providers' prompt caches stay valid).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SKIP_DIRS = {".git", "node_modules", "__pycache__", ".ipynb_checkpoints", ".venv", "venv", ".ide-agent",
             ".mypy_cache", ".pytest_cache", ".tox", ".yarn"}


@dataclass
class FileChange:
    path: str
    action: str  # created | modified | deleted
    by: str  # agent | disk
    at: float


class WorkspaceState:
    def __init__(self, root: Path, host: Any = None, processes: Any = None, max_scan_files: int = 20_000,
                 ray_jobs: Any = None) -> None:
        self.root = Path(root)
        self.host = host
        self.processes = processes
        self.ray_jobs = ray_jobs
        self.max_scan_files = max_scan_files
        self.started_at = time.time()
        self.changes: dict[str, FileChange] = {}
        self.notebooks: dict[str, dict[str, Any]] = {}
        self._snapshot: dict[str, tuple[float, int]] | None = None
        self.scan_truncated = False

    # --- what tools report -------------------------------------------------------------------
    def observe(self, data: dict[str, Any] | None) -> None:
        """Learn from a tool result's structured ``data`` (see tools/*.py)."""
        if not data:
            return
        if "notebook" in data:
            self.notebooks[data["notebook"]] = {**self.notebooks.get(data["notebook"], {}), **data}
            if data.get("action") in ("created", "modified", "deleted"):
                self._record(data["notebook"], data["action"], "agent")
        elif "path" in data and data.get("action") in ("created", "modified", "deleted"):
            self._record(data["path"], data["action"], "agent")

    def _record(self, path: str, action: str, by: str) -> None:
        previous = self.changes.get(path)
        if previous and previous.action == "created" and action == "modified":
            action = "created"  # still new to this session
        self.changes[path] = FileChange(path, action, by, time.time())

    # --- what the disk says ------------------------------------------------------------------
    def _scan(self) -> dict[str, tuple[float, int]]:
        found: dict[str, tuple[float, int]] = {}
        stack = [self.root]
        self.scan_truncated = False
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS:
                        stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    found[Path(entry.path).relative_to(self.root).as_posix()] = (st.st_mtime, st.st_size)
                    if len(found) >= self.max_scan_files:
                        self.scan_truncated = True
                        return found
        return found

    async def refresh(self) -> None:
        """Compare the disk with the last scan; record what changed outside the agent's tools."""
        current = await asyncio.to_thread(self._scan)
        if self._snapshot is not None:
            for path, stamp in current.items():
                before = self._snapshot.get(path)
                if before is None:
                    self._record_disk(path, "created")
                elif before != stamp:
                    self._record_disk(path, "modified")
            if not self.scan_truncated:
                for path in self._snapshot.keys() - current.keys():
                    self._record_disk(path, "deleted")
        self._snapshot = current

    def _record_disk(self, path: str, action: str) -> None:
        known = self.changes.get(path)
        if known and known.by == "agent" and time.time() - known.at < 2:
            return  # the agent's own change, already recorded
        self._record(path, action, "disk")

    def files(self) -> list[str]:
        return sorted(self._snapshot or {})

    def modified_since(self, since: float) -> list[FileChange]:
        return sorted((c for c in self.changes.values() if c.at >= since), key=lambda c: c.at)

    # --- live views ----------------------------------------------------------------------------
    async def notebook_states(self) -> list[dict[str, Any]]:
        if self.host is None:
            return list(self.notebooks.values())
        states = self.host.notebook_states()
        if inspect.isawaitable(states):
            states = await states
        by_path = {**{p: {"notebook": p, **d} for p, d in self.notebooks.items()}}
        for state in states:
            path = state.get("path") or state.get("notebook")
            by_path[path] = {**by_path.get(path, {}), **state, "notebook": path}
        return list(by_path.values())

    async def process_states(self) -> list[dict[str, Any]]:
        """Local processes, then Ray jobs (refreshed with a bounded wait: a slow cluster shows its last state)."""
        local = [{**p, "target": "local"} for p in self.processes.snapshot()] if self.processes is not None else []
        return local + (await self.ray_jobs.snapshot() if self.ray_jobs is not None else [])

    async def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "elapsed_s": round(time.time() - self.started_at, 1),
            "files": {"count": len(self._snapshot or {}), "truncated": self.scan_truncated},
            "changes": [asdict(c) for c in sorted(self.changes.values(), key=lambda c: -c.at)],
            "notebooks": await self.notebook_states(),
            "processes": await self.process_states(),
        }

    async def summary(self, max_changes: int = 20) -> str:
        """The compact text the model reads at the start of a turn."""
        lines = [f"Session time: {_duration(time.time() - self.started_at)}."]
        changes = sorted(self.changes.values(), key=lambda c: -c.at)
        if changes:
            shown = ", ".join(f"{c.path} ({c.action}{' on disk' if c.by == 'disk' else ''})"
                              for c in changes[:max_changes])
            more = f" and {len(changes) - max_changes} more" if len(changes) > max_changes else ""
            lines.append(f"Files changed this session: {shown}{more}.")
        for nb in await self.notebook_states():
            lines.append(
                f"Notebook {nb['notebook']}: kernel {nb.get('kernel_status', 'not started')}, "
                f"{nb.get('cell_count', '?')} cells, execution count {nb.get('execution_count', 0)}."
            )
        for proc in await self.process_states():
            tail = (proc.get("tail") or [""])[-1] if isinstance(proc.get("tail"), list) else ""
            kind = "Ray job" if proc.get("target") == "ray" else "Process"
            lines.append(
                f"{kind} {proc.get('pid')} ({proc.get('command', '')[:60]}): {proc.get('status')}"
                + (f", cpu {proc['cpu_percent']:.0f}%" if proc.get("cpu_percent") is not None else "")
                + (f", rss {proc['rss_mb']:.0f} MB" if proc.get("rss_mb") is not None else "")
                + (f", last output: {tail[:120]}" if tail else "")
                + (" (last known status: the Ray cluster did not answer)" if proc.get("stale") else "")
            )
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {s:02d}s" if m else f"{s}s")
