"""A wire-level fake of xAI's gRPC Chat service (``xai_api.Chat``), for the real ``xai_sdk`` client.

``GetCompletionChunk`` (server stream, what ``chat.stream()`` calls) and ``GetCompletion`` (unary,
``chat.sample()``) are served by a ``grpc.aio`` server running in the fake's own thread and loop.
What the SDK needs on the wire (see PROVIDER-WIRE.md): every ``Delta`` carries
``role=ROLE_ASSISTANT`` (the SDK drops outputs of any other role), tool calls arrive whole, and the
last chunk carries a ``finish_reason`` and the usage.

Usage convention (shared with the other fakes): a :class:`ScriptedTurn`'s numbers are the
*normalized* ones the adapter must report (``output_tokens`` includes ``reasoning_tokens``,
``input_tokens`` includes ``cached_tokens``). The fake splits them the way xAI does: reasoning tokens
are counted *outside* ``completion_tokens`` (``total_tokens = prompt + completion + reasoning``).

When the request sets ``use_encrypted_content``, the reasoning also comes back sealed in one
``encrypted_content`` delta (here just ``"enc:" + base64``), as the real API returns it.

Faults: ``status`` aborts with the matching gRPC code (429 -> RESOURCE_EXHAUSTED, ...) and a
``grpc-retry-pushback-ms`` trailer (gRPC's retry-after) from ``retry_after_ms``; ``cut_after`` really
drops the TCP connection, which is why clients reach the gRPC server through a tiny TCP relay: gRPC
gives a handler no way to kill its transport, the relay can. ``malformed`` sends one message that is
not a valid protobuf, which is why the stream's response serializer passes raw bytes through.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format, timestamp_pb2
from xai_sdk.proto import chat_pb2, chat_pb2_grpc, sample_pb2, usage_pb2

from jupyterlab_ide_agent.providers.base import ProviderSettings

from .base import FakeServerBase, ScriptedTurn, split_chunks

ASSISTANT = chat_pb2.MessageRole.ROLE_ASSISTANT

#: the HTTP-style statuses a ScriptedTurn uses, as the gRPC codes xAI answers with
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}

#: not a protobuf: a truncated varint tag, so the client's ``FromString`` fails
MALFORMED = b"\xff\xff\xff"


def _serialize(message: Any) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()


class _ChatServicer(chat_pb2_grpc.ChatServicer):
    """The two RPCs the SDK's chat client uses; every other method stays UNIMPLEMENTED."""

    def __init__(self, fake: FakeXAI) -> None:
        self.fake = fake

    async def GetCompletionChunk(  # noqa: N802 (gRPC method name)
        self, request: chat_pb2.GetCompletionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        turn = await self.fake.begin("/xai_api.Chat/GetCompletionChunk", request, context)
        chunks = self.fake.chunks(turn, request)
        bad_at = min(1, len(chunks) - 1)  # the malformed message comes mid-stream when it can
        for i, chunk in enumerate(chunks):
            if turn.cut_after is not None and i >= turn.cut_after:
                await asyncio.sleep(0.2)  # let the relay deliver what was sent, then drop the line
                self.fake.cut(context.peer())
                await asyncio.sleep(3600)  # the client is gone; the server cancels us
            if turn.chunk_delay:
                await asyncio.sleep(turn.chunk_delay)
            if turn.malformed and i == bad_at:
                yield MALFORMED
                return
            yield chunk

    async def GetCompletion(  # noqa: N802 (gRPC method name)
        self, request: chat_pb2.GetCompletionsRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.GetChatCompletionResponse:
        turn = await self.fake.begin("/xai_api.Chat/GetCompletion", request, context)
        chunks = self.fake.chunks(turn, request)
        message = chat_pb2.CompletionMessage(
            role=ASSISTANT,
            content="".join(c.outputs[0].delta.content for c in chunks),
            reasoning_content="".join(c.outputs[0].delta.reasoning_content for c in chunks),
            encrypted_content="".join(c.outputs[0].delta.encrypted_content for c in chunks),
            tool_calls=[t for c in chunks for t in c.outputs[0].delta.tool_calls],
        )
        last = chunks[-1]
        output = chat_pb2.CompletionOutput(index=0, message=message, finish_reason=last.outputs[0].finish_reason)
        return chat_pb2.GetChatCompletionResponse(
            id=last.id, model=last.model, created=last.created, usage=last.usage, outputs=[output]
        )


class FakeXAI(FakeServerBase):
    """The xAI Chat service on 127.0.0.1; ``base_url`` is the ``host:port`` to give as api_host."""

    name = "xai"

    def __init__(self) -> None:
        super().__init__()
        self._server: grpc.aio.Server | None = None
        self._relay: asyncio.Server | None = None
        self._grpc_port = 0
        # relay connections by the relay's own port towards the gRPC server (= the handler's peer port)
        self._links: dict[int, tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = {}

    @property
    def base_url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def settings(self, **kw: Any) -> ProviderSettings:
        values: dict[str, Any] = {
            "name": "xai",
            "kind": "xai",
            "api_key": "xai-test-key",
            "base_url": self.base_url,
            "max_retries": 0,
            "timeout": 5.0,
        }
        values.update(kw)
        return ProviderSettings(**values)

    # --- serving ---------------------------------------------------------------------------
    async def begin(
        self, path: str, request: chat_pb2.GetCompletionsRequest, context: grpc.aio.ServicerContext
    ) -> ScriptedTurn:
        """Record the request, take the next turn, honour its ``delay`` and ``status``."""
        body = json_format.MessageToDict(request, preserving_proto_field_name=True)
        self.record(path, {k: str(v) for k, v in context.invocation_metadata() or ()}, body)
        turn = self.next_turn()
        if turn.delay:
            await asyncio.sleep(turn.delay)
        if turn.status is not None:
            code = STATUS_CODES.get(turn.status, grpc.StatusCode.UNKNOWN)
            trailers = (("grpc-retry-pushback-ms", str(turn.retry_after_ms)),) if turn.retry_after_ms else ()
            await context.abort(code, turn.error_message, trailing_metadata=trailers)
        return turn

    def chunks(
        self, turn: ScriptedTurn, request: chat_pb2.GetCompletionsRequest
    ) -> list[chat_pb2.GetChatCompletionChunk]:
        """The turn as the chunks xAI streams: reasoning, text, whole tool calls, a closing chunk."""
        thinking = split_chunks(turn.reasoning, turn.chunks)
        deltas = [chat_pb2.Delta(role=ASSISTANT, reasoning_content=p) for p in thinking]
        if request.use_encrypted_content and turn.reasoning:  # the reasoning, opaque, to be sent back
            sealed = "enc:" + base64.b64encode(turn.reasoning.encode()).decode()
            deltas.append(chat_pb2.Delta(role=ASSISTANT, encrypted_content=sealed))
        deltas += [chat_pb2.Delta(role=ASSISTANT, content=p) for p in split_chunks(turn.text, turn.chunks)]
        for tool in turn.tool_calls:
            call = chat_pb2.ToolCall(
                id=tool.call_id or f"call_{uuid.uuid4().hex[:24]}",
                type=chat_pb2.ToolCallType.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL,
                status=chat_pb2.ToolCallStatus.TOOL_CALL_STATUS_COMPLETED,
                function=chat_pb2.FunctionCall(name=tool.name, arguments=_arguments(tool.arguments)),
            )
            deltas.append(chat_pb2.Delta(role=ASSISTANT, tool_calls=[call]))
        common = {
            "id": str(uuid.uuid4()),
            "model": request.model,
            "created": timestamp_pb2.Timestamp(seconds=int(time.time())),
            "system_fingerprint": "fp_fake",
        }
        out = [
            chat_pb2.GetChatCompletionChunk(outputs=[chat_pb2.CompletionOutputChunk(delta=d)], **common)
            for d in deltas
        ]
        reason = sample_pb2.FinishReason.REASON_TOOL_CALLS if turn.tool_calls else sample_pb2.FinishReason.REASON_STOP
        completion = max(0, turn.output_tokens - turn.reasoning_tokens)
        usage = usage_pb2.SamplingUsage(
            prompt_tokens=turn.input_tokens,
            prompt_text_tokens=turn.input_tokens - turn.cached_tokens,
            cached_prompt_text_tokens=turn.cached_tokens,
            completion_tokens=completion,
            reasoning_tokens=turn.reasoning_tokens,
            total_tokens=turn.input_tokens + completion + turn.reasoning_tokens,
        )
        last = chat_pb2.CompletionOutputChunk(delta=chat_pb2.Delta(role=ASSISTANT), finish_reason=reason)
        out.append(chat_pb2.GetChatCompletionChunk(outputs=[last], usage=usage, **common))
        return out

    # --- lifecycle -------------------------------------------------------------------------
    async def _start_server(self) -> None:
        servicer = _ChatServicer(self)
        request_parser = chat_pb2.GetCompletionsRequest.FromString
        handlers = {
            "GetCompletionChunk": grpc.unary_stream_rpc_method_handler(
                servicer.GetCompletionChunk, request_deserializer=request_parser, response_serializer=_serialize
            ),
            "GetCompletion": grpc.unary_unary_rpc_method_handler(
                servicer.GetCompletion, request_deserializer=request_parser, response_serializer=_serialize
            ),
        }
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("xai_api.Chat", handlers),))
        self._grpc_port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        self._relay = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._relay.sockets[0].getsockname()[1]

    async def _stop_server(self) -> None:
        if self._relay is not None:
            self._relay.close()
        for client, upstream in list(self._links.values()):
            client.transport.abort()
            upstream.transport.abort()
        if self._server is not None:
            await self._server.stop(0)

    # --- the TCP relay ---------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._grpc_port)
        key = up_writer.get_extra_info("sockname")[1]
        self._links[key] = (writer, up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._links.pop(key, None)
            writer.transport.abort()
            up_writer.transport.abort()

    def cut(self, peer: str) -> None:
        """Drop the client connection that carries the RPC whose server-side peer is ``peer``."""
        link = self._links.pop(int(peer.rsplit(":", 1)[-1]), None)
        if link is not None:
            for w in link:
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


def _arguments(arguments: dict[str, Any] | str) -> str:
    """JSON of the scripted arguments; a string is sent as is (to script unparsable arguments)."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)
