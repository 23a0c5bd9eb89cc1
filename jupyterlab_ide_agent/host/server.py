"""ServerHost: notebooks and kernels through the Jupyter server's own managers.

Contents go through ``contents_manager`` (so custom contents managers, checkpoints and trust all apply). A notebook's
kernel is the kernel of its *session*: if the user has the notebook open in JupyterLab, there is a session for its
path and the agent runs code on that very kernel, so the user's variables are the agent's. Otherwise the host creates
the session itself (``session_manager.create_session`` starts the kernel in the notebook's directory), so when the
user opens the notebook later JupyterLab attaches to the kernel the agent has been using.

Code runs through an async kernel client of that kernel (``kernel_manager.get_kernel(kid).client()``), which works
for local kernels and for remote ones behind ``--gateway-url`` alike.

A notebook open in JupyterLab with real-time collaboration (jupyter-collaboration's ``jupyter_server_ydoc``) lives in
a collaboration room: then the host reads and edits the room's shared ``YNotebook`` instead of the file, cell by
cell (see :mod:`.ydoc`), streams a running cell's outputs into it, and the room's autosave writes the file. The user
sees every change at once and keeps their unsaved edits. Without the extension, or with no room for the notebook,
the contents manager is used as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import posixpath
import weakref
from dataclasses import dataclass
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
from .execute import INTERRUPT_GRACE, kernel_pid, run_code, start_client

try:  # pycrdt and jupyter_ydoc come with jupyter-collaboration; without them there are no rooms to edit
    from . import ydoc as _ydoc
except ImportError:  # pragma: no cover - exercised only in environments without pycrdt
    _ydoc = None  # type: ignore[assignment]


@dataclass
class _Connection:
    client: Any
    pid: int | None


def _http_message(exc: HTTPError) -> str:
    return exc.log_message or exc.reason or f"HTTP {exc.status_code}"


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _session_path(path: str) -> str:
    """Session paths may carry a leading slash or a collaboration prefix; compare bare API paths."""
    return path.removeprefix("RTC:").lstrip("/")


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
        self.startup_timeout = startup_timeout
        self.interrupt_grace = interrupt_grace
        self._connections: dict[str, _Connection] = {}  # kernel id -> our client
        self._started: dict[str, tuple[str, str]] = {}  # path -> (session id, kernel id) we created
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
            raise HostError(f"could not read {path}: {_http_message(exc)}") from exc
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
            raise HostError(f"could not save {path}: {_http_message(exc)}") from exc

    # ---------------------------------------------------------------- sessions and kernels

    async def _session(self, path: str) -> dict[str, Any] | None:
        """The session JupyterLab (or we) opened for ``path``, notebook sessions first; None if there is none."""
        sessions = [s for s in await self.session_manager.list_sessions() if _session_path(s["path"]) == path]
        sessions.sort(key=lambda s: s.get("type") != "notebook")
        return sessions[0] if sessions else None

    def _km(self, kid: str) -> Any:
        return self.kernel_manager.get_kernel(kid)

    async def _is_alive(self, kid: str) -> bool:
        if kid not in self.kernel_manager:
            return False
        try:
            return bool(await ensure_async(self._km(kid).is_alive()))
        except Exception:
            return False

    async def _revive(self, kid: str) -> bool:
        """Bring a dead session kernel back under the same id (JupyterLab stays attached); False if it cannot be."""
        if await self._is_alive(kid):
            return True
        km = self._km(kid) if kid in self.kernel_manager else None
        restarter = getattr(km, "_restarter", None)
        if km is not None and getattr(km, "autorestart", False) and restarter is not None:
            # The server's restarter polls every time_to_dead seconds; let it act rather than race it.
            wait = 2 * float(getattr(restarter, "time_to_dead", 3.0)) + 1
            loop = asyncio.get_running_loop()
            until = loop.time() + wait
            while loop.time() < until and kid in self.kernel_manager:
                await asyncio.sleep(0.2)
                if await self._is_alive(kid):
                    return True
        if kid not in self.kernel_manager:
            return False
        try:
            await self._restart_kernel(kid)
        except Exception:  # it cannot come back: remove it, its session goes with it
            with contextlib.suppress(Exception):
                await ensure_async(self.kernel_manager.shutdown_kernel(kid, now=True))
            return False
        return await self._is_alive(kid)

    async def _restart_kernel(self, kid: str) -> None:
        pending = await ensure_async(self.kernel_manager.restart_kernel(kid))
        if inspect.isawaitable(pending):  # jupyter_server returns a future resolved by the first kernel_info reply
            await asyncio.wait_for(pending, self.startup_timeout)

    async def _kernel_for(self, path: str) -> str:
        """The id of the notebook's kernel: its session's, or a new session's. Call under ``run_lock``."""
        session = await self._session(path)
        if session is not None:
            kid = session["kernel"]["id"]
            if await self._revive(kid):
                return kid
            session = await self._session(path)  # a kernel that could not be revived takes its session with it
            if session is not None:
                await ensure_async(self.session_manager.delete_session(session["id"]))
        nb = await self.read(path) if await self.exists(path) else None
        name = kernel_name_of(nb, self.default_kernel_name)
        specs = getattr(self.kernel_manager, "kernel_spec_manager", None)
        try:
            model = await self.session_manager.create_session(
                path=path, name=posixpath.basename(path), type="notebook", kernel_name=name
            )
        except Exception as exc:
            known = ""
            if specs is not None and hasattr(specs, "find_kernel_specs"):
                found = await ensure_async(specs.find_kernel_specs())
                known = f"; installed kernels: {', '.join(sorted(found)) or 'none'}"
            raise HostError(f"could not start a {name!r} kernel for {path}: {exc}{known}") from exc
        kid = model["kernel"]["id"]
        self._started[path] = (model["id"], kid)
        return kid

    async def _connection(self, kid: str) -> _Connection:
        """Our client of kernel ``kid``; a new one after the kernel was restarted (a new process)."""
        km = self._km(kid)
        conn = self._connections.get(kid)
        if conn is not None and conn.pid == kernel_pid(km):
            return conn
        if conn is not None:
            await self._close(conn)
        try:
            client = await start_client(km, self.startup_timeout)
        except (RuntimeError, TimeoutError) as exc:
            raise HostError(f"the notebook's kernel does not answer ({exc}); it may be busy with another cell: "
                            "interrupt_kernel or restart_kernel, then try again") from exc
        conn = self._connections[kid] = _Connection(client, kernel_pid(km))
        return conn

    async def execute(
        self, path: str, code: str, timeout: float, on_output: OutputCallback | None = None, *,
        cell_id: str | None = None,
    ) -> ExecutionResult:
        """As :meth:`NotebookHost.execute`. If the notebook is open in a collaboration room, the outputs also stream
        into the cell being run, live: the cell ``cell_id``, or else the one code cell whose source is ``code`` in
        what the agent last read of the notebook."""
        path = self.api_path(path)
        async with self.run_lock(path):
            kid = await self._kernel_for(path)
            conn = await self._connection(kid)

            async def alive() -> bool:
                return await self._is_alive(kid) and kernel_pid(self._km(kid)) == conn.pid

            async def interrupt() -> None:
                await ensure_async(self.kernel_manager.interrupt_kernel(kid))

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
                self._connections.pop(kid, None)
                await self._close(conn)
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

    async def _kernel_id(self, path: str) -> str | None:
        session = await self._session(path)
        return session["kernel"]["id"] if session is not None else None

    async def interrupt(self, path: str) -> str | None:
        kid = await self._kernel_id(self.api_path(path))
        if kid is None or not await self._is_alive(kid):
            return None
        await ensure_async(self.kernel_manager.interrupt_kernel(kid))
        return kid

    async def restart(self, path: str) -> str:
        path = self.api_path(path)
        kid = await self._kernel_id(path)
        if kid is None or not await self._is_alive(kid):
            async with self.run_lock(path):
                kid = await self._kernel_for(path)
        else:
            try:
                await self._restart_kernel(kid)
            except Exception as exc:
                raise HostError(f"the kernel did not restart: {exc}") from exc
        self._execution_counts[path] = 0
        return kid

    async def kernel_status(self, path: str) -> dict[str, Any]:
        path = self.api_path(path)
        kid = await self._kernel_id(path)
        if kid is None or kid not in self.kernel_manager:
            return {"kernel_id": None, "kernel_name": None, "kernel_status": "not started"}
        km = self._km(kid)
        status = getattr(km, "execution_state", None) or "idle"
        if path in self._busy:
            status = "busy"
        if not await self._is_alive(kid):
            status = "dead"
        return {"kernel_id": kid, "kernel_name": getattr(km, "kernel_name", None), "kernel_status": status}

    async def known_paths(self) -> list[str]:
        return list(set(self._started) | set(self._cell_counts))

    @staticmethod
    async def _close(conn: _Connection) -> None:
        with contextlib.suppress(Exception):  # channels of a dead kernel may already be closed
            await ensure_async(conn.client.stop_channels())

    async def shutdown(self) -> None:
        """Close our clients; stop the kernels we started unless the user now has them open in JupyterLab."""
        self._bases.clear()
        conns, self._connections = list(self._connections.values()), {}
        for conn in conns:
            await self._close(conn)
        started, self._started = dict(self._started), {}
        for session_id, kid in started.values():
            if kid not in self.kernel_manager:
                continue
            try:
                model = await ensure_async(self.kernel_manager.kernel_model(kid))
                if model.get("connections", 0) > 0:
                    continue  # a JupyterLab tab is attached: the kernel is the user's now
                try:
                    await ensure_async(self.session_manager.delete_session(session_id))
                except HTTPError:  # our session is gone (the user closed it) but the kernel is not
                    await ensure_async(self.kernel_manager.shutdown_kernel(kid))
            except Exception:
                continue
