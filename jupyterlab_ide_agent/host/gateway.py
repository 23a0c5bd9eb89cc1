"""A kernel client for kernels behind a Kernel or Enterprise Gateway (``--gateway-url``), on the server's own loop.

With a gateway, the server's kernel manager is jupyter_server's ``GatewayMappingKernelManager`` and a kernel is only
reachable through the gateway's ``/api/kernels/{id}/channels`` WebSocket, the one JupyterLab's tabs reach through the
server's proxy. ``GatewayKernelManager.client()`` returns jupyter_server's ``GatewayKernelClient``, which cannot serve
an agent on the server: it connects with websocket-client and no request headers, so a gateway that wants a token
(``c.GatewayClient.auth_token``) answers 401; its connect blocks the event loop; and its ``get_msg`` spins on
``asyncio.sleep(0)`` until a message or the timeout, which keeps a core busy for as long as a remote cell runs.

:class:`GatewayChannelsClient` is the same jupyter_client ``AsyncKernelClient`` (its message builders,
``execute``, ``wait_for_ready``) with its channels carried by one tornado WebSocket opened with exactly the
request the server's own proxy uses (``GatewayClient.load_connection_args()``: auth header, custom headers, TLS
options, cookies, timeouts), and each channel an ``asyncio.Queue``: waiting costs nothing and never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.jsonutil import extract_dates, json_default
from tornado.escape import url_escape
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
#: largest kernel message accepted (tornado's default, 10 MiB, would drop the connection on one big plot or table)
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class GatewayConnectionError(RuntimeError):
    """The gateway refused or could not be reached for a kernel's WebSocket (says which, and the URL)."""


def is_gateway_kernel(km: Any) -> bool:
    """Whether ``km`` manages a kernel that lives in a gateway (jupyter_server's ``GatewayKernelManager``)."""
    try:
        from jupyter_server.gateway.managers import GatewayKernelManager
    except ImportError:  # pragma: no cover - jupyter_server is a dependency; the CLI's LocalHost never gets here
        return False
    return isinstance(km, GatewayKernelManager)


class _Channel:
    """One channel of the kernel's WebSocket: a queue filled by the client's reader task."""

    def __init__(self, name: str, client: GatewayChannelsClient) -> None:
        self.name = name
        self._client = client
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message; ``queue.Empty`` after ``timeout`` seconds, as jupyter_client's channels raise."""
        with contextlib.suppress(asyncio.QueueEmpty):
            return self.queue.get_nowait()
        if self._client.closed_reason is not None:
            raise Empty  # nothing more will come; the caller's liveness check says why
        if timeout is not None and timeout <= 0:
            raise Empty
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            raise Empty from None

    async def msg_ready(self) -> bool:
        return not self.queue.empty()

    def send(self, msg: dict[str, Any]) -> None:
        self._client.send(self.name, msg)

    def start(self) -> None:
        """The WebSocket carries every channel; it is opened by ``start_channels``."""

    def stop(self) -> None:
        """Closing the WebSocket (``stop_channels``) stops every channel."""

    def is_alive(self) -> bool:
        return self._client.connected

    # the heartbeat channel's interface (there is no separate heartbeat over a gateway: the socket is the liveness)
    time_to_dead = 3.0

    def is_beating(self) -> bool:
        return self._client.connected

    def pause(self) -> None:
        pass

    def unpause(self) -> None:
        pass


class GatewayChannelsClient(AsyncKernelClient):
    """An ``AsyncKernelClient`` of one gateway kernel, over the gateway's kernel WebSocket (JSON messages)."""

    def __init__(self, kernel_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_id = kernel_id
        self._ws: WebSocketClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queues = {name: _Channel(name, self) for name in CHANNELS}
        #: why the socket closed (None while it is open or before it was opened)
        self.closed_reason: str | None = None

    @classmethod
    def for_kernel(cls, km: Any) -> GatewayChannelsClient:
        """A client of ``km``'s kernel (a ``GatewayKernelManager``), sharing its session (username, key)."""
        return cls(km.kernel_id, parent=km, session=km.session, log=km.log)

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.closed_reason is None

    async def start_channels(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Open the kernel's WebSocket on the gateway, as the server's proxy does for JupyterLab's tabs."""
        from jupyter_server.gateway.gateway_client import GatewayClient
        from jupyter_server.utils import url_path_join

        gateway = GatewayClient.instance()
        url = url_path_join(gateway.ws_url or "", gateway.kernels_endpoint, url_escape(self.kernel_id), "channels")
        request = HTTPRequest(url, **gateway.load_connection_args())
        try:
            self._ws = await websocket_connect(request, max_message_size=MAX_MESSAGE_BYTES)
        except Exception as exc:  # HTTP 401/404, refused, timed out, TLS: all mean "no connection", said plainly
            hint = " (check c.GatewayClient.auth_token)" if getattr(exc, "code", None) in (401, 403) else ""
            raise GatewayConnectionError(
                f"the kernel gateway refused or did not answer the connection to kernel "
                f"{self.kernel_id} at {url}: {exc}{hint}"
            ) from None
        self.closed_reason = None
        self._reader = asyncio.create_task(self._read(self._ws))

    async def _read(self, ws: WebSocketClientConnection) -> None:
        """Route every message to its channel's queue until the socket closes."""
        while True:
            raw = await ws.read_message()
            if raw is None:
                self.closed_reason = f"the gateway closed the kernel's connection ({ws.close_code or 'no code'})"
                return
            try:
                msg = _decode(raw)
                queue = self._queues.get(msg.pop("channel", None) or "")
            except Exception:  # one bad message must not end the reader (the cell would wait for its timeout)
                self.log.warning("IDE agent: ignored an unreadable message from gateway kernel %s", self.kernel_id)
                continue
            if queue is not None:
                queue.queue.put_nowait(msg)

    def send(self, channel: str, msg: dict[str, Any]) -> None:
        if not self.connected:
            raise RuntimeError(self.closed_reason or "the kernel's gateway connection is not open")
        assert self._ws is not None
        self._ws.write_message(json.dumps({**msg, "channel": channel}, default=json_default))

    def stop_channels(self) -> None:
        """Start closing the socket; :meth:`wait_closed` waits for the gateway's answer."""
        if self._ws is not None:
            self._ws.close()
        self.closed_reason = self.closed_reason or "closed by the agent"

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait until the gateway has answered the close, so its kernel models no longer count this connection
        (the count is how one tells a kernel a JupyterLab tab is attached to)."""
        if self._reader is not None:
            _, pending = await asyncio.wait({self._reader}, timeout=timeout)
            for task in pending:
                task.cancel()

    @property
    def channels_running(self) -> bool:
        return self.connected

    async def _async_is_alive(self) -> bool:
        return self.connected

    is_alive = _async_is_alive

    @property
    def shell_channel(self) -> _Channel:  # type: ignore[override]
        return self._queues["shell"]

    @property
    def iopub_channel(self) -> _Channel:  # type: ignore[override]
        return self._queues["iopub"]

    @property
    def stdin_channel(self) -> _Channel:  # type: ignore[override]
        return self._queues["stdin"]

    @property
    def control_channel(self) -> _Channel:  # type: ignore[override]
        return self._queues["control"]

    @property
    def hb_channel(self) -> _Channel:  # type: ignore[override]
        return self._queues["hb"]


def _decode(raw: str | bytes) -> dict[str, Any]:
    """A message of the kernel WebSocket: JSON text, or the binary form used when a message carries buffers."""
    if isinstance(raw, bytes):
        from jupyter_server.services.kernels.connection.base import deserialize_binary_message

        return deserialize_binary_message(raw)
    msg = json.loads(raw)
    msg["header"] = extract_dates(msg["header"])
    msg["parent_header"] = extract_dates(msg.get("parent_header") or {})
    return msg
