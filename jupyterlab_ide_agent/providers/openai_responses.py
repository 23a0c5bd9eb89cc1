"""OpenAI adapter on the Responses API (also fits OpenAI-compatible servers that speak it).

Requests are stateless (``store=False``): the whole history is sent every turn. So that a reasoning
model keeps its chain of thought across tool calls, reasoning is requested with
``include=["reasoning.encrypted_content"]`` and the finished turn keeps its raw output items
(reasoning items with ``encrypted_content``, the message, ``function_call`` items) as replay items,
which are sent back verbatim on the next request.

We use ``responses.create(stream=True)`` rather than the ``responses.stream()`` helper: the helper is
strict about event order (some compatible servers are not), and ``create`` yields mid-stream
``error`` / ``response.failed`` events as values, which we turn into :class:`ProviderError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai

from ..agent.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from .base import (
    Finished,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallRequested,
    ToolSpec,
    Usage,
    parse_arguments,
)
from .openai_common import IMAGE_TYPES, OpenAIClientProvider, data_url, split_images

__all__ = ["IMAGE_TYPES", "OpenAIResponsesProvider", "parse_arguments"]


def render_tool(spec: ToolSpec) -> dict[str, Any]:
    # strict=False: our schemas have optional properties, which strict mode forbids.
    return {"type": "function", "name": spec.name, "description": spec.description,
            "parameters": spec.parameters, "strict": False}


def to_input(messages: list[Message]) -> list[dict[str, Any]]:
    """Neutral history -> Responses ``input`` items, replaying our own output items where we have them."""
    items: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, UserMessage):
            items.append({"type": "message", "role": "user",
                          "content": [{"type": "input_text", "text": m.rendered()}]})
        elif isinstance(m, ToolResultMessage):
            items.append(function_call_output(m))
        elif m.provider == OpenAIResponsesProvider.kind and m.replay:
            items.extend(dict(item) for item in m.replay)
        else:  # another provider's turn (or no replay): rebuild it from the neutral fields
            if m.text:
                items.append({"type": "message", "role": "assistant", "content": m.text})
            for call in m.tool_calls:
                items.append({"type": "function_call", "call_id": call.call_id, "name": call.name,
                              "arguments": json.dumps(call.arguments)})
    return items


def function_call_output(m: ToolResultMessage) -> dict[str, Any]:
    """A tool result; with images, ``output`` is a list of content items (input_text, then one
    input_image per image as a data: URL), which the API accepts in place of the output string."""
    output = f"ERROR: {m.content}" if m.is_error else m.content
    if not m.images:
        return {"type": "function_call_output", "call_id": m.call_id, "output": output}
    images, note = split_images(m.images)
    output += note
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": output}] if output else []
    parts += [{"type": "input_image", "image_url": data_url(i)} for i in images]
    return {"type": "function_call_output", "call_id": m.call_id, "output": parts or output}


def replayable(item: dict[str, Any]) -> bool:
    """A reasoning item without encrypted content (or raw content, from open-weight servers) cannot be
    replayed with ``store=False``: the API would look its id up and answer 404."""
    if item.get("type") != "reasoning":
        return True
    return bool(item.get("encrypted_content") or item.get("content"))


class OpenAIResponsesProvider(OpenAIClientProvider):
    """The client and the error mapping are shared with the Chat Completions adapter (openai_common)."""

    kind = "openai"

    # --- request ---------------------------------------------------------------------------
    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": request.model, "input": to_input(request.messages),
                                  "store": False, "stream": True}
        if request.system:
            params["instructions"] = request.system
        if request.tools:
            params["tools"] = [render_tool(t) for t in request.tools]
        if request.max_output_tokens:
            params["max_output_tokens"] = request.max_output_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.reasoning is not None:
            reasoning: dict[str, Any] = {}
            if request.reasoning.effort:
                reasoning["effort"] = request.reasoning.effort
            if request.reasoning.summary:
                reasoning["summary"] = "auto"
            if reasoning:
                params["reasoning"] = reasoning
            params["include"] = ["reasoning.encrypted_content"]
        return params

    # --- streaming -------------------------------------------------------------------------
    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        client = self._client_or_raise()
        try:
            sdk_stream = await client.responses.create(**self._params(request))
        except openai.OpenAIError as err:
            raise self._error(err, mid_stream=False) from err

        text: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        replay: list[dict[str, Any]] = []
        streamed_items: set[str] = set()  # item ids whose text arrived as deltas
        final: Any = None
        try:
            async for event in sdk_stream:
                etype = getattr(event, "type", None)
                if etype in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
                    reasoning.append(event.delta)
                    yield ReasoningDelta(event.delta)
                elif etype == "response.reasoning_summary_part.added" and reasoning:
                    reasoning.append("\n\n")  # keep summary parts apart, as the API's UI does
                    yield ReasoningDelta("\n\n")
                elif etype == "response.output_text.delta":
                    streamed_items.add(event.item_id)
                    text.append(event.delta)
                    yield TextDelta(event.delta)
                elif etype == "response.output_item.done":
                    item = event.item.to_dict(mode="json", exclude_none=True)
                    if replayable(item):
                        replay.append(item)
                    if item.get("type") == "function_call":
                        call_id = item.get("call_id") or item.get("id", "")
                        call = ToolCall(call_id, item.get("name", ""), parse_arguments(item.get("arguments", "")))
                        calls.append(call)
                        yield ToolCallRequested(call)
                    elif item.get("type") == "message" and item.get("id") not in streamed_items:
                        whole = "".join(p.get("text", "") for p in item.get("content", []))
                        if whole:  # a server that sent the message without deltas
                            text.append(whole)
                            yield TextDelta(whole)
                elif etype in ("response.completed", "response.incomplete"):
                    final = event.response
                    break
                elif etype in ("response.failed", "error"):
                    raise self._event_error(event)
        except ProviderError:
            raise
        except openai.OpenAIError as err:
            raise self._error(err, mid_stream=True) from err
        except ValueError as err:  # undecodable JSON or an event the SDK cannot build
            raise self._stream_error(f"malformed stream data ({err})") from err
        finally:
            await sdk_stream.close()
        if final is None:
            raise self._stream_error("the stream ended before response.completed")

        yield self._usage(getattr(final, "usage", None))
        message = AssistantMessage(text="".join(text), tool_calls=calls, reasoning="".join(reasoning),
                                   provider=self.kind, model=request.model, replay=replay)
        yield Finished(message, self._stop_reason(final, calls))

    @staticmethod
    def _usage(usage: Any) -> Usage:
        """Responses usage already counts reasoning inside ``output_tokens``."""
        if usage is None:  # some compatible servers send none
            return Usage()
        out_details = getattr(usage, "output_tokens_details", None)
        in_details = getattr(usage, "input_tokens_details", None)
        return Usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0,
                     reasoning_tokens=getattr(out_details, "reasoning_tokens", 0) or 0,
                     cached_tokens=getattr(in_details, "cached_tokens", 0) or 0)

    @staticmethod
    def _stop_reason(response: Any, calls: list[ToolCall]) -> str:
        details = getattr(response, "incomplete_details", None)
        reason = getattr(details, "reason", None)
        if reason == "max_output_tokens":
            return "max_tokens"
        if reason:
            return str(reason)  # content_filter
        return "tool_calls" if calls else "stop"

    # --- errors ----------------------------------------------------------------------------
    def _event_error(self, event: Any) -> ProviderError:
        """``error`` events carry code/message at top level; ``response.failed`` inside response.error."""
        source = event if event.type == "error" else getattr(event.response, "error", None)
        code = getattr(source, "code", None)
        message = getattr(source, "message", None) or "the response failed"
        return self._coded_error(code, message)
