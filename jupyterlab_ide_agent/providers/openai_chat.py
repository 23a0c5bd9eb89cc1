"""OpenAI adapter on the Chat Completions API, for servers that do not speak Responses.

llama.cpp's ``llama-server``, older vLLM and Ollama, and many company gateways serve only
``POST /v1/chat/completions``. Select this adapter with ``"api": "chat_completions"`` on a provider of
kind ``openai``. It shares the client and the error mapping with the Responses adapter
(``openai_common``); what differs is the wire format:

- the stream is ``chat.completion.chunk`` objects: ``delta.content`` is text; ``delta.reasoning_content``
  (vLLM, llama.cpp, DeepSeek) or ``delta.reasoning`` (newer vLLM, OpenRouter) is reasoning; tool calls
  come as ``tool_calls`` deltas keyed by ``index`` and are assembled here (:class:`ToolCallAssembler`);
- usage comes in a last chunk when ``stream_options.include_usage`` is honoured, on the finishing chunk
  for some servers, as llama.cpp's ``timings`` for others, or not at all (then zeros, which the memory's
  token meter ignores);
- a tool message carries text only, so a tool result's images go in a user message right after the
  tool messages, naming the call they belong to.

There are no replay items: Chat Completions has no encrypted reasoning to hand back. With the option
``replay_reasoning`` the reasoning text of this endpoint's own turns is sent back as
``reasoning_content`` (DeepSeek's thinking mode asks for it during tool calls; other servers ignore it
or reject it, hence off by default).

Options (``c.IDEAgent.providers[name]["options"]``): ``images`` (default true; false names a tool
result's images instead of sending them, for text-only models), ``stream_usage`` (default true; false
for servers that reject ``stream_options``), ``max_tokens_param`` (default ``max_completion_tokens`` on
OpenAI's own API, ``max_tokens`` on a configured base URL), ``replay_reasoning`` (default false).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import openai

from ..agent.messages import AssistantMessage, ToolCall, ToolResultMessage, UserMessage
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
from .openai_common import OpenAIClientProvider, data_url, split_images

_STOP_REASONS = {"stop": "stop", "tool_calls": "tool_calls", "function_call": "tool_calls", "length": "max_tokens"}


def render_tool(spec: ToolSpec) -> dict[str, Any]:
    return {"type": "function",
            "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters}}


def to_messages(request: ProviderRequest, *, kind: str, images: bool = True,
                replay_reasoning: bool = False) -> list[dict[str, Any]]:
    """System prompt plus the neutral history as Chat Completions messages."""
    out: list[dict[str, Any]] = [{"role": "system", "content": request.system}] if request.system else []
    shown: list[dict[str, Any]] = []  # images of the tool results in a row, for one user message after them
    for m in request.messages:
        if not isinstance(m, ToolResultMessage) and shown:
            out.append({"role": "user", "content": shown})
            shown = []
        if isinstance(m, UserMessage):
            out.append({"role": "user", "content": m.rendered()})
        elif isinstance(m, ToolResultMessage):
            content, parts = tool_result(m, images)
            out.append({"role": "tool", "tool_call_id": m.call_id, "content": content})
            shown += parts
        else:
            out.append(assistant_message(m, replay_reasoning=replay_reasoning and m.provider == kind))
    if shown:
        out.append({"role": "user", "content": shown})
    return out


def assistant_message(m: AssistantMessage, *, replay_reasoning: bool) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    if m.text or not m.tool_calls:  # content may be left out only when there are tool calls
        message["content"] = m.text
    if m.tool_calls:
        # json.dumps even of {"_unparsed_arguments": ...}: servers that render a chat template parse
        # every argument string in the history, and one broken call would fail every later request
        message["tool_calls"] = [{"id": c.call_id, "type": "function",
                                  "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                                 for c in m.tool_calls]
    if replay_reasoning and m.reasoning:
        message["reasoning_content"] = m.reasoning
    return message


def tool_result(m: ToolResultMessage, images: bool) -> tuple[str, list[dict[str, Any]]]:
    """The tool message's text, and the content parts (label, images) for the user message after it."""
    content = f"ERROR: {m.content}" if m.is_error else m.content
    if not m.images:
        return content, []
    if not images:
        return content + f"\n[{len(m.images)} image(s) not shown: this endpoint is configured without images]", []
    shown, note = split_images(m.images)
    content += note
    if not shown:
        return content, []
    count = "1 image" if len(shown) == 1 else f"{len(shown)} images"
    content += f"\n[{count} attached in the next user message]"
    which = "This image is" if len(shown) == 1 else "These images are"
    label = {"type": "text", "text": f"{which} from the result of tool call {m.call_id} ({m.name}):"}
    return content, [label] + [{"type": "image_url", "image_url": {"url": data_url(i)}} for i in shown]


class ToolCallAssembler:
    """``tool_calls`` deltas -> complete calls.

    The usual stream gives a call's id, type and name in its first delta and the arguments in pieces,
    every delta keyed by ``index``. Some servers send each call whole, all with index 0 (Ollama), so a
    delta with a new id at an index already taken starts a new call; one without an index continues the
    last call.
    """

    def __init__(self) -> None:
        self._calls: list[dict[str, Any]] = []
        self._by_index: dict[int, dict[str, Any]] = {}

    def add(self, delta: Any) -> None:
        index, call_id = getattr(delta, "index", None), getattr(delta, "id", None)
        current = self._by_index.get(index) if isinstance(index, int) else (self._calls[-1] if self._calls else None)
        if current is None or (call_id and current["id"] and call_id != current["id"]):
            current = {"id": "", "name": "", "arguments": []}
            self._calls.append(current)
            if isinstance(index, int):
                self._by_index[index] = current
        current["id"] = current["id"] or call_id or ""
        function = getattr(delta, "function", None)
        name = getattr(function, "name", None)
        if name and not current["name"]:
            current["name"] = name
        arguments = getattr(function, "arguments", None)
        if isinstance(arguments, dict):  # a server that sends the parsed object
            arguments = json.dumps(arguments)
        if isinstance(arguments, str):
            current["arguments"].append(arguments)

    def calls(self) -> list[ToolCall]:
        """The calls in stream order; a server that sent no id gets one, since results pair by id."""
        return [ToolCall(c["id"] or f"call_{uuid.uuid4().hex[:24]}", c["name"],
                         parse_arguments("".join(c["arguments"]))) for c in self._calls]


def normalize_usage(usage: Any, timings: Any) -> Usage:
    """OpenAI counts reasoning inside ``completion_tokens``; a server whose total says it did not gets it
    added. Without usage, llama.cpp's ``timings`` (new prompt tokens, cached ones, generated ones)."""
    if usage is not None:
        prompt = getattr(usage, "prompt_tokens", 0) or 0
        completion = getattr(usage, "completion_tokens", 0) or 0
        reasoning = getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", 0) or 0
        cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0) or 0
        total = getattr(usage, "total_tokens", 0) or 0
        apart = bool(reasoning) and total == prompt + completion + reasoning
        return Usage(prompt, completion + reasoning if apart else completion, reasoning, cached)
    if isinstance(timings, dict):
        cached = _int(timings.get("cache_n"))
        return Usage(input_tokens=_int(timings.get("prompt_n")) + cached,
                     output_tokens=_int(timings.get("predicted_n")), cached_tokens=cached)
    return Usage()


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class OpenAIChatProvider(OpenAIClientProvider):
    #: its own kind, so the Responses adapter never replays this adapter's turns and vice versa
    kind = "openai_chat"

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        options = self.settings.options
        messages = to_messages(request, kind=self.kind, images=bool(options.get("images", True)),
                               replay_reasoning=bool(options.get("replay_reasoning", False)))
        params: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        if options.get("stream_usage", True):
            params["stream_options"] = {"include_usage": True}
        if request.tools:
            params["tools"] = [render_tool(t) for t in request.tools]
        if request.max_output_tokens:
            default = "max_tokens" if self.settings.resolved_base_url() else "max_completion_tokens"
            params[str(options.get("max_tokens_param") or default)] = request.max_output_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.reasoning is not None and request.reasoning.effort:
            params["reasoning_effort"] = request.reasoning.effort
        return params

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        client = self._client_or_raise()
        try:
            sdk_stream = await client.chat.completions.create(**self._params(request))
        except openai.OpenAIError as err:
            raise self._error(err, mid_stream=False) from err

        text: list[str] = []
        reasoning: list[str] = []
        assembler = ToolCallAssembler()
        finish: str | None = None
        usage: Any = None
        timings: Any = None
        try:
            async for chunk in sdk_stream:
                usage = getattr(chunk, "usage", None) or usage
                timings = (getattr(chunk, "model_extra", None) or {}).get("timings") or timings
                for choice in getattr(chunk, "choices", None) or []:
                    if getattr(choice, "index", 0) not in (0, None):
                        continue  # we ask for one choice; a second one is not ours to merge
                    delta = getattr(choice, "delta", None)
                    thought = _text(getattr(delta, "reasoning_content", None)) or _text(
                        getattr(delta, "reasoning", None))
                    if thought:
                        reasoning.append(thought)
                        yield ReasoningDelta(thought)
                    said = _text(getattr(delta, "content", None)) or _text(getattr(delta, "refusal", None))
                    if said:
                        text.append(said)
                        yield TextDelta(said)
                    for call_delta in getattr(delta, "tool_calls", None) or []:
                        assembler.add(call_delta)
                    finish = getattr(choice, "finish_reason", None) or finish
        except ProviderError:
            raise
        except openai.OpenAIError as err:
            raise self._error(err, mid_stream=True) from err
        except (ValueError, TypeError, AttributeError) as err:  # undecodable JSON or a chunk of the wrong shape
            raise self._stream_error(f"malformed stream data ({type(err).__name__}: {err})") from err
        finally:
            await sdk_stream.close()
        if finish is None:
            raise self._stream_error("the stream ended without a finish_reason (cut off or not a complete answer)")

        calls = assembler.calls()
        for call in calls:
            yield ToolCallRequested(call)
        yield normalize_usage(usage, timings)
        message = AssistantMessage(text="".join(text), tool_calls=calls, reasoning="".join(reasoning),
                                   provider=self.kind, model=request.model)
        stop = _STOP_REASONS.get(str(finish), str(finish).lower())
        yield Finished(message, "tool_calls" if calls and stop == "stop" else stop)

