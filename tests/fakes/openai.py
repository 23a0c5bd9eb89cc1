"""A wire-level fake of OpenAI's Responses API (``POST /v1/responses`` with ``stream: true``).

It emits the event sequence the real API emits for a reasoning model: ``response.created`` and
``response.in_progress``; then per output item ``response.output_item.added`` -> deltas ->
``response.output_item.done`` (a reasoning item with summary parts, a message with output_text
deltas, function_call items with argument deltas); last ``response.completed`` with usage. Every
event carries a ``sequence_number``. The reasoning item has ``encrypted_content`` only when the request
asked for ``include=["reasoning.encrypted_content"]``, as the API does with ``store=false``.

Errors are answered before the stream, as the API does: the status code with
``{"error": {"message", "type", "param", "code"}}`` and a ``retry-after-ms`` header.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import tornado.iostream

from jupyterlab_ide_agent.providers.base import ProviderSettings

from .base import FakeHandler, HTTPFakeServer, ScriptedTurn, split_chunks

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class _ResponsesHandler(FakeHandler):
    fake: FakeOpenAI

    async def post(self) -> None:
        body = self.record_request() or {}
        turn = self.fake.next_turn()
        try:
            if turn.delay:
                await asyncio.sleep(turn.delay)
            if turn.status:
                self._error(turn)
                return
            await self._stream(body, turn)
        except tornado.iostream.StreamClosedError:
            pass  # the client gave up (timeout) or we cut the connection on purpose
        except asyncio.CancelledError:
            if not self.request.connection.stream.closed():
                raise

    def _error(self, turn: ScriptedTurn) -> None:
        etype, code = _ERROR_TYPES.get(turn.status or 500, ("server_error", None))
        self.set_status(turn.status or 500)
        self.set_header("content-type", "application/json")
        if turn.retry_after_ms is not None:
            self.set_header("retry-after-ms", str(turn.retry_after_ms))
        self.finish({"error": {"message": turn.error_message, "type": etype, "param": None, "code": code}})

    async def _stream(self, body: dict[str, Any], turn: ScriptedTurn) -> None:
        self.start_sse()
        seq = itertools.count()
        ids = self.fake.ids
        model = body.get("model", "gpt-fake")
        response: dict[str, Any] = {
            "id": f"resp_{next(ids)}", "object": "response", "created_at": int(time.time()),
            "status": "in_progress", "model": model, "output": [], "usage": None, "error": None,
            "incomplete_details": None, "instructions": body.get("instructions"),
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": body.get("tools", []),
            "store": body.get("store", True), "reasoning": body.get("reasoning"),
        }

        async def emit(etype: str, **fields: Any) -> None:
            # the API names each SSE event too (``event: response.created``)
            await self.sse({"type": etype, "sequence_number": next(seq), **fields}, turn, event=etype)

        await emit("response.created", response=response)
        if turn.malformed:
            await self.malformed_line()
            return
        await emit("response.in_progress", response=response)
        if self.fake.stream_error is not None:
            event, self.fake.stream_error = self.fake.stream_error, None
            await emit(event.pop("type"), **event)
            return

        output: list[dict[str, Any]] = []
        if turn.reasoning:
            item = {"id": f"rs_{next(ids)}", "type": "reasoning", "summary": []}
            await emit("response.output_item.added", output_index=len(output), item=item)
            where = {"item_id": item["id"], "output_index": len(output), "summary_index": 0}
            await emit("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""})
            for piece in split_chunks(turn.reasoning, turn.chunks):
                await emit("response.reasoning_summary_text.delta", **where, delta=piece)
            await emit("response.reasoning_summary_text.done", **where, text=turn.reasoning)
            part = {"type": "summary_text", "text": turn.reasoning}
            await emit("response.reasoning_summary_part.done", **where, part=part)
            item = {**item, "summary": [part]}
            if "reasoning.encrypted_content" in (body.get("include") or []):
                item["encrypted_content"] = f"gAAAA-fake-encrypted-{item['id']}"
            await emit("response.output_item.done", output_index=len(output), item=item)
            output.append(item)

        if turn.text:
            item = {"id": f"msg_{next(ids)}", "type": "message", "role": "assistant",
                    "status": "in_progress", "content": []}
            await emit("response.output_item.added", output_index=len(output), item=item)
            where = {"item_id": item["id"], "output_index": len(output), "content_index": 0}
            empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            await emit("response.content_part.added", **where, part=empty)
            for piece in split_chunks(turn.text, turn.chunks):
                await emit("response.output_text.delta", **where, delta=piece, logprobs=[])
            await emit("response.output_text.done", **where, text=turn.text, logprobs=[])
            part = {**empty, "text": turn.text}
            await emit("response.content_part.done", **where, part=part)
            item = {**item, "status": "completed", "content": [part]}
            await emit("response.output_item.done", output_index=len(output), item=item)
            output.append(item)

        for tool in turn.tool_calls:
            # a str stands for raw (possibly invalid) JSON, to exercise the adapter's fallback
            args = tool.arguments if isinstance(tool.arguments, str) else json.dumps(tool.arguments)
            item = {"id": f"fc_{next(ids)}", "type": "function_call", "status": "in_progress",
                    "call_id": tool.call_id or f"call_{next(ids)}", "name": tool.name, "arguments": ""}
            await emit("response.output_item.added", output_index=len(output), item=item)
            where = {"item_id": item["id"], "output_index": len(output)}
            for piece in split_chunks(args, turn.chunks):
                await emit("response.function_call_arguments.delta", **where, delta=piece)
            await emit("response.function_call_arguments.done", **where, arguments=args)
            item = {**item, "status": "completed", "arguments": args}
            await emit("response.output_item.done", output_index=len(output), item=item)
            output.append(item)

        output_tokens = turn.output_tokens + turn.reasoning_tokens  # the API counts reasoning in output
        usage = {
            "input_tokens": turn.input_tokens,
            "input_tokens_details": {"cached_tokens": turn.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": turn.reasoning_tokens},
            "total_tokens": turn.input_tokens + output_tokens,
        }
        await emit("response.completed", response={**response, "status": "completed", "output": output,
                                                    "usage": usage})
        self.finish()


class FakeOpenAI(HTTPFakeServer):
    """Fake OpenAI Responses endpoint; ``base_url`` is what ``AsyncOpenAI(base_url=...)`` expects.

    ``stream_error`` (one-shot): an event dict such as ``{"type": "error", "code": ..., "message": ...}``
    or ``{"type": "response.failed", "response": {...}}`` sent right after ``response.in_progress``,
    ending the stream, as the API does when a response fails after it started.
    """

    name = "openai"

    def __init__(self) -> None:
        super().__init__()
        self.ids = itertools.count(1)
        self.stream_error: dict[str, Any] | None = None

    def routes(self) -> list[tuple[str, type, dict[str, Any]]]:
        return [(r"/v1/responses", _ResponsesHandler, {})]

    def reset(self) -> None:
        super().reset()
        self.stream_error = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def settings(self, **kw: Any) -> ProviderSettings:
        values: dict[str, Any] = {"name": "openai", "kind": "openai", "api_key": "sk-fake-test-key",
                                  "base_url": self.base_url, "timeout": 5.0, "max_retries": 0}
        values.update(kw)
        return ProviderSettings(**values)
