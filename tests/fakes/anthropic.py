"""A wire-level fake of Anthropic's Messages API (``POST /v1/messages``, ``stream: true``).

It speaks the SSE dialect the real API speaks and the ``anthropic`` SDK parses: every event carries an
``event:`` name (the SDK silently skips nameless ``data:`` lines), ``ping`` events are interleaved,
errors before the stream are ``{"type":"error","error":{"type":...,"message":...}}`` with a
``retry-after-ms`` header (never a plain ``retry-after``: the SDK would sleep it, uncapped), and
errors during the stream are an ``event: error`` with the same body.

Usage convention: a :class:`ScriptedTurn`'s numbers are the *normalized* ones the adapter must
report (``input_tokens`` includes ``cached_tokens``; ``output_tokens`` includes ``reasoning_tokens``).
The fake splits them the way Anthropic does: the wire ``input_tokens`` excludes cache reads, which
come as ``cache_read_input_tokens``, and thinking tokens are ``output_tokens_details.thinking_tokens``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

import tornado.iostream

from jupyterlab_ide_agent.providers.base import ProviderSettings

from .base import FakeHandler, HTTPFakeServer, ScriptedTurn, split_chunks

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class AnthropicTurn(ScriptedTurn):
    """A :class:`ScriptedTurn` with the two things only Anthropic has.

    ``stream_error`` (e.g. ``"overloaded_error"``) answers 200 and then sends an ``event: error``
    right after ``message_start``, as the real API does when it overloads mid-stream;
    ``redacted_thinking`` adds a ``redacted_thinking`` block (opaque ``data``) before the text;
    ``raw_arguments`` is streamed instead of the first tool call's JSON (e.g. a truncated object).
    """

    stream_error: str | None = None
    redacted_thinking: bool = False
    raw_arguments: str | None = None


def error_body(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type or ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": "req_fake",
    }


def signature_for(text: str) -> str:
    """A stand-in for the opaque thinking signature (base64, like the real one)."""
    return base64.b64encode(f"sig:{len(text)}:{secrets.token_hex(8)}".encode()).decode()


class MessagesHandler(FakeHandler):
    async def post(self) -> None:
        body = self.record_request()
        turn = self.fake.next_turn()
        try:
            if turn.delay:
                await asyncio.sleep(turn.delay)
            if turn.status:
                self.set_status(turn.status)
                if turn.retry_after_ms is not None:
                    self.set_header("retry-after-ms", str(turn.retry_after_ms))
                self.set_header("content-type", "application/json")
                self.finish(json.dumps(error_body(turn.status, turn.error_message)))
                return
            await self.stream_turn(turn, (body or {}).get("model", "claude-fake"))
        except (tornado.iostream.StreamClosedError, asyncio.CancelledError):
            pass  # the client went away (timeout) or the turn cut the connection on purpose

    async def event(self, turn: ScriptedTurn, data: dict[str, Any]) -> None:
        await self.sse(data, turn, event=data["type"])

    async def stream_turn(self, turn: ScriptedTurn, model: str) -> None:
        self.start_sse()
        wire_input = turn.input_tokens - turn.cached_tokens
        # headers and message_start go out at once, as from the real API: chunk_delay paces what follows,
        # so a chunk_delay past the client timeout is a stall mid-stream, not before the response
        await self.event(replace(turn, chunk_delay=0), {
            "type": "message_start",
            "message": {
                "id": f"msg_{secrets.token_hex(12)}", "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": wire_input, "output_tokens": 1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": turn.cached_tokens},
            },
        })
        if getattr(turn, "stream_error", None):
            await self.sse(error_body(529, turn.error_message, turn.stream_error), turn, event="error")
            return
        await self.event(turn, {"type": "ping"})
        if turn.malformed:
            # an event name the SDK accepts with data it cannot parse (a nameless line would be skipped)
            self.write("event: content_block_delta\ndata: {not json\n\n")
            await self.flush()
        index = 0
        if turn.reasoning:
            await self.block(turn, index, {"type": "thinking", "thinking": "", "signature": ""}, [
                {"type": "thinking_delta", "thinking": piece} for piece in split_chunks(turn.reasoning, turn.chunks)
            ] + [{"type": "signature_delta", "signature": signature_for(turn.reasoning)}])
            index += 1
        if getattr(turn, "redacted_thinking", False):
            await self.block(turn, index, {"type": "redacted_thinking", "data": "RkFLRS1SRURBQ1RFRA=="}, [])
            index += 1
        if turn.text:
            pieces = split_chunks(turn.text, turn.chunks)
            await self.block(turn, index, {"type": "text", "text": ""},
                             [{"type": "text_delta", "text": p} for p in pieces])
            index += 1
        for n, tool in enumerate(turn.tool_calls):
            call_id = tool.call_id or f"toolu_{secrets.token_hex(12)}"
            raw = json.dumps(tool.arguments)
            if n == 0 and getattr(turn, "raw_arguments", None) is not None:
                raw = turn.raw_arguments
            # like the API: an empty partial_json first, then the JSON in pieces
            pieces = [""] + split_chunks(raw, turn.chunks)
            await self.block(turn, index, {"type": "tool_use", "id": call_id, "name": tool.name, "input": {}},
                             [{"type": "input_json_delta", "partial_json": p} for p in pieces])
            index += 1
        usage = {
            "input_tokens": wire_input, "output_tokens": turn.output_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": turn.cached_tokens,
            "output_tokens_details": {"thinking_tokens": turn.reasoning_tokens},
        }
        stop = "tool_use" if turn.tool_calls else "end_turn"
        await self.event(turn, {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                "usage": usage})
        await self.event(turn, {"type": "message_stop"})
        self.finish()

    async def block(self, turn: ScriptedTurn, index: int, start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        await self.event(turn, {"type": "content_block_start", "index": index, "content_block": start})
        for delta in deltas:
            await self.event(turn, {"type": "content_block_delta", "index": index, "delta": delta})
        await self.event(turn, {"type": "content_block_stop", "index": index})


class FakeAnthropic(HTTPFakeServer):
    """The fake Messages API; ``base_url`` is what ``AsyncAnthropic(base_url=...)`` takes (no ``/v1``)."""

    name = "anthropic"

    def routes(self) -> list[tuple[str, type, dict[str, Any]]]:
        return [(r"/v1/messages", MessagesHandler, {})]

    def settings(self, **kw: Any) -> ProviderSettings:
        values: dict[str, Any] = {
            "name": "anthropic", "kind": "anthropic", "api_key": "sk-ant-fake-key",
            "base_url": self.base_url, "timeout": 5.0, "max_retries": 0,
        }
        values.update(kw)
        return ProviderSettings(**values)
