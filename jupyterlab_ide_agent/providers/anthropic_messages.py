"""Adapter for Anthropic's Messages API (streaming, extended thinking, tool use).

It uses ``messages.create(stream=True)`` rather than the ``messages.stream()`` helper: the raw events
arrive in wire order, so thinking, text and tool-input deltas are surfaced as they come, and each
content block is assembled exactly as the API sent it. Those blocks (thinking with its signature,
redacted thinking, text, tool_use) are the replay items: Anthropic rejects a tool-use continuation
with thinking enabled unless the previous assistant turn is sent back unmodified.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2

from ..agent.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from .base import (
    Finished,
    Provider,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    ProviderSettings,
    ReasoningDelta,
    ReasoningOptions,
    TextDelta,
    ToolCallRequested,
    Usage,
    parse_arguments,
)

DEFAULT_MAX_TOKENS = 8192
THINKING_HEADROOM = 8192  # room for the visible answer on top of the thinking budget
MIN_THINKING_BUDGET = 1024  # the API's minimum budget_tokens
#: image types the Messages API reads; others are named in the tool result text instead
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "max_tokens"}
# an `event: error` inside a 200 stream carries only the error type: give it the HTTP status it stands for
STATUS_OF_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403, "not_found_error": 404,
    "request_too_large": 413, "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}


def classify_status(status: int, error_type: str | None) -> tuple[str, str, bool]:
    """(kind, label, retryable) of an HTTP error status; retryable = what the SDK itself retries."""
    if status == 429:
        return "rate_limit", "rate limited", True
    if status == 529 or error_type == "overloaded_error":
        return "overloaded", "overloaded", True
    if status in (401, 403):
        return "auth", "authentication failed" if status == 401 else "permission denied", False
    if status in (408, 504):
        return "timeout", "upstream timeout", True
    if status == 409 or status >= 500:
        return "server", "server error", True
    return "bad_request", "request rejected", False


def thinking_budget(reasoning: ReasoningOptions | None) -> int | None:
    """The thinking budget to request, or None when thinking is off (``effort`` alone is for other APIs)."""
    if reasoning is None or not reasoning.budget_tokens or reasoning.budget_tokens < 0:
        return None
    return max(MIN_THINKING_BUDGET, reasoning.budget_tokens)


def assistant_blocks(message: AssistantMessage, kind: str) -> list[dict[str, Any]]:
    """Our own turns are replayed verbatim; another provider's turn is rebuilt from text and calls."""
    if message.provider == kind:
        replay = [dict(b) for b in message.replay if _replayable(b)]
        if replay:
            return replay
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.text}] if message.text else []
    blocks += [{"type": "tool_use", "id": c.call_id, "name": c.name, "input": c.arguments} for c in message.tool_calls]
    return blocks


def _replayable(block: dict[str, Any]) -> bool:
    """Drop what the API would refuse: unsigned thinking (a cut stream) and empty text."""
    kind = block.get("type")
    if kind == "thinking":
        return bool(block.get("signature"))
    if kind == "text":
        return bool(block.get("text"))
    return kind in ("redacted_thinking", "tool_use")


def tool_result_block(message: ToolResultMessage) -> dict[str, Any]:
    """A tool_result block; images ride inside it as base64 image blocks after the text."""
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.call_id, "is_error": message.is_error}
    images = [i for i in message.images if i.get("mime") in IMAGE_TYPES and i.get("data")]
    text = message.content
    if len(images) < len(message.images):
        dropped = sorted({str(i.get("mime")) for i in message.images if i not in images})
        text += f"\n[not shown to you: {len(message.images) - len(images)} image(s) of type {', '.join(dropped)}]"
    if images:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        content += [{"type": "image", "source": {"type": "base64", "media_type": i["mime"], "data": i["data"]}}
                    for i in images]
        block["content"] = content
    elif text:
        block["content"] = text
    return block


def to_anthropic_messages(history: list[Message], kind: str = "anthropic") -> list[dict[str, Any]]:
    """Neutral history -> Messages API turns, merging consecutive same-role turns.

    Consecutive tool results become one user message of tool_result blocks (the API wants all the
    results of one assistant turn together, ahead of any user text in that message).
    """
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for message in history:
        if isinstance(message, UserMessage):
            text = message.rendered()
            add("user", [{"type": "text", "text": text}] if text else [])
        elif isinstance(message, ToolResultMessage):
            add("user", [tool_result_block(message)])
        elif isinstance(message, AssistantMessage):
            add("assistant", assistant_blocks(message, kind))
    for turn in out:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")  # stable: results first
    return out


def _continues_without_thinking(messages: list[dict[str, Any]]) -> bool:
    """True when the request answers tool calls of an assistant turn that has no thinking block.

    With thinking enabled the API requires that turn to start with thinking, so such a request (after
    a model switch, or a turn made with thinking off) is sent without thinking instead of failing.
    """
    if len(messages) < 2 or messages[-1]["role"] != "user" or messages[-2]["role"] != "assistant":
        return False
    if not any(b["type"] == "tool_result" for b in messages[-1]["content"]):
        return False
    first = messages[-2]["content"][0]
    return first.get("type") not in ("thinking", "redacted_thinking")


class _Assembly:
    """One streamed message: its content blocks by index, partial tool input, usage and stop reason."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial_json: dict[int, str] = {}
        self.calls: list[ToolCall] = []
        self.usage: dict[str, int] = {}
        self.thinking_tokens = 0
        self.stop_reason: str | None = None
        self.finished = False

    def take_usage(self, usage: Any) -> None:
        """message_start has the input side, message_delta the cumulative totals (None = unchanged)."""
        for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            value = getattr(usage, name, None)
            if value is not None:
                self.usage[name] = value
        details = getattr(usage, "output_tokens_details", None)
        if details is not None:
            self.thinking_tokens = details.thinking_tokens or 0

    def normalized_usage(self) -> Usage:
        """Anthropic's input_tokens excludes cache reads and writes; ours is the whole prompt."""
        u = self.usage
        cached = u.get("cache_read_input_tokens", 0)
        total_in = u.get("input_tokens", 0) + cached + u.get("cache_creation_input_tokens", 0)
        return Usage(total_in, u.get("output_tokens", 0), self.thinking_tokens, cached)

    def finish_tool(self, index: int) -> ToolCall:
        block = self.blocks[index]
        args = parse_arguments(self.partial_json.pop(index, ""))
        block["input"] = args
        call = ToolCall(block["id"], block["name"], args)
        self.calls.append(call)
        return call

    def ordered(self) -> list[dict[str, Any]]:
        return [self.blocks[i] for i in sorted(self.blocks)]


class AnthropicProvider(Provider):
    """Claude through ``anthropic.AsyncAnthropic``; the SDK does the retrying and the timeouts."""

    kind = "anthropic"

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._client: anthropic.AsyncAnthropic | None = None

    def client(self) -> anthropic.AsyncAnthropic:
        """Created on first use, so a provider without a key can be configured and listed."""
        if self._client is None:
            key = self.settings.resolved_key()
            if not key:
                message = self.settings.missing() or f"{self.settings.name}: no API key"
                raise ProviderError(message, provider=self.settings.name, kind="config")
            self._client = anthropic.AsyncAnthropic(
                api_key=key,
                base_url=self.settings.resolved_base_url(),
                timeout=self.settings.timeout,
                max_retries=self.settings.max_retries,
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def build_params(self, request: ProviderRequest) -> dict[str, Any]:
        """The ``messages.create`` keyword arguments for one request (without ``stream``)."""
        messages = to_anthropic_messages(request.messages, self.kind)
        params: dict[str, Any] = {"model": request.model, "messages": messages}
        if request.system:
            params["system"] = request.system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
            ]
        if self.settings.options.get("prompt_cache", True):
            params["cache_control"] = {"type": "ephemeral"}  # marks the last block: the prefix is reused next turn
        budget = thinking_budget(request.reasoning)
        if budget is not None and _continues_without_thinking(messages):
            budget = None
        wanted = request.max_output_tokens or self.settings.options.get("max_tokens") or DEFAULT_MAX_TOKENS
        if budget is None:
            params["max_tokens"] = wanted
            if request.temperature is not None:
                params["temperature"] = request.temperature  # the API refuses it with thinking on
        else:
            assert request.reasoning is not None
            display = "summarized" if request.reasoning.summary else "omitted"
            params["thinking"] = {"type": "enabled", "budget_tokens": budget, "display": display}
            params["max_tokens"] = wanted if wanted > budget else budget + THINKING_HEADROOM
        return params

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        client = self.client()
        params = self.build_params(request)
        turn = _Assembly()
        try:
            sdk_stream = await client.messages.create(stream=True, **params)
            try:
                async for event in sdk_stream:
                    for out in self._handle(event, turn):
                        yield out
            finally:
                await sdk_stream.close()
        except (anthropic.APIError, httpx2.HTTPError, ValueError) as exc:
            raise self._error(exc) from exc
        if not turn.finished:
            raise ProviderError(
                f"{self.settings.name}: the response stream ended before message_stop",
                provider=self.settings.name, retryable=True, kind="stream",
            )
        yield turn.normalized_usage()
        blocks = turn.ordered()
        message = AssistantMessage(
            text="".join(b["text"] for b in blocks if b["type"] == "text"),
            tool_calls=turn.calls,
            reasoning="\n\n".join(b["thinking"] for b in blocks if b["type"] == "thinking" and b["thinking"]),
            provider=self.kind,
            model=request.model,
            replay=blocks,
        )
        stop = turn.stop_reason or "stop"
        yield Finished(message, STOP_REASONS.get(stop, stop))

    def _handle(self, event: Any, turn: _Assembly) -> list[ProviderEvent]:
        """Fold one raw stream event into ``turn``; return what the loop should see now."""
        if event.type == "message_start":
            turn.take_usage(event.message.usage)
        elif event.type == "content_block_start":
            cb = event.content_block
            if cb.type == "thinking":
                had_thinking = any(b["type"] == "thinking" and b["thinking"] for b in turn.blocks.values())
                turn.blocks[event.index] = {"type": "thinking", "thinking": cb.thinking or "",
                                            "signature": cb.signature or ""}
                return [ReasoningDelta("\n\n")] if had_thinking else []
            if cb.type == "redacted_thinking":
                turn.blocks[event.index] = {"type": "redacted_thinking", "data": cb.data}
            elif cb.type == "text":
                turn.blocks[event.index] = {"type": "text", "text": cb.text or ""}
                return [TextDelta(cb.text)] if cb.text else []
            elif cb.type == "tool_use":
                turn.blocks[event.index] = {"type": "tool_use", "id": cb.id, "name": cb.name, "input": {}}
                turn.partial_json[event.index] = ""
            # server-side tool blocks are not requested by this adapter and are ignored
        elif event.type == "content_block_delta":
            block, delta = turn.blocks.get(event.index), event.delta
            if block is None:
                return []
            if delta.type == "text_delta":
                block["text"] += delta.text
                return [TextDelta(delta.text)]
            if delta.type == "thinking_delta":
                block["thinking"] += delta.thinking
                return [ReasoningDelta(delta.thinking)]
            if delta.type == "signature_delta":
                block["signature"] += delta.signature
            elif delta.type == "input_json_delta":
                turn.partial_json[event.index] = turn.partial_json.get(event.index, "") + delta.partial_json
        elif event.type == "content_block_stop":
            block = turn.blocks.get(event.index)
            if block is not None and block["type"] == "tool_use":
                return [ToolCallRequested(turn.finish_tool(event.index))]
        elif event.type == "message_delta":
            turn.stop_reason = event.delta.stop_reason or turn.stop_reason
            turn.take_usage(event.usage)
        elif event.type == "message_stop":
            turn.finished = True
        return []

    def _error(self, exc: Exception) -> ProviderError:
        """Map an SDK / transport failure to a ProviderError a user can read (never with the key)."""
        name, key = self.settings.name, self.settings.resolved_key()

        def fail(kind: str, text: str, *, retryable: bool, status: int | None = None) -> ProviderError:
            message = f"{name}: {text}"
            if key:  # some APIs and gateways echo the key they refused
                message = message.replace(key, "***")
            return ProviderError(message, provider=name, retryable=retryable, status=status, kind=kind)

        request = getattr(exc, "request", None)
        retries = int(request.headers.get("x-stainless-retry-count", 0)) if request is not None else 0
        after = f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""
        if isinstance(exc, anthropic.APITimeoutError):
            return fail("timeout", f"no response within {self.settings.timeout:g}s{after}", retryable=True)
        if isinstance(exc, anthropic.APIConnectionError):
            return fail("connection", f"connection failed{after}: {exc.message}", retryable=True)
        if isinstance(exc, anthropic.APIStatusError):
            status, during = exc.status_code, ""
            if status < 400:  # an `event: error` inside the 200 stream; the SDK does not retry those
                status, during, after = STATUS_OF_TYPE.get(exc.type or "", 500), " during the stream", ""
            kind, label, retryable = classify_status(status, exc.type)
            text = f"{label} ({status}){during}{after if retryable else ''}: {exc.api_message or exc.message}"
            return fail(kind, text, retryable=retryable, status=status)
        if isinstance(exc, httpx2.TimeoutException):
            return fail("timeout", f"the stream stalled for more than {self.settings.timeout:g}s", retryable=True)
        return fail("stream", f"the response stream broke off: {type(exc).__name__}: {exc}", retryable=True)
