"""LocalHost: notebooks on disk and one ``jupyter_client`` kernel per notebook, for use without a Jupyter server.

This is what the Python API and the CLI run on (the seed's behaviour): a notebook's kernel starts on its first
execution, in the notebook's directory, and is kept (variables persist) until :meth:`LocalHost.shutdown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbformat import NotebookNode

from ..tools.files import _atomic_write  # the one atomic-replace helper of the package
from .base import (
    ExecutionResult,
    HostError,
    NotebookHost,
    OutputCallback,
    kernel_name_of,
)
from .execute import INTERRUPT_GRACE, kernel_pid, run_code, start_client


@dataclass
class _Kernel:
    km: AsyncKernelManager
    client: Any
    pid: int | None
    busy: bool = False
    dead: bool = False


def read_notebook_file(os_path: Path, shown: str) -> NotebookNode:
    """Read a notebook file as v4; :class:`HostError` with a readable reason if it is not one."""
    if not os_path.is_file():
        raise HostError(f"notebook {shown} does not exist" if not os_path.exists() else f"{shown} is not a file")
    try:
        with open(os_path, encoding="utf-8") as fh:
            return nbformat.read(fh, as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError, UnicodeDecodeError) as exc:
        raise HostError(f"{shown} is not valid notebook JSON ({exc}); fix or recreate it") from exc
    except (KeyError, ValueError, TypeError, AttributeError, nbformat.ValidationError) as exc:
        raise HostError(f"{shown} is not a readable Jupyter notebook ({type(exc).__name__}: {exc})") from exc


class LocalHost(NotebookHost):
    """Files with nbformat under ``root``; kernels from ``jupyter_client``'s AsyncKernelManager."""

    def __init__(
        self,
        root: str | Path,
        *,
        kernel_name: str = "python3",
        startup_timeout: float = 60.0,
        interrupt_grace: float = INTERRUPT_GRACE,
    ) -> None:
        super().__init__(Path(root).expanduser().resolve())
        self.default_kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        self.interrupt_grace = interrupt_grace
        self._kernels: dict[str, _Kernel] = {}

    # ---------------------------------------------------------------- contents

    def _os_path(self, path: str) -> Path:
        return self.root / path

    async def exists(self, path: str) -> bool:
        return self._os_path(self.api_path(path)).is_file()

    async def _load(self, path: str) -> NotebookNode:
        return await asyncio.to_thread(read_notebook_file, self._os_path(path), path)

    async def _save(self, path: str, nb: NotebookNode) -> None:
        os_path = self._os_path(path)

        def save() -> None:
            os_path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(os_path, (nbformat.writes(nb, version=4) + "\n").encode("utf-8"))

        try:
            await asyncio.to_thread(save)
        except OSError as exc:
            raise HostError(f"could not save {path}: {exc.strerror or exc}") from exc

    # ---------------------------------------------------------------- kernels

    async def _alive(self, kernel: _Kernel) -> bool:
        return not kernel.dead and await kernel.km.is_alive() and kernel_pid(kernel.km) == kernel.pid

    async def _ensure(self, path: str) -> _Kernel:
        """The notebook's kernel, started (or replaced, after a death) on demand. Call under ``run_lock``."""
        kernel = self._kernels.get(path)
        if kernel is not None and await self._alive(kernel):
            return kernel
        if kernel is not None:
            del self._kernels[path]
            await self._stop(kernel, now=True)
        nb = await self.read(path) if await self.exists(path) else None
        name = kernel_name_of(nb, self.default_kernel_name)
        # IPC (Unix sockets in the runtime dir, owner-only) rather than TCP: no port other local
        # users could reach, and the kernel has no reason to warn about plain-text TCP
        # (the socket path must be absolute: the kernel runs in the notebook's folder, not ours)
        runtime = Path(jupyter_runtime_dir())
        await asyncio.to_thread(runtime.mkdir, parents=True, exist_ok=True)
        km = AsyncKernelManager(kernel_name=name, transport="ipc",
                                ip=str(runtime / f"ide-agent-{uuid.uuid4().hex[:12]}"))
        cwd = self._os_path(path).parent
        env = {**os.environ, "JPY_SESSION_NAME": str(self._os_path(path))}
        try:
            await km.start_kernel(cwd=str(cwd if cwd.is_dir() else self.root), env=env)
        except NoSuchKernel as exc:
            available = ", ".join(sorted(km.kernel_spec_manager.find_kernel_specs())) or "none"
            raise HostError(f"kernel {name!r} (from the notebook's metadata) is not installed; "
                            f"installed kernels: {available}") from exc
        try:
            client = await start_client(km, self.startup_timeout)
        except (RuntimeError, TimeoutError) as exc:
            await km.shutdown_kernel(now=True)
            raise HostError(f"the {name} kernel did not start: {exc}") from exc
        kernel = _Kernel(km, client, kernel_pid(km))
        self._kernels[path] = kernel
        return kernel

    async def execute(
        self, path: str, code: str, timeout: float, on_output: OutputCallback | None = None
    ) -> ExecutionResult:
        path = self.api_path(path)
        async with self.run_lock(path):
            kernel = await self._ensure(path)
            kernel.busy = True
            try:
                result = await run_code(
                    kernel.client, code, timeout=timeout, on_output=on_output, kernel_id=kernel.km.kernel_id,
                    is_alive=lambda: self._alive(kernel), interrupt=kernel.km.interrupt_kernel,
                    interrupt_grace=self.interrupt_grace,
                )
            finally:
                kernel.busy = False
            if result.status == "dead":
                kernel.dead = True  # replaced on the next call
            self._record(path, result)
            return result

    async def interrupt(self, path: str) -> str | None:
        kernel = self._kernels.get(self.api_path(path))
        if kernel is None or not await self._alive(kernel):
            return None
        await kernel.km.interrupt_kernel()
        return kernel.km.kernel_id

    async def restart(self, path: str) -> str:
        path = self.api_path(path)
        kernel = self._kernels.get(path)
        if kernel is None or not await self._alive(kernel):
            async with self.run_lock(path):
                kernel = await self._ensure(path)
        else:
            await kernel.km.restart_kernel(now=False)
            old = kernel.client
            old.stop_channels()
            kernel.client = await start_client(kernel.km, self.startup_timeout)
            kernel.pid = kernel_pid(kernel.km)
        self._execution_counts[path] = 0
        return kernel.km.kernel_id

    async def kernel_status(self, path: str) -> dict[str, Any]:
        kernel = self._kernels.get(self.api_path(path))
        if kernel is None:
            return {"kernel_id": None, "kernel_name": None, "kernel_status": "not started"}
        status = "busy" if kernel.busy else "idle"
        if not await self._alive(kernel):
            status = "dead"
        return {"kernel_id": kernel.km.kernel_id, "kernel_name": kernel.km.kernel_name, "kernel_status": status}

    async def known_paths(self) -> list[str]:
        return list(set(self._kernels) | set(self._cell_counts))

    async def _stop(self, kernel: _Kernel, now: bool = False) -> None:
        with contextlib.suppress(Exception):  # channels of a dead kernel may already be closed
            kernel.client.stop_channels()
        try:
            await asyncio.wait_for(kernel.km.shutdown_kernel(now=now), 10)
        except Exception:  # a polite shutdown failed or hung: kill it
            with contextlib.suppress(Exception):
                await kernel.km.shutdown_kernel(now=True)

    async def shutdown(self) -> None:
        kernels, self._kernels = list(self._kernels.values()), {}
        await asyncio.gather(*(self._stop(k) for k in kernels))
