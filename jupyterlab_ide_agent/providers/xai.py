"""xAI (Grok) adapter over the official ``xai_sdk`` gRPC client.

The SDK speaks gRPC (service ``xai_api.Chat``), not HTTP: errors are ``grpc.RpcError`` with a status
code, retries are the channel's gRPC retry policy (a service config), and ``timeout`` is a deadline
for the *whole* call, stream included. ``chat.stream()`` yields ``(response, chunk)`` pairs: chunks
carry reasoning and text deltas, tool calls arrive whole, and the last chunk has the finish reason;
the accumulated ``response`` has the usage.

Replay: each assistant turn keeps one item, ``{"type": "xai_message", "message": <chat_pb2.Message
as a dict>}``, the message the SDK's own ``chat.append(response)`` would add (content, reasoning
content, encrypted reasoning, tool calls with their raw argument strings), so a tool-use continuation
gives Grok its reasoning back exactly as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format
from xai_sdk import AsyncClient
from xai_sdk.chat import image, system, text, tool, tool_result, user
from xai_sdk.proto import chat_pb2, sample_pb2

from ..agent.messages import AssistantMessage, ToolCall, ToolResultMessage, UserMessage
from .base import (
    Finished,
    Provider,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    ProviderSettings,
    ReasoningDelta,
    TextDelta,
    ToolCallRequested,
    Usage,
    parse_arguments,
)

REPLAY_TYPE = "xai_message"
#: image types Grok reads; a tool message carries text only (the SDK's ``tool_result`` takes a string),
#: so a tool result's images go in a user message right after the results, naming the call they belong to
IMAGE_TYPES = {"image/png", "image/jpeg"}
_EFFORTS = {"none", "low", "medium", "high", "xhigh"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: gRPC codes worth another attempt, retried by the channel itself when max_retries > 0
_RETRY_CODES = ["UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL"]
_STOP_REASONS = {
    "REASON_STOP": "stop",
    "REASON_TOOL_CALLS": "tool_calls",
    "REASON_MAX_LEN": "max_tokens",
    "REASON_MAX_CONTEXT": "max_context",
    "REASON_TIME_LIMIT": "time_limit",
}
#: gRPC code name -> (kind, HTTP-like status, retryable, what a user reads)
_ERRORS = {
    "RESOURCE_EXHAUSTED": ("rate_limit", 429, True, "rate limited"),
    "UNAVAILABLE": ("connection", 503, True, "service unavailable"),
    "DEADLINE_EXCEEDED": ("timeout", None, True, "timed out"),
    "INTERNAL": ("server", 500, True, "server error"),
    "UNKNOWN": ("server", 500, True, "server error"),
    "DATA_LOSS": ("server", 500, True, "server error"),
    "CANCELLED": ("connection", None, True, "call cancelled"),
    "INVALID_ARGUMENT": ("bad_request", 400, False, "bad request"),
    "FAILED_PRECONDITION": ("bad_request", 400, False, "bad request"),
    "OUT_OF_RANGE": ("bad_request", 400, False, "bad request"),
    "NOT_FOUND": ("bad_request", 404, False, "not found"),
    "UNIMPLEMENTED": ("bad_request", 404, False, "not supported by this endpoint"),
    "UNAUTHENTICATED": ("auth", 401, False, "authentication failed (check the API key)"),
    "PERMISSION_DENIED": ("auth", 403, False, "permission denied"),
}
#: tool calls we run (0: an older server that leaves the type out); server-side tools are xAI's own
_CLIENT_SIDE = (0, chat_pb2.ToolCallType.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL)
ASSISTANT = chat_pb2.MessageRole.ROLE_ASSISTANT
#: codes that, once chunks have arrived, mean the stream broke off rather than never started
_BROKEN_STREAM = {"UNAVAILABLE", "INTERNAL", "UNKNOWN", "CANCELLED", "DATA_LOSS"}


def api_host(base_url: str | None) -> str:
    """``"https://host:port/"`` -> ``"host:port"``: gRPC wants a bare target, no scheme or path."""
    host = (base_url or "api.x.ai").strip()
    for scheme in ("https://", "http://", "grpc://", "grpcs://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    return host.split("/", 1)[0]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (``name[:port]`` or ``[v6]:port``) is this machine, where plaintext is fine."""
    if host.startswith("["):
        name = host[1 : host.find("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in _LOOPBACK


def normalize_usage(usage: Any) -> Usage:
    """xAI counts reasoning tokens *outside* ``completion_tokens`` (total = prompt + completion +
    reasoning); OpenAI-style gateways fold them in. ``total_tokens`` tells which, so both normalize
    to output = every billed output token."""
    prompt, completion, reasoning = usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens
    folded = bool(reasoning) and usage.total_tokens == prompt + completion and completion >= reasoning
    return Usage(
        input_tokens=prompt,
        output_tokens=completion if folded else completion + reasoning,
        reasoning_tokens=reasoning,
        cached_tokens=usage.cached_prompt_text_tokens,
    )


class XAIProvider(Provider):
    """One ``xai_sdk.AsyncClient`` (one gRPC channel) per endpoint, created on first use."""

    kind = "xai"

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._client: AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- client ----------------------------------------------------------------------------
    def _channel_options(self) -> list[tuple[str, Any]]:
        """The SDK's own retry machinery is gRPC's: set its policy from ``max_retries``.

        The SDK's default policy retries only UNAVAILABLE, 4 times; we retry the same codes the HTTP
        SDKs retry (rate limits, 5xx) and honour the server's ``grpc-retry-pushback-ms``.
        """
        retries = max(0, int(self.settings.max_retries))
        if retries == 0:
            return [("grpc.enable_retries", 0)]
        policy = {
            "maxAttempts": min(retries + 1, 5),  # gRPC caps attempts at 5
            "initialBackoff": "0.5s",
            "maxBackoff": "8s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": _RETRY_CODES,
        }
        config = {"methodConfig": [{"name": [{}], "retryPolicy": policy}]}
        return [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(config))]

    def _get_client(self) -> AsyncClient:
        key = self.settings.resolved_key()
        if not key:
            raise ProviderError(
                self.settings.missing() or f"{self.settings.name}: no API key",
                provider=self.settings.name,
                kind="config",
            )
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:  # a gRPC aio channel is bound to its loop
            host = api_host(self.settings.resolved_base_url())
            self._client = AsyncClient(
                api_key=key,
                api_host=host,
                timeout=self.settings.timeout,
                channel_options=self._channel_options(),
                use_insecure_channel=is_loopback(host) or bool(self.settings.options.get("insecure")),
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()

    # --- request ---------------------------------------------------------------------------
    def _messages(self, request: ProviderRequest) -> list[chat_pb2.Message]:
        out = [system(request.system)] if request.system else []
        shown: list[chat_pb2.Content] = []  # images of the tool results in a row, for one user message after them
        for message in request.messages:
            if not isinstance(message, ToolResultMessage) and shown:
                out.append(user(*shown))
                shown = []
            if isinstance(message, UserMessage):
                out.append(user(message.rendered()))
            elif isinstance(message, AssistantMessage):
                out.append(self._assistant(message))
            elif isinstance(message, ToolResultMessage):
                content = f"Error: {message.content}" if message.is_error else message.content
                images = [i for i in message.images if i.get("mime") in IMAGE_TYPES and i.get("data")]
                if len(images) < len(message.images):
                    dropped = sorted({str(i.get("mime")) for i in message.images if i not in images})
                    content += f"\n[not shown to you: {len(message.images) - len(images)} image(s) of type " \
                               f"{', '.join(dropped)}]"
                if images:
                    content += f"\n[{_images(len(images))} attached in the next user message]"
                    which = f"{'This image is' if len(images) == 1 else 'These images are'} from the result of " \
                            f"tool call {message.call_id} ({message.name}):"
                    shown.append(text(which))
                    shown += [image(f"data:{i['mime']};base64,{i['data']}") for i in images]
                out.append(tool_result(content, tool_call_id=message.call_id))
        if shown:
            out.append(user(*shown))
        return out

    def _assistant(self, message: AssistantMessage) -> chat_pb2.Message:
        """Our own replay item when it still matches the turn's tool calls, else the neutral fields."""
        if message.provider == self.kind:
            for item in message.replay:
                if item.get("type") == REPLAY_TYPE:
                    replayed = json_format.ParseDict(item["message"], chat_pb2.Message())
                    if [c.id for c in replayed.tool_calls] == [c.call_id for c in message.tool_calls]:
                        for call in replayed.tool_calls:
                            call.function.arguments = _loadable(call.function.arguments)
                        return replayed
        calls = [
            chat_pb2.ToolCall(
                id=c.call_id,
                type=chat_pb2.ToolCallType.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL,
                function=chat_pb2.FunctionCall(name=c.name, arguments=_raw_arguments(c.arguments)),
            )
            for c in message.tool_calls
        ]
        content = [text(message.text)] if message.text else []
        return chat_pb2.Message(role=ASSISTANT, content=content, tool_calls=calls)

    def _create_chat(self, client: AsyncClient, request: ProviderRequest) -> Any:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": self._messages(request),
            # encrypted reasoning comes back in the replay item: Grok reasons better when it gets it back
            "use_encrypted_content": bool(self.settings.options.get("encrypted_reasoning", True)),
        }
        if request.tools:
            kwargs["tools"] = [tool(t.name, t.description, t.parameters) for t in request.tools]
        effort = request.reasoning.effort if request.reasoning else None
        if effort in _EFFORTS:  # None: the model's default (grok-4 rejects any reasoning_effort)
            kwargs["reasoning_effort"] = effort
        if request.max_output_tokens:
            kwargs["max_tokens"] = request.max_output_tokens
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        return client.chat.create(**kwargs)

    # --- stream ----------------------------------------------------------------------------
    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        chat = self._create_chat(self._get_client(), request)
        said: list[str] = []
        thought: list[str] = []
        calls: list[ToolCall] = []
        response: Any = None
        finish = 0
        chunks = 0
        try:
            async with contextlib.aclosing(chat.stream()) as pairs:
                async for accumulated, chunk in pairs:
                    # the SDK accumulates the whole reply in it; the last one is read after the loop
                    response = accumulated
                    chunks += 1
                    for output in chunk.proto.outputs:
                        finish = output.finish_reason or finish
                    if chunk.reasoning_content:
                        thought.append(chunk.reasoning_content)
                        yield ReasoningDelta(chunk.reasoning_content)
                    if chunk.content:
                        said.append(chunk.content)
                        yield TextDelta(chunk.content)
                    for tc in chunk.tool_calls:
                        if tc.type in _CLIENT_SIDE and tc.id not in {c.call_id for c in calls}:
                            call = ToolCall(tc.id, tc.function.name, parse_arguments(tc.function.arguments))
                            calls.append(call)
                            yield ToolCallRequested(call)
        except grpc.RpcError as err:
            raise self._rpc_error(err, chunks) from None
        except ProviderError:
            raise
        except json.JSONDecodeError:
            # After the last chunk the SDK json.loads() every tool call's arguments for its telemetry
            # span; a model's broken JSON raises here although the stream itself is complete.
            if not finish:
                raise self._stream_error(f"unreadable data after {chunks} chunks") from None
        except Exception as err:  # an unparsable message: grpc hands the SDK None and it trips on it
            what = f"unreadable data after {chunks} chunks ({type(err).__name__})"
            raise self._stream_error(what) from None
        if response is None or not finish:
            raise self._stream_error(f"the stream ended after {chunks} chunks without a finish reason")
        yield normalize_usage(response.usage)
        yield Finished(
            AssistantMessage(
                text="".join(said),
                tool_calls=calls,
                reasoning="".join(thought),
                provider=self.kind,
                model=request.model,
                replay=[self._replay(response)],
            ),
            _STOP_REASONS.get(sample_pb2.FinishReason.Name(finish), "stop"),
        )

    @staticmethod
    def _replay(response: Any) -> dict[str, Any]:
        """The assistant message exactly as the SDK's ``chat.append(response)`` would re-send it."""
        message = chat_pb2.Message(
            role=ASSISTANT,
            content=[text(response.content)] if response.content else [],
            reasoning_content=response.reasoning_content,
            encrypted_content=response.encrypted_content,
            tool_calls=response.tool_calls,
        )
        as_dict = json_format.MessageToDict(message, preserving_proto_field_name=True)
        return {"type": REPLAY_TYPE, "message": as_dict}

    # --- errors ----------------------------------------------------------------------------
    def _stream_error(self, what: str) -> ProviderError:
        name = self.settings.name
        return ProviderError(f"{name}: {what}", provider=name, retryable=True, kind="stream")

    def _rpc_error(self, err: grpc.RpcError, chunks: int) -> ProviderError:
        code = err.code().name if err.code() is not None else "UNKNOWN"
        details = self._scrub(err.details() or "")
        if chunks and code in _BROKEN_STREAM:
            return self._stream_error(f"stream broke off after {chunks} chunks ({code}): {details}")
        kind, status, retryable, what = _ERRORS.get(code, ("server", None, False, "error"))
        label = f"{status} {code}" if status else code
        if kind == "timeout":
            what = f"timed out after {self.settings.timeout:g}s"
        retries = min(max(0, self.settings.max_retries), 4) if code in _RETRY_CODES else 0
        tried = f" after {retries} retries" if retries else ""
        return ProviderError(
            f"{self.settings.name}: {what} ({label}){tried}: {details}",
            provider=self.settings.name,
            retryable=retryable,
            status=status,
            kind=kind,
        )

    def _scrub(self, details: str) -> str:
        key = self.settings.resolved_key()
        return details.replace(key, "***") if key else details


def _images(n: int) -> str:
    return "1 image" if n == 1 else f"{n} images"


def _raw_arguments(arguments: dict[str, Any]) -> str:
    if set(arguments) == {"_unparsed_arguments"}:
        return _loadable(str(arguments["_unparsed_arguments"]))
    return json.dumps(arguments)


def _loadable(raw: str) -> str:
    """Arguments the SDK can ``json.loads()``: it does so for every tool call in the history (for
    its telemetry span) before sending, so one broken call would fail every later request."""
    if not raw.strip():
        return "{}"
    try:
        json.loads(raw)
    except json.JSONDecodeError:
        return json.dumps({"_unparsed_arguments": raw})
    return raw
