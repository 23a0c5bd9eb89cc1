"""WorkspaceState on a real directory: the seed's workspace scenarios."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from jupyterlab_ide_agent.workspace.state import WorkspaceState


def test_initial_state_is_empty_and_summarizes(tmp_path: Path) -> None:
    state = WorkspaceState(tmp_path)
    assert state.changes == {} and state.files() == []


async def test_scan_of_an_existing_directory_skips_noise(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print(1)")
    (tmp_path / "data.csv").write_text("a,b\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "i.js").write_text("")
    state = WorkspaceState(tmp_path)
    await state.refresh()
    assert state.files() == ["data.csv", "src/train.py"]
    assert state.changes == {}, "the first scan is the baseline, not a change"


async def test_agent_file_changes_are_tracked_from_tool_data(tmp_path: Path) -> None:
    state = WorkspaceState(tmp_path)
    state.observe({"path": "a.py", "action": "created"})
    state.observe({"path": "a.py", "action": "modified"})
    state.observe({"path": "b.py", "action": "modified"})
    state.observe({"path": "c.py", "action": "deleted"})
    state.observe(None)
    assert {p: c.action for p, c in state.changes.items()} == {"a.py": "created", "b.py": "modified", "c.py": "deleted"}
    assert all(c.by == "agent" for c in state.changes.values())
    summary = await state.summary()
    assert "a.py (created)" in summary and "c.py (deleted)" in summary


async def test_changes_on_disk_are_seen_between_turns(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("1")
    (tmp_path / "edit.txt").write_text("1")
    (tmp_path / "gone.txt").write_text("1")
    state = WorkspaceState(tmp_path)
    await state.refresh()
    (tmp_path / "new.txt").write_text("new")
    (tmp_path / "edit.txt").write_text("changed by the user")
    os.utime(tmp_path / "edit.txt", (time.time() + 5, time.time() + 5))
    (tmp_path / "gone.txt").unlink()
    await state.refresh()
    seen = {p: (c.action, c.by) for p, c in state.changes.items()}
    assert seen == {"new.txt": ("created", "disk"), "edit.txt": ("modified", "disk"), "gone.txt": ("deleted", "disk")}
    assert "new.txt (created on disk)" in await state.summary()


async def test_modified_since_a_time(tmp_path: Path) -> None:
    state = WorkspaceState(tmp_path)
    state.observe({"path": "old.py", "action": "created"})
    mark = time.time()
    await asyncio.sleep(0.01)  # so the next change is stamped after the mark
    state.observe({"path": "new.py", "action": "created"})
    assert [c.path for c in state.modified_since(mark)] == ["new.py"]


async def test_notebook_tracking_from_tool_data(tmp_path: Path) -> None:
    state = WorkspaceState(tmp_path)
    state.observe({"notebook": "a.ipynb", "action": "created", "cell_count": 1, "execution_count": 0,
                   "kernel_status": "idle", "kernel_id": "k1"})
    state.observe({"notebook": "a.ipynb", "action": "executed", "cell_count": 2, "execution_count": 3,
                   "kernel_status": "idle", "kernel_id": "k1"})
    [nb] = await state.notebook_states()
    assert nb["cell_count"] == 2 and nb["execution_count"] == 3
    summary = await state.summary()
    assert "Notebook a.ipynb: kernel idle, 2 cells, execution count 3." in summary
    assert state.changes["a.ipynb"].action == "created"


async def test_scan_is_capped_on_huge_trees(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"f{i}.txt").write_text("x")
    state = WorkspaceState(tmp_path, max_scan_files=10)
    await state.refresh()
    (tmp_path / "f0.txt").unlink()
    await state.refresh()
    assert state.scan_truncated and len(state.files()) == 10
    assert not any(c.action == "deleted" for c in state.changes.values()), "a capped scan proves no deletion"
