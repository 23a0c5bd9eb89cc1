"""IDEAgent: model turn -> tool calls -> tool results -> model turn, streamed as events.

The agent is a traitlets ``Configurable`` so the same ``c.IDEAgent.*`` lines configure it inside the
Jupyter server, in the CLI and in the Python API. One ``run(prompt)`` is one user turn; it yields
events (see :mod:`.events`) and always ends with exactly one ``done`` event, whatever happened.

Each model step and each tool call runs in a *pump* task that feeds a queue the generator reads:
``cancel()`` cancels that task, so a turn stops at once even while a provider is silent or a tool
is busy, and tools can stream their own events (the ensemble's members) while they run. After a
cancel or an error the history is repaired so the next turn is valid for every provider: partial
text is kept as an interrupted assistant message and every tool call gets a result.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

from traitlets import Bool, Instance, Unicode

from ..ensemble import (
    Ensemble,
    members_from_config,
    recent_context,
    synthesizer_from_config,
)
from ..host import LocalHost, NotebookHost
from ..mcp import McpManager
from ..memory.compactor import CompactionResult, Compactor
from ..memory.tokens import context_window
from ..prompts.generic_ide import GENERIC_IDE_PROMPT
from ..providers.base import (
    Finished,
    ProviderError,
    ProviderRequest,
    ReasoningDelta,
    ReasoningOptions,
    TextDelta,
    ToolCallRequested,
    Usage,
)
from ..providers.prices import PriceTable
from ..providers.registry import ProviderPool, build_settings, parse_model
from ..tools.base import ToolContext, ToolError, ToolRegistry, ToolResult
from ..tools.ensemble import ConsultEnsemble
from ..tools.files import file_tools
from ..tools.notebook import notebook_tools
from ..tools.scripts import script_tools
from ..workspace.processes import ProcessTable
from ..workspace.ray_jobs import RayJobTable
from ..workspace.state import WorkspaceState
from .approval import Approvals
from .attachments import resolve_attachments
from .coalesce import DeltaCoalescer
from .events import EventStream
from .messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    UserMessage,
    unanswered_calls,
)
from .rules import RuleBook
from .settings import AgentSettings

Event = dict[str, Any]


class TurnCancelled(Exception):
    """Raised inside ``run`` when ``cancel()`` stopped the current step."""


_END = object()


class IDEAgent(AgentSettings):
    """The agent. ``async for event in agent.run(prompt)``, then ``await agent.cleanup()``."""

    session_id = Unicode()
    workspace_dir = Instance(Path)
    system_prompt = Unicode(GENERIC_IDE_PROMPT)
    enable_memory_compaction = Bool(True)

    def __init__(
        self,
        session_id: str | None = None,
        workspace_dir: str | Path = ".",
        system_prompt: str | None = None,
        enable_memory_compaction: bool = True,
        *,
        tools: ToolRegistry | None = None,
        provider_pool: ProviderPool | None = None,
        host: NotebookHost | None = None,
        processes: ProcessTable | None = None,
        mcp: McpManager | None = None,
        last_seq: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.session_id = session_id or uuid.uuid4().hex
        self.workspace_dir = Path(workspace_dir).expanduser().resolve()
        if system_prompt is not None:
            self.system_prompt = system_prompt
        self.enable_memory_compaction = enable_memory_compaction
        self._owns_pool = provider_pool is None
        self.pool = provider_pool or ProviderPool(build_settings(self.providers))
        self.prices = PriceTable(self.model_prices)
        # inside a server the host is the server's (shared); standalone the agent owns a LocalHost
        self._owns_host = host is None
        self.host = host or LocalHost(self.workspace_dir)
        self.processes = processes or ProcessTable(self.workspace_dir, grace=(self.script_grace, self.script_grace))
        # MCP servers: the Jupyter server's shared manager (the extension's), else the agent's own; lazy
        shared_mcp = mcp or getattr(self.parent, "mcp_manager", None)
        self._owns_mcp = shared_mcp is None
        self.mcp = shared_mcp or McpManager.from_settings(self, cwd=self.workspace_dir, log=self.log)
        # Ray jobs (ExecuteScript target="ray") when a cluster is configured; Ray itself is imported on first use
        self.ray_jobs = RayJobTable(
            self.ray_address, self.workspace_dir, self.session_id, timeout=self.ray_timeout,
            upload_timeout=self.ray_upload_timeout, upload_working_dir=self.ray_upload_working_dir,
            excludes=self.ray_excludes) if self.ray_address else None
        self.workspace = WorkspaceState(self.workspace_dir, self.host, self.processes, ray_jobs=self.ray_jobs)
        self.tools = tools if tools is not None else self.default_tools()
        self.history: list[Message] = []
        self.events = EventStream(self.session_id, last_seq)
        self.usage = Usage()
        self.cost_usd = 0.0
        self.started_at = time.time()
        self._running = False
        self._cancelled = False
        self._active: asyncio.Task[None] | None = None
        self.approvals = Approvals()
        self._compactor: tuple[str, Compactor] | None = None
        self._last_input_tokens: int | None = None  # the main model's last reported prompt size
        self.rules = RuleBook(self)  # user rule files and AGENTS.md, read into each turn's system prompt
        self.turn_system_prompt = self.system_prompt

    # --- public API ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    def cancel(self) -> bool:
        """Stop the running turn; it ends with ``done(reason="cancelled")``. False if idle."""
        if not self._running:
            return False
        self._cancelled = True
        if self._active is not None:
            self._active.cancel()
        return True

    def approve(self, call_id: str, decision: str) -> bool:
        """Answer an ``approval_request``: "run" or "skip". False if that call is not waiting."""
        return self.approvals.decide(call_id, decision)

    async def cleanup(self) -> None:
        """Cancel the turn, stop this session's scripts, and release what the agent owns
        (its kernels when standalone, its provider clients when not shared)."""
        self.cancel()
        await self.processes.stop_all()
        if self.ray_jobs is not None:
            self.ray_jobs.close()  # its jobs keep running on the cluster: a training run may outlive the chat
        if self._owns_host:
            await self.host.shutdown()
        if self._owns_pool:
            await self.pool.aclose()
        if self._owns_mcp:
            await self.mcp.aclose()

    def default_tools(self) -> ToolRegistry:
        """Files, notebooks, background scripts and (unless disabled) the ensemble."""
        tools = file_tools() + notebook_tools(self.cell_timeout, self.max_cell_timeout,
                                                     send_images=self.send_images_to_model)
        tools += script_tools(self.ray_address)
        if self.ensemble_enabled:
            tools.append(ConsultEnsemble(self.make_ensemble, conversation=lambda: recent_context(self.history)))
        return ToolRegistry(tools)

    def make_ensemble(self) -> Ensemble:
        """The ensemble as configured now (read per consultation, so config errors surface as a
        clear tool error instead of breaking the session)."""
        try:
            members = members_from_config(self.ensemble_members, timeout=self.ensemble_timeout)
            synthesizer = synthesizer_from_config(self.ensemble_synthesizer)
        except ValueError as exc:
            raise ToolError(f"The ensemble is misconfigured (c.IDEAgent.ensemble_*): {exc}") from None
        return Ensemble(self.pool, self.prices, members, synthesizer)

    def add_cost(self, cost_usd: float | None) -> None:
        """Money spent outside the main model's calls (the ensemble) counts in the session total."""
        self.cost_usd += cost_usd or 0.0

    async def run(self, prompt: str, context: dict[str, Any] | None = None) -> AsyncIterator[Event]:
        """Run one user turn, yielding events; never raises for provider or tool failures."""
        if self._running:
            yield self.events.make("error", None, message="A turn is already running.", kind="busy")
            return
        self._running, self._cancelled = True, False
        turn = uuid.uuid4().hex[:12]
        # attachments: the event keeps the references (chips), the history message the content (never raises)
        context, attached = await resolve_attachments(context, self.workspace_dir, self.host, self._redact, self.log)
        yield self.events.make("user_message", turn, text=prompt, context=context)
        self.turn_system_prompt, rules = self.rules.for_turn(self.system_prompt, context)
        if rules is not None:  # only when the set of rule files changed
            yield self.events.make("rules", turn, **rules)
        reason = "completed"
        try:
            self.history.append(UserMessage(prompt, context, await self._workspace_summary(), attached))
            for _ in range(self.max_steps):
                message = None
                async for event_or_message in self._model_step(turn):
                    if isinstance(event_or_message, AssistantMessage):
                        message = event_or_message
                    else:
                        yield event_or_message
                assert message is not None
                self.history.append(message)
                if not message.tool_calls:
                    break
                for call in message.tool_calls:
                    async for event in self._tool_step(turn, call):
                        yield event
            else:
                reason = "max_steps"
                yield self.events.make(
                    "error", turn, message=f"Stopped after {self.max_steps} model steps.",
                    kind="max_steps",
                )
        except TurnCancelled:
            reason = "cancelled"
        except ProviderError as exc:
            reason = "error"
            yield self.events.make("error", turn, **{**exc.to_dict(), "message": self._redact(exc.message)})
        except Exception as exc:  # a bug of ours: report it, keep the session usable
            self.log.exception("IDE agent turn failed")
            reason = "error"
            yield self.events.make("error", turn, message=f"{type(exc).__name__}: {exc}", kind="internal")
        finally:
            self._running = False
            self._active = None
        for event in self._close_unanswered(turn):
            yield event
        yield self.events.make("done", turn, reason=reason)

    # --- steps -----------------------------------------------------------------------------
    async def _pump(self, produce: Callable[[Callable[[Any], None]], Awaitable[None]]) -> AsyncIterator[Any]:
        """Run ``produce(put)`` as the cancellable active task and yield what it puts."""
        if self._cancelled:
            raise TurnCancelled()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def producer() -> None:
            try:
                await produce(queue.put_nowait)
            except asyncio.CancelledError:
                queue.put_nowait(TurnCancelled())
                raise
            except BaseException as exc:
                queue.put_nowait(exc)
            else:
                queue.put_nowait(_END)

        task = asyncio.create_task(producer())
        # a cancel that lands before the producer ever ran never reaches its except clause
        task.add_done_callback(lambda t: queue.put_nowait(TurnCancelled()) if t.cancelled() else None)
        self._active = task
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._active = None
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    @property
    def compactor(self) -> Compactor:
        """The compactor for the current main model (rebuilt when the model changes, since the
        budget and the token count's calibration belong to the model)."""
        if self._compactor is None or self._compactor[0] != self.main_model:
            model = parse_model(self.main_model).model
            output_cap = self.max_output_tokens or 32_000
            budget = self.context_budget or max(8_000, (context_window(model) or 128_000) - output_cap)
            self._compactor = (self.main_model, Compactor(
                self.pool, self.prices, self.summarizer_model, budget, self.compaction_threshold,
                self.keep_recent, self.compression_ratio, self.max_summary_tokens, main_model=self.main_model,
            ))
        return self._compactor[1]

    async def _compact(self, turn: str) -> AsyncIterator[Event]:
        """Compact the history before a model call when it nears the budget (cancellable)."""
        results: list[CompactionResult | None] = []

        async def produce(put: Callable[[Any], None]) -> None:
            results.append(await self.compactor.maybe_compact(
                self.history, self.turn_system_prompt, self.tools.specs(), self._last_input_tokens))

        async for _ in self._pump(produce):
            pass
        result = results[0]
        if result is not None:
            self.history[:] = result.history
            self.usage = self.usage + result.usage
            self.cost_usd += result.cost_usd or 0.0
            yield self.events.make("compaction", turn, **result.event_fields())

    async def _sync_mcp_tools(self, put: Callable[[Any], None]) -> None:
        """MCP tools join or leave the registry before each model step; servers start at first need."""
        self.tools = await self.mcp.sync(self.tools)

    async def _model_step(self, turn: str) -> AsyncIterator[Any]:
        ref = parse_model(self.main_model)
        provider = self.pool.get(ref.provider)
        async for _ in self._pump(self._sync_mcp_tools):  # cancellable: a server may be slow to start
            pass
        if self.enable_memory_compaction:
            async for event in self._compact(turn):
                yield event
        self._last_input_tokens = None
        request = ProviderRequest(
            model=ref.model,
            system=self.turn_system_prompt,
            messages=list(self.history),
            tools=self.tools.specs(),
            max_output_tokens=self.max_output_tokens,
            reasoning=ReasoningOptions(effort=self.reasoning_effort, budget_tokens=self.thinking_budget)
            if self.reasoning_effort
            else None,
        )

        async def produce(put: Callable[[Any], None]) -> None:
            # An SDK parses a whole socket read without suspending; handing the loop back every
            # millisecond keeps REST calls and other sessions served while a fast stream pours in.
            coalescer = DeltaCoalescer(put, self.delta_window)
            loop = asyncio.get_running_loop()
            resumed = loop.time()
            try:
                async with aclosing(provider.stream(request)) as stream:
                    async for pev in stream:
                        coalescer.add(pev)
                        if loop.time() - resumed >= 0.001:
                            await asyncio.sleep(0)
                            resumed = loop.time()
                coalescer.flush()
            finally:
                coalescer.close()

        partial: list[str] = []
        try:
            async for pev in self._pump(produce):
                if isinstance(pev, TextDelta):
                    partial.append(pev.text)
                    yield self.events.make("text_delta", turn, text=pev.text)
                elif isinstance(pev, ReasoningDelta):
                    yield self.events.make("reasoning_delta", turn, text=pev.text)
                elif isinstance(pev, ToolCallRequested):
                    call = pev.call
                    yield self.events.make(
                        "tool_call", turn, call_id=call.call_id, name=call.name, arguments=call.arguments
                    )
                elif isinstance(pev, Usage):
                    self._last_input_tokens = pev.input_tokens
                    yield self._usage_event(turn, ref.provider, ref.model, pev)
                elif isinstance(pev, Finished):
                    yield pev.message
        except TurnCancelled:
            if partial:  # keep what the user already saw, marked as cut short
                self.history.append(
                    AssistantMessage(text="".join(partial), provider="", model=ref.model, interrupted=True)
                )
            raise

    async def _tool_step(self, turn: str, call: ToolCall) -> AsyncIterator[Event]:
        started = time.monotonic()
        results: list[ToolResult] = []

        async def produce(put: Callable[[Any], None]) -> None:
            async def emit(type_: str, fields: dict[str, Any]) -> None:
                put(self.events.make(type_, turn, **fields))

            ctx = ToolContext(
                root=self.workspace_dir, session_id=self.session_id, started_at=self.started_at, emit=emit,
                services={"host": self.host, "processes": self.processes, "workspace": self.workspace,
                          "ray_jobs": self.ray_jobs},
            )
            if self._needs_approval(call):
                put(self.events.make("approval_request", turn, call_id=call.call_id, name=call.name,
                                     arguments=call.arguments))
                decision = await self.approvals.wait(call.call_id, self.approval_timeout)
                if decision != "run":
                    why = "The user chose not to run this call." if decision == "skip" else (
                        f"No approval within {self.approval_timeout:.0f} s; the call was not run.")
                    results.append(ToolResult(why, True, {"approval": decision}))
                    return
            results.append(await self._run_tool(call, ctx))

        async for event in self._pump(produce):
            yield event
        result = results[0]
        self.workspace.observe(result.data)
        if call.name == ConsultEnsemble.name and result.data:
            self.add_cost(result.data.get("cost_usd"))
        content = _limit(self._redact(result.output), self.tool_output_limit)
        images = [{"mime": i.mime, "data": i.data} for i in result.images]
        self.history.append(ToolResultMessage(call.call_id, call.name, content, result.is_error, images))
        yield self.events.make(
            "tool_result", turn, call_id=call.call_id, name=call.name, output=content,
            is_error=result.is_error, duration_ms=round((time.monotonic() - started) * 1000),
            data=result.data, images=len(images),
        )

    def _needs_approval(self, call: ToolCall) -> bool:
        tool = self.tools.get(call.name)
        return self.approval_mode == "code" and tool is not None and tool.runs_code

    async def _run_tool(self, call: ToolCall, ctx: ToolContext) -> ToolResult:
        if "_unparsed_arguments" in call.arguments:
            raw = str(call.arguments["_unparsed_arguments"])[:500]
            return ToolResult(f"The arguments of {call.name} were not valid JSON: {raw}", True)
        try:
            return await asyncio.wait_for(self.tools.run(call.name, call.arguments, ctx), self.tool_timeout)
        except TimeoutError:
            return ToolResult(f"{call.name} did not finish within {self.tool_timeout:.0f} s and was stopped.", True)

    def _redact(self, text: str) -> str:
        """Keys never reach the model, the events or the browser, even if a tool prints them."""
        return self.pool.redact(text)

    async def _workspace_summary(self) -> str | None:
        """The workspace state the model sees with this prompt; a failure here never stops a turn."""
        try:
            await self.workspace.refresh()
            return self._redact(await self.workspace.summary())
        except Exception:
            self.log.warning("IDE agent: workspace summary failed", exc_info=True)
            return None

    def _close_unanswered(self, turn: str) -> list[Event]:
        """Give every tool call left without a result one, so the history stays valid."""
        events = []
        waiting, self.approvals.interrupted = self.approvals.interrupted, set()
        for call in unanswered_calls(self.history):
            text = "Cancelled by the user before this tool ran." if self._cancelled else "Not run: the turn ended."
            self.history.append(ToolResultMessage(call.call_id, call.name, text, True))
            data = {"approval": "cancelled"} if call.call_id in waiting else None
            events.append(
                self.events.make("tool_result", turn, call_id=call.call_id, name=call.name, output=text,
                                 is_error=True, duration_ms=0, data=data)
            )
        return events

    def _usage_event(self, turn: str, provider: str, model: str, usage: Usage) -> Event:
        cost = self.prices.cost(model, usage)
        self.usage = self.usage + usage
        self.cost_usd += cost or 0.0
        return self.events.make(
            "usage", turn, provider=provider, model=model,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens, cached_tokens=usage.cached_tokens,
            cost_usd=cost, session_cost_usd=round(self.cost_usd, 8),
            session_input_tokens=self.usage.input_tokens, session_output_tokens=self.usage.output_tokens,
        )


def _limit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit * 2 // 3]
    tail = text[-limit // 3 :]
    cut = len(text) - len(head) - len(tail)
    return f"{head}\n[... {cut} characters cut; the full output is kept in the file or notebook ...]\n{tail}"


def args_preview(arguments: dict[str, Any], limit: int = 200) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
