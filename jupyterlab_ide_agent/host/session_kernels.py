"""Each notebook's kernel on a Jupyter server: the kernel of its *session*, through the server's own managers.

If the user has the notebook open in JupyterLab there is a session for its path, and the agent runs code on that very
kernel. Otherwise a session is created (``session_manager.create_session`` starts the kernel in the notebook's
directory), so when the user opens the notebook later JupyterLab attaches to the kernel the agent has been using.

Only the managers' public async API is used, so the same code drives local kernels and remote ones behind
``--gateway-url`` (jupyter_server's Gateway* managers). The differences that remain are facts about a gateway, each
handled where it shows: a kernel's process id is out of reach (a restart is seen through the kernel WebSocket
instead, see :mod:`.execute`); the gateway may be unreachable, which is not the same as a dead kernel; a kernel
culled on the gateway leaves a session without a kernel model until kernels are listed; connection counts are the
gateway's, refreshed by listing kernels.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jupyter_core.utils import ensure_async
from tornado.web import HTTPError

from .base import HostError
from .execute import kernel_pid, start_client
from .gateway import GatewayConnectionError


@dataclass
class Connection:
    """Our client of one kernel, and the process it was started against (None for a gateway's kernel)."""

    client: Any
    pid: int | None


def http_message(exc: HTTPError) -> str:
    """A tornado ``HTTPError`` as one readable line (its ``log_message`` is formatted only when tornado logs it)."""
    message = exc.log_message or exc.reason or ""
    if message and exc.args:
        with contextlib.suppress(TypeError, ValueError):
            message = message % exc.args
    return f"{message} (HTTP {exc.status_code})" if message else f"HTTP {exc.status_code}"


def _session_path(path: str) -> str:
    """Session paths may carry a leading slash or a collaboration prefix; compare bare API paths."""
    return path.removeprefix("RTC:").lstrip("/")


class SessionKernels:
    """Finds, starts, revives, restarts and connects to the kernels of notebook sessions."""

    def __init__(self, session_manager: Any, kernel_manager: Any, startup_timeout: float) -> None:
        self.session_manager = session_manager
        self.kernel_manager = kernel_manager
        self.startup_timeout = startup_timeout
        self.connections: dict[str, Connection] = {}  # kernel id -> our client
        self.started: dict[str, tuple[str, str]] = {}  # path -> (session id, kernel id) we created

    async def _sessions(self, path: str) -> list[dict[str, Any]]:
        return [s for s in await self.session_manager.list_sessions() if _session_path(s["path"]) == path]

    async def session(self, path: str) -> dict[str, Any] | None:
        """The session JupyterLab (or we) opened for ``path``, notebook sessions first; None if there is none."""
        sessions = await self._sessions(path)
        if any(not s.get("kernel") for s in sessions):
            # A session whose kernel has no model: a gateway's kernel was culled or deleted behind the server's
            # back. Listing kernels is what makes the gateway kernel manager let go of it; its session goes too.
            with contextlib.suppress(Exception):
                await ensure_async(self.kernel_manager.list_kernels())
            sessions = [s for s in await self._sessions(path) if s.get("kernel")]
        sessions.sort(key=lambda s: s.get("type") != "notebook")
        return sessions[0] if sessions else None

    async def kernel_id(self, path: str) -> str | None:
        session = await self.session(path)
        return session["kernel"]["id"] if session is not None else None

    def km(self, kid: str) -> Any:
        return self.kernel_manager.get_kernel(kid)

    async def is_alive(self, kid: str) -> bool:
        """Whether kernel ``kid`` runs. A gateway that cannot be asked (refused, unreachable) is a :class:`HostError`:
        taking it for a dead kernel would delete the user's session over a network hiccup."""
        if kid not in self.kernel_manager:
            return False
        km = self.km(kid)
        try:
            # has_kernel too: a gateway kernel manager says alive once more after the gateway answered 404
            return bool(await ensure_async(km.is_alive())) and bool(km.has_kernel)
        except HTTPError as exc:
            raise HostError(f"the kernel gateway could not be asked about kernel {kid}: {http_message(exc)}") from exc
        except Exception:
            return False

    async def revive(self, kid: str) -> bool:
        """Bring a dead session kernel back under the same id (JupyterLab stays attached); False if it cannot be."""
        if await self.is_alive(kid):
            return True
        km = self.km(kid) if kid in self.kernel_manager else None
        restarter = getattr(km, "_restarter", None)
        if km is not None and getattr(km, "autorestart", False) and restarter is not None:
            # The server's restarter polls every time_to_dead seconds; let it act rather than race it.
            wait = 2 * float(getattr(restarter, "time_to_dead", 3.0)) + 1
            loop = asyncio.get_running_loop()
            until = loop.time() + wait
            while loop.time() < until and kid in self.kernel_manager:
                await asyncio.sleep(0.2)
                if await self.is_alive(kid):
                    return True
        if kid not in self.kernel_manager:
            return False
        try:
            await self.restart(kid)
        except Exception:  # it cannot come back: remove it, its session goes with it
            with contextlib.suppress(Exception):
                await ensure_async(self.kernel_manager.shutdown_kernel(kid, now=True))
            return False
        return await self.is_alive(kid)

    async def restart(self, kid: str) -> None:
        pending = await ensure_async(self.kernel_manager.restart_kernel(kid))
        if inspect.isawaitable(pending):  # jupyter_server returns a future resolved by the first kernel_info reply
            await asyncio.wait_for(pending, self.startup_timeout)

    async def interrupt(self, kid: str) -> None:
        await ensure_async(self.kernel_manager.interrupt_kernel(kid))

    async def kernel_for(self, path: str, kernel_name: Callable[[], Awaitable[str]]) -> str:
        """The id of the notebook's kernel: its session's, or a new session's running ``await kernel_name()``.
        Call under the notebook's run lock."""
        session = await self.session(path)
        if session is not None:
            kid = session["kernel"]["id"]
            if await self.revive(kid):
                return kid
            session = await self.session(path)  # a kernel that could not be revived takes its session with it
            if session is not None:
                await ensure_async(self.session_manager.delete_session(session["id"]))
        name = await kernel_name()
        try:
            model = await self.session_manager.create_session(
                path=path, name=posixpath.basename(path), type="notebook", kernel_name=name
            )
        except Exception as exc:
            message = http_message(exc) if isinstance(exc, HTTPError) else str(exc)
            raise HostError(f"could not start a {name!r} kernel for {path}: {message}{await self._known()}") from exc
        kid = model["kernel"]["id"]
        self.started[path] = (model["id"], kid)
        return kid

    async def _known(self) -> str:
        """"; installed kernels: ..." from the server's kernel spec manager (the gateway's, with a gateway)."""
        specs = getattr(self.kernel_manager, "kernel_spec_manager", None)
        try:
            found = await ensure_async(specs.get_all_specs()) if specs is not None else None
        except Exception:
            return ""
        return f"; installed kernels: {', '.join(sorted(found)) or 'none'}" if found is not None else ""

    async def connection(self, kid: str) -> Connection:
        """Our client of kernel ``kid``; a new one after the kernel was restarted (a new process) or the socket
        closed."""
        km = self.km(kid)
        conn = self.connections.get(kid)
        if conn is not None and conn.pid == kernel_pid(km) and conn.client.channels_running:
            return conn
        if conn is not None:
            await self.close(conn)
        try:
            client = await start_client(km, self.startup_timeout)
        except GatewayConnectionError as exc:
            raise HostError(str(exc)) from exc
        except (RuntimeError, TimeoutError) as exc:
            raise HostError(
                f"the notebook's kernel does not answer ({exc}); it may be busy with another cell: "
                "interrupt_kernel or restart_kernel, then try again"
            ) from exc
        conn = self.connections[kid] = Connection(client, kernel_pid(km))
        return conn

    async def drop(self, kid: str) -> None:
        """Forget and close our client of ``kid`` (its kernel died: the next call connects afresh)."""
        conn = self.connections.pop(kid, None)
        if conn is not None:
            await self.close(conn)

    @staticmethod
    async def close(conn: Connection) -> None:
        with contextlib.suppress(Exception):  # channels of a dead kernel may already be closed
            await ensure_async(conn.client.stop_channels())
            wait_closed = getattr(conn.client, "wait_closed", None)  # a gateway's socket closes asynchronously
            if wait_closed is not None:
                await wait_closed()

    async def shutdown(self) -> None:
        """Close our clients; stop the kernels we started unless the user now has them open in JupyterLab."""
        conns, self.connections = list(self.connections.values()), {}
        for conn in conns:
            await self.close(conn)
        started, self.started = dict(self.started), {}
        if not started:
            return
        try:  # fresh models: a gateway's kernel manager refreshes its (remote) connection counts only when listing
            models = {m["id"]: m for m in await ensure_async(self.kernel_manager.list_kernels())}
        except Exception:
            models = {}
        for session_id, kid in started.values():
            if kid not in self.kernel_manager:
                continue
            try:
                model = models.get(kid) or await ensure_async(self.kernel_manager.kernel_model(kid))
                if model.get("connections", 0) > 0:
                    continue  # a JupyterLab tab is attached: the kernel is the user's now
                try:
                    await ensure_async(self.session_manager.delete_session(session_id))
                except HTTPError:  # our session is gone (the user closed it) but the kernel is not
                    await ensure_async(self.kernel_manager.shutdown_kernel(kid))
            except Exception:
                continue
