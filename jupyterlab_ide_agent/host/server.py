"""ServerHost: notebooks and kernels through the Jupyter server's own managers.

Contents go through ``contents_manager`` (so custom contents managers, checkpoints and trust all apply). A notebook's
kernel is the kernel of its *session* (see :mod:`.session_kernels`): if the user has the notebook open in JupyterLab,
the agent runs code on that very kernel, so the user's variables are the agent's; otherwise the host creates the
session, so JupyterLab attaches to the agent's kernel when the user opens the notebook. Local kernels and remote ones
behind ``--gateway-url`` alike.

A notebook open in JupyterLab with real-time collaboration (jupyter-collaboration's ``jupyter_server_ydoc``) lives in
a collaboration room: then the host reads and edits the room's shared ``YNotebook`` instead of the file, cell by
cell (see :mod:`.ydoc`), streams a running cell's outputs into it, and the room's autosave writes the file. The user
sees every change at once and keeps their unsaved edits. Without the extension, or with no room for the notebook,
the contents manager is used as before.
"""

from __future__ import annotations

import copy
import weakref
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import ensure_async
from nbformat import NotebookNode
from tornado.web import HTTPError

from .base import (
    ExecutionResult,
    HostError,
    NotebookHost,
    OutputCallback,
    kernel_name_of,
)
from .execute import INTERRUPT_GRACE, kernel_pid, run_code
from .session_kernels import SessionKernels, http_message

try:  # pycrdt and jupyter_ydoc come with jupyter-collaboration; without them there are no rooms to edit
    from . import ydoc as _ydoc
except ImportError:  # pragma: no cover - exercised only in environments without pycrdt
    _ydoc = None  # type: ignore[assignment]


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


class ServerHost(NotebookHost):
    """A :class:`NotebookHost` on a running Jupyter server (``ServerApp``)."""

    def __init__(
        self,
        serverapp: Any = None,
        *,
        contents_manager: Any = None,
        session_manager: Any = None,
        kernel_manager: Any = None,
        root: str | Path | None = None,
        startup_timeout: float = 60.0,
        interrupt_grace: float = INTERRUPT_GRACE,
        web_settings: dict[str, Any] | None = None,
        live_notebooks: bool = True,
    ) -> None:
        self.contents_manager = contents_manager or serverapp.contents_manager
        self.session_manager = session_manager or serverapp.session_manager
        self.kernel_manager = kernel_manager or serverapp.kernel_manager
        if root is None:
            root = getattr(serverapp, "root_dir", None) or getattr(self.contents_manager, "root_dir", "/")
        super().__init__(Path(root).expanduser())
        self.default_kernel_name = getattr(self.kernel_manager, "default_kernel_name", "python3") or "python3"
        self.interrupt_grace = interrupt_grace
        self.kernels = SessionKernels(self.session_manager, self.kernel_manager, startup_timeout)
        self._busy: set[str] = set()
        if web_settings is None:
            web_settings = getattr(getattr(serverapp, "web_app", None), "settings", None)
        #: where the collaboration extension registers itself (None: never look for rooms)
        self.web_settings = web_settings if live_notebooks and _ydoc is not None else None
        #: path -> (the shared document, what the agent last read or wrote of it): the base of its next edit
        self._bases: dict[str, tuple[weakref.ref[Any], NotebookNode]] = {}

    # ---------------------------------------------------------------- contents

    async def shared_notebook(self, path: str) -> Any | None:
        """The live ``YNotebook`` of ``path`` if a collaboration room has it open (a browser shows it), else None."""
        if self.web_settings is None:
            return None
        return await _ydoc.shared_notebook(self.web_settings, path)

    def _base(self, path: str, ynb: Any) -> NotebookNode | None:
        ref, base = self._bases.get(path, (None, None))
        return base if ref is not None and ref() is ynb else None

    async def exists(self, path: str) -> bool:
        try:
            return bool(await ensure_async(self.contents_manager.file_exists(self.api_path(path))))
        except HTTPError:
            return False

    async def _load(self, path: str) -> NotebookNode:
        ynb = await self.shared_notebook(path)
        if ynb is not None:  # what the user sees now, unsaved edits included
            nb = nbformat.from_dict(_ydoc.read_notebook(ynb))
            self._bases[path] = (weakref.ref(ynb), copy.deepcopy(nb))
            return nb
        self._bases.pop(path, None)
        try:
            model = await ensure_async(self.contents_manager.get(path, content=True, type="notebook"))
        except HTTPError as exc:
            if exc.status_code == 404:
                raise HostError(f"notebook {path} does not exist") from exc
            raise HostError(f"could not read {path}: {http_message(exc)}") from exc
        return model["content"]

    async def _save(self, path: str, nb: NotebookNode) -> None:
        ynb = await self.shared_notebook(path)
        if ynb is not None:
            # Only what the agent changed since it read the notebook goes into the shared document, cell by cell;
            # the room saves the file (writing it here would make the room reload it and drop the user's edits).
            _ydoc.apply_changes(ynb, self._base(path, ynb), nb)
            self._bases[path] = (weakref.ref(ynb), copy.deepcopy(nb))
            return
        self._bases.pop(path, None)
        cm = self.contents_manager
        try:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):  # the contents manager does not create parent directories
                folder = "/".join(parts[:i])
                if not await ensure_async(cm.dir_exists(folder)):
                    await ensure_async(cm.save({"type": "directory"}, folder))
            await ensure_async(cm.save({"type": "notebook", "format": "json", "content": nb}, path))
        except HTTPError as exc:
            raise HostError(f"could not save {path}: {http_message(exc)}") from exc

    # ---------------------------------------------------------------- kernels

    async def _kernel_name(self, path: str) -> str:
        """The kernel a new session for ``path`` starts: the notebook's kernelspec, else the server's default."""
        nb = await self.read(path) if await self.exists(path) else None
        return kernel_name_of(nb, self.default_kernel_name)

    async def execute(
        self, path: str, code: str, timeout: float, on_output: OutputCallback | None = None, *,
        cell_id: str | None = None,
    ) -> ExecutionResult:
        """As :meth:`NotebookHost.execute`. If the notebook is open in a collaboration room, the outputs also stream
        into the cell being run, live: the cell ``cell_id``, or else the one code cell whose source is ``code`` in
        what the agent last read of the notebook."""
        path = self.api_path(path)
        async with self.run_lock(path):
            kernels = self.kernels
            kid = await kernels.kernel_for(path, lambda: self._kernel_name(path))
            conn = await kernels.connection(kid)

            async def alive() -> bool:
                return conn.client.channels_running and await kernels.is_alive(kid) and \
                    kernel_pid(kernels.km(kid)) == conn.pid

            async def interrupt() -> None:
                await kernels.interrupt(kid)

            live = await self._live_cell(path, code, cell_id)
            callback = on_output
            if live is not None:

                def callback(item: dict[str, Any]) -> Any:
                    live.on_output(item)
                    return on_output(item) if on_output is not None else None

            self._busy.add(path)
            result: ExecutionResult | None = None
            try:
                result = await run_code(conn.client, code, timeout=timeout, on_output=callback, kernel_id=kid,
                                        is_alive=alive, interrupt=interrupt, interrupt_grace=self.interrupt_grace)
            finally:
                self._busy.discard(path)
                if live is not None:  # the cell is idle again with its final outputs, even if the turn was cancelled
                    live.finish(result.outputs if result else None, result.execution_count if result else None)
            assert result is not None
            if result.status == "dead":
                await kernels.drop(kid)
            self._record(path, result)
            return result

    async def _live_cell(self, path: str, code: str, cell_id: str | None) -> Any | None:
        """Where this execution's outputs stream to, started (the cell shows ``[*]``); None without a room."""
        ynb = await self.shared_notebook(path)
        if ynb is None:
            return None
        if cell_id is None:
            base = self._base(path, ynb)
            matches = [c.get("id") for c in (base.cells if base is not None else [])
                       if c.get("cell_type") == "code" and _source(c) == code]
            if len(matches) != 1:
                return None  # code that is not (exactly one) cell: run it without touching the notebook
            cell_id = matches[0]
        live = _ydoc.LiveOutputs(ynb, cell_id)
        return live if live.start() else None

    async def interrupt(self, path: str) -> str | None:
        kid = await self.kernels.kernel_id(self.api_path(path))
        if kid is None or not await self.kernels.is_alive(kid):
            return None
        await self.kernels.interrupt(kid)
        return kid

    async def restart(self, path: str) -> str:
        path = self.api_path(path)
        kid = await self.kernels.kernel_id(path)
        if kid is None or not await self.kernels.is_alive(kid):
            async with self.run_lock(path):
                kid = await self.kernels.kernel_for(path, lambda: self._kernel_name(path))
        else:
            try:
                await self.kernels.restart(kid)
            except Exception as exc:
                raise HostError(f"the kernel did not restart: {exc}") from exc
        self._execution_counts[path] = 0
        return kid

    async def kernel_status(self, path: str) -> dict[str, Any]:
        path = self.api_path(path)
        kid = await self.kernels.kernel_id(path)
        if kid is None or kid not in self.kernel_manager:
            return {"kernel_id": None, "kernel_name": None, "kernel_status": "not started"}
        km = self.kernels.km(kid)
        try:
            alive: bool | None = await self.kernels.is_alive(kid)  # first: refreshes a gateway kernel's state
        except HostError:
            alive = None
        status = getattr(km, "execution_state", None) or "idle"
        if path in self._busy:
            status = "busy"
        if alive is None:
            status = "unreachable"
        elif not alive:
            status = "dead"
        return {"kernel_id": kid, "kernel_name": getattr(km, "kernel_name", None), "kernel_status": status}

    async def known_paths(self) -> list[str]:
        return list(set(self.kernels.started) | set(self._cell_counts))

    async def shutdown(self) -> None:
        """Close our clients; stop the kernels we started unless the user now has them open in JupyterLab."""
        self._bases.clear()
        await self.kernels.shutdown()
