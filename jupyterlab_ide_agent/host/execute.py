"""Run one piece of code through a kernel client and collect what it produced, with a timeout.

Shared by both hosts. The client may be shared with other users of the kernel (JupyterLab's own connection sees the
same IOPub stream), so only messages whose parent is our request count. Every wait is bounded: the deadline, then a
short grace after an interrupt, and liveness is checked about once a second so a kernel that dies mid-cell is noticed
at once instead of when the timeout ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from queue import Empty
from typing import Any

from nbformat.v4 import new_output, output_from_msg

from .base import DEAD_MESSAGE, ExecutionResult, OutputCallback
from .gateway import GatewayChannelsClient, is_gateway_kernel

#: seconds between liveness checks while a cell runs
POLL = 0.5
#: seconds to wait for the kernel to go idle after an interrupt (its KeyboardInterrupt traceback arrives then)
INTERRUPT_GRACE = 5.0
#: seconds to wait for the shell reply after IOPub said idle (it is normally already there)
REPLY_GRACE = 2.0
#: kernel states a Jupyter server's kernel WebSocket announces (with no parent) when the kernel process died:
#: "restarting" when its restarter replaced it, "dead" when it could not. This is how a remote (gateway) kernel's
#: death is seen, since its process id is out of reach.
KERNEL_GONE = ("restarting", "dead")


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class _Collector:
    """Builds the cell's nbformat outputs from IOPub messages the way JupyterLab shows them."""

    def __init__(self, on_output: OutputCallback | None) -> None:
        self.outputs: list[dict[str, Any]] = []
        self.execution_count: int | None = None
        self.error: dict[str, Any] | None = None
        self._displays: dict[str, list[int]] = {}
        self._clear_pending = False
        self._on_output = on_output

    async def _notify(self, item: dict[str, Any]) -> None:
        if self._on_output is not None:
            with contextlib.suppress(Exception):  # a display hook must never break the execution it watches
                await _maybe_await(self._on_output(item))

    async def handle(self, msg: dict[str, Any]) -> None:
        kind, content = msg["header"]["msg_type"], msg["content"]
        if kind == "execute_input":
            self.execution_count = content.get("execution_count") or self.execution_count
        elif kind in ("stream", "display_data", "execute_result", "error"):
            if self._clear_pending:
                self._clear()
            output = dict(output_from_msg(msg))
            if kind == "execute_result":
                self.execution_count = content.get("execution_count") or self.execution_count
            if kind == "error":
                self.error = output
            last = self.outputs[-1] if self.outputs else None
            if kind == "stream" and last and last["output_type"] == "stream" and last["name"] == output["name"]:
                last["text"] += output["text"]
            else:
                display_id = (content.get("transient") or {}).get("display_id")
                if display_id:
                    self._displays.setdefault(display_id, []).append(len(self.outputs))
                self.outputs.append(output)
            await self._notify(output)
        elif kind == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self._clear()
            await self._notify({"output_type": "clear_output", "wait": bool(content.get("wait"))})
        elif kind == "update_display_data":
            display_id = (content.get("transient") or {}).get("display_id")
            for i in self._displays.get(display_id, []):
                self.outputs[i]["data"] = content.get("data", {})
                self.outputs[i]["metadata"] = content.get("metadata", {})
            update = {"output_type": "display_data", "data": content.get("data", {}),
                      "metadata": content.get("metadata", {})}
            await self._notify({"output_type": "update_display_data", "display_id": display_id, "output": update})

    def _clear(self) -> None:
        self.outputs.clear()
        self._displays.clear()
        self._clear_pending = False

    def add_payloads(self, payloads: list[dict[str, Any]]) -> None:
        """``obj?`` and ``%magic?`` answer through a "page" payload; JupyterLab shows it as an output, so do we."""
        for payload in payloads or []:
            if payload.get("source") == "page" and payload.get("data"):
                self.outputs.append(dict(new_output("display_data", data=payload["data"])))


async def run_code(
    client: Any,
    code: str,
    *,
    timeout: float,
    is_alive: Callable[[], Awaitable[bool]],
    interrupt: Callable[[], Awaitable[Any]],
    on_output: OutputCallback | None = None,
    kernel_id: str | None = None,
    interrupt_grace: float = INTERRUPT_GRACE,
) -> ExecutionResult:
    """Execute ``code`` with ``client`` (an async kernel client with channels started).

    ``is_alive`` says whether the kernel that received the request is still the one running (False once it died
    or was replaced by a restart); ``interrupt`` sends SIGINT through the kernel's manager.

    Requests go with ``stop_on_error=False``: an agent's failing cell must not abort cells the user queued behind
    it. A request the kernel aborted anyway (it arrived while the kernel was dropping requests after someone
    else's error) never ran, so it is sent once more.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout
    await _drain(client)
    for attempt in (1, 2):
        msg_id = client.execute(code, silent=False, store_history=True, allow_stdin=False, stop_on_error=False)
        collector = _Collector(on_output)
        try:
            status, message, idle = await _collect(client, msg_id, collector, deadline, timeout, is_alive,
                                                   interrupt, interrupt_grace)
        except asyncio.CancelledError:
            # The turn was cancelled: stop the cell too, or the kernel stays busy with work nobody waits for.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(_maybe_await(interrupt())), 5)
            raise
        reply = await _reply(client, msg_id, loop.time() + REPLY_GRACE) if idle else None
        content = reply["content"] if reply is not None else {}
        if content.get("status") == "aborted" and attempt == 1 and not collector.outputs:
            await asyncio.sleep(0.1)
            continue
        break
    if content:
        collector.execution_count = content.get("execution_count") or collector.execution_count
        collector.add_payloads(content.get("payload", []))
        if status == "ok" and content.get("status") == "error" and collector.error is None:
            collector.error = {"ename": content.get("ename", "Error"), "evalue": content.get("evalue", ""),
                               "traceback": content.get("traceback", [])}
        if status == "ok" and content.get("status") == "aborted":
            status, message = "error", "the kernel refused (aborted) this request twice; try again"
    if status == "ok" and collector.error is not None:
        status = "error"
    error = collector.error or {}
    return ExecutionResult(
        status=status,  # type: ignore[arg-type]
        outputs=collector.outputs,
        execution_count=collector.execution_count,
        error_name=error.get("ename", ""),
        error_value=error.get("evalue", ""),
        traceback=list(error.get("traceback", [])),
        kernel_id=kernel_id,
        duration=loop.time() - started,
        message=message,
    )


async def _collect(
    client: Any, msg_id: str, collector: _Collector, deadline: float, timeout: float,
    is_alive: Callable[[], Awaitable[bool]], interrupt: Callable[[], Awaitable[Any]], interrupt_grace: float,
) -> tuple[str, str, bool]:
    """Read IOPub until our request is idle, the deadline passes (then interrupt, wait a grace) or the kernel dies.

    Returns (status, message, idle).
    """
    loop = asyncio.get_running_loop()
    next_check = loop.time() + POLL
    status, message = "ok", ""
    while True:
        now = loop.time()
        if now >= deadline:
            if status == "timeout":  # interrupted, and still not idle after the grace period
                message = (f"the cell ran past its {timeout:g} s timeout and was interrupted, but the kernel is "
                           f"still busy {interrupt_grace:g} s later; use restart_kernel if it does not recover")
                return status, message, False
            status = "timeout"
            message = f"the cell ran past its {timeout:g} s timeout and was interrupted (KeyboardInterrupt)"
            with contextlib.suppress(Exception):  # a kernel that died meanwhile is noticed by is_alive below
                await interrupt()
            deadline = now + interrupt_grace
            continue
        try:
            msg = await client.get_iopub_msg(timeout=min(POLL, max(0.01, deadline - now)))
        except Empty:
            msg = None
        if loop.time() >= next_check or msg is None:
            next_check = loop.time() + POLL
            if not await is_alive():
                return "dead", DEAD_MESSAGE, False
        if msg is None:
            continue
        if msg["header"]["msg_type"] == "status" and msg["content"].get("execution_state") in KERNEL_GONE:
            return "dead", DEAD_MESSAGE, False
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["header"]["msg_type"] == "status":
            if msg["content"].get("execution_state") == "idle":
                return status, message, True
            continue
        await collector.handle(msg)


async def _drain(client: Any) -> None:
    """Drop what IOPub delivered since our last request: other requests' output, and any notice of a restart that
    happened before this request was sent (which must not be taken for this request's kernel dying)."""
    with contextlib.suppress(Empty, RuntimeError):
        for _ in range(100_000):
            await client.get_iopub_msg(timeout=0)


async def _reply(client: Any, msg_id: str, until: float) -> dict[str, Any] | None:
    """The execute_reply to ``msg_id``; replies to earlier (timed-out) requests are skipped."""
    loop = asyncio.get_running_loop()
    while (left := until - loop.time()) > 0:
        try:
            msg = await client.get_shell_msg(timeout=left)
        except Empty:
            return None
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            return msg
    return None


def kernel_pid(km: Any) -> int | None:
    """The kernel's process id: it changes when the kernel is restarted, which is how a replaced kernel is noticed.

    None for kernels this process cannot see (a gateway's): for those only ``is_alive`` is checked.
    """
    return getattr(getattr(km, "provisioner", None), "pid", None)


async def start_client(km: Any, timeout: float) -> Any:
    """A started async client of ``km``'s kernel, ready (kernel_info answered, IOPub connected).

    A gateway's kernel gets our :class:`~.gateway.GatewayChannelsClient` instead of ``km.client()`` (see
    :mod:`.gateway` for why); both are jupyter_client async kernel clients, so nothing else differs.
    """
    client = GatewayChannelsClient.for_kernel(km) if is_gateway_kernel(km) else km.client()
    await _maybe_await(client.start_channels())
    try:
        await client.wait_for_ready(timeout=timeout)
    except BaseException:
        await _maybe_await(client.stop_channels())
        raise
    return client
