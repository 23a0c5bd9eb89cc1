"""The one interface the notebook tools see: notebook files and one kernel per notebook.

Two implementations: :class:`~.local.LocalHost` (files on disk, kernels started with ``jupyter_client``: the Python API
and the CLI) and :class:`~.server.ServerHost` (the Jupyter server's own contents, session and kernel managers, so a
notebook open in JupyterLab is driven through the kernel the user sees). The tools never know which one they have.

Paths given to a host are API paths: relative to the host's root, POSIX separators (``dir/analysis.ipynb``). The tools
confine them to the workspace first; :meth:`NotebookHost.api_path` checks them again against the host's own root.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import nbformat
from nbformat import NotebookNode
from nbformat.corpus.words import generate_corpus_id

ExecutionStatus = Literal["ok", "error", "timeout", "dead"]
#: called with each output (an nbformat output dict) as it arrives; may be async. ``clear_output`` and
#: ``update_display_data`` are passed as ``{"output_type": "clear_output", "wait": bool}`` and
#: ``{"output_type": "update_display_data", "display_id": ..., "output": {...}}``.
OutputCallback = Callable[[dict[str, Any]], "Awaitable[None] | None"]

DEAD_MESSAGE = "the kernel died while running this cell; it will be restarted on the next call"


class HostError(Exception):
    """An expected failure the tool reports to the model as is: a missing notebook, invalid JSON, no such kernel."""


@dataclass
class ExecutionResult:
    """What one execution produced. ``outputs`` are nbformat v4 output dicts, ready to store in a code cell."""

    status: ExecutionStatus
    outputs: list[dict[str, Any]] = field(default_factory=list)
    execution_count: int | None = None
    error_name: str = ""
    error_value: str = ""
    traceback: list[str] = field(default_factory=list)
    kernel_id: str | None = None
    duration: float = 0.0
    #: what happened when status is "timeout" or "dead" (the model reads it)
    message: str = ""


def ensure_cell_ids(nb: NotebookNode) -> bool:
    """Give every cell a unique nbformat 4.5 id (older notebooks have none); True if anything changed.

    Ids are how the model addresses cells, so a notebook read by the agent always has them.
    """
    changed = False
    if nb.get("nbformat") == 4 and nb.get("nbformat_minor", 0) < 5:
        nb["nbformat_minor"] = 5
        changed = True
    seen: set[str] = set()
    for cell in nb.get("cells", []):
        cid = cell.get("id")
        if not isinstance(cid, str) or not cid or cid in seen:
            cid = generate_corpus_id()
            while cid in seen:
                cid = generate_corpus_id()
            cell["id"] = cid
            changed = True
        seen.add(cid)
    return changed


def validate_notebook(nb: NotebookNode) -> None:
    """Raise :class:`HostError` unless ``nb`` is a valid nbformat v4 notebook: nothing invalid is ever saved."""
    if nb.get("nbformat") != 4:
        raise HostError(f"refusing to save: only nbformat 4 notebooks are written (got {nb.get('nbformat')!r})")
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "notebook"
        raise HostError(f"refusing to save an invalid notebook ({where}: {exc.message})") from exc


class NotebookHost(ABC):
    """Notebook contents plus one kernel per notebook path.

    Subclasses implement the storage (``_load``, ``_save``, ``exists``) and the kernels. The base keeps what both
    share: path checks, cell ids, validation before every save, per-notebook locks, and the counters reported by
    :meth:`notebook_states`.
    """

    default_kernel_name = "python3"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._edit_locks: dict[str, asyncio.Lock] = {}
        self._run_locks: dict[str, asyncio.Lock] = {}
        self._cell_counts: dict[str, int] = {}
        self._execution_counts: dict[str, int] = {}

    # ---------------------------------------------------------------- paths and locks

    def api_path(self, path: str | Path) -> str:
        """The API path of ``path`` (absolute, or relative to the root); :class:`HostError` if it leaves the root."""
        text = os.fspath(path)
        if "\x00" in text:
            raise HostError("path contains a null byte")
        if os.path.isabs(text):
            for base in (os.path.realpath(self.root), os.path.abspath(self.root)):
                rel = os.path.relpath(os.path.normpath(text), base)
                if rel != ".." and not rel.startswith(".." + os.sep):
                    text = rel
                    break
            else:
                raise HostError(f"path {text!r} is outside the notebook host's root")
        rel_posix = posixpath.normpath(PurePosixPath(*Path(text).parts).as_posix())
        if rel_posix in ("", ".", "..") or rel_posix.startswith(("../", "/")):
            raise HostError(f"path {text!r} is not a notebook path inside the root")
        return rel_posix

    def edit_lock(self, path: str) -> asyncio.Lock:
        """Held around a read-modify-save of one notebook, so two edits never lose each other's change."""
        return self._edit_locks.setdefault(path, asyncio.Lock())

    def run_lock(self, path: str) -> asyncio.Lock:
        """Held while code runs for one notebook: its kernel runs one request of ours at a time."""
        return self._run_locks.setdefault(path, asyncio.Lock())

    # ---------------------------------------------------------------- contents

    async def read(self, path: str) -> NotebookNode:
        """The notebook as nbformat v4 with cell ids; :class:`HostError` if it is missing or not a notebook."""
        path = self.api_path(path)
        nb = await self._load(path)
        if ensure_cell_ids(nb):
            # Ids the model is shown must still be there on its next call: store them (as JupyterLab does on its
            # first save). A notebook that is invalid for other reasons is left as it is on disk.
            try:
                validate_notebook(nb)
            except HostError:
                pass
            else:
                await self._save(path, nb)
        self._cell_counts[path] = len(nb.cells)
        return nb

    async def write(self, path: str, nb: NotebookNode) -> None:
        """Validate, then save. An invalid notebook is refused with :class:`HostError` and the file is untouched."""
        path = self.api_path(path)
        nb = nbformat.from_dict(nb)
        ensure_cell_ids(nb)
        validate_notebook(nb)
        await self._save(path, nb)
        self._cell_counts[path] = len(nb.cells)

    @abstractmethod
    async def exists(self, path: str) -> bool:
        """Whether a notebook (a file) exists at ``path``."""

    @abstractmethod
    async def _load(self, path: str) -> NotebookNode: ...

    @abstractmethod
    async def _save(self, path: str, nb: NotebookNode) -> None: ...

    # ---------------------------------------------------------------- kernels

    @abstractmethod
    async def execute(
        self, path: str, code: str, timeout: float, on_output: OutputCallback | None = None
    ) -> ExecutionResult:
        """Run ``code`` in the notebook's kernel (started on first use and kept), waiting at most ``timeout`` s.

        Never raises for what the code does: errors, timeouts (the kernel is interrupted) and a kernel that dies
        come back as the result's ``status``. :class:`HostError` only when no kernel can be had at all.
        """

    @abstractmethod
    async def interrupt(self, path: str) -> str | None:
        """Interrupt the notebook's kernel; its id, or None if the notebook has no kernel."""

    @abstractmethod
    async def restart(self, path: str) -> str:
        """Restart the notebook's kernel (its variables are lost), starting one if there is none; its id."""

    @abstractmethod
    async def kernel_status(self, path: str) -> dict[str, Any]:
        """``{"kernel_id", "kernel_name", "kernel_status"}``; status is ``not started`` when there is no kernel."""

    @abstractmethod
    async def known_paths(self) -> list[str]:
        """Notebooks this host knows about: touched by the agent or with a kernel of the agent's."""

    async def notebook_states(self) -> list[dict[str, Any]]:
        """One entry per known notebook for the workspace state: path, kernel, status and counters."""
        states = []
        for path in sorted(await self.known_paths()):
            status = await self.kernel_status(path)
            states.append(
                {
                    "path": path,
                    "kernel_id": status.get("kernel_id"),
                    "kernel_status": status.get("kernel_status"),
                    "execution_count": self._execution_counts.get(path, 0),
                    "cell_count": self._cell_counts.get(path),
                }
            )
        return states

    def execution_count(self, path: str) -> int:
        """The last execution count the notebook's kernel reported to us (0 before the first run)."""
        return self._execution_counts.get(self.api_path(path), 0)

    def _record(self, path: str, result: ExecutionResult) -> None:
        if result.execution_count:
            self._execution_counts[path] = result.execution_count
        elif result.status == "dead":
            self._execution_counts[path] = 0

    @abstractmethod
    async def shutdown(self) -> None:
        """Stop the kernels this host started (never the user's own) and close its connections."""


def kernel_name_of(nb: NotebookNode | None, default: str) -> str:
    """The kernel a notebook asks for in its metadata, else ``default``."""
    spec = (nb or {}).get("metadata", {}).get("kernelspec") or {}
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else default
