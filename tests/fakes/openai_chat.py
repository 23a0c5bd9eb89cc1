"""A wire-level fake of an OpenAI-compatible Chat Completions server (``POST /v1/chat/completions``).

It streams what OpenAI, vLLM, llama.cpp's server and Ollama stream: ``chat.completion.chunk`` objects as
``data:`` lines, a first delta with the role, reasoning deltas (``reasoning_content`` or ``reasoning``),
text deltas, ``tool_calls`` deltas (id, type and name in a call's first delta, the arguments in pieces,
keyed by ``index``), a chunk with ``finish_reason``, a usage chunk with ``choices: []`` when the request
asked for ``stream_options.include_usage``, then ``data: [DONE]``.

The ways real servers differ are switches on the fake (kept until ``reset()``):
``reasoning_field``, ``usage_mode`` (``standard`` | ``ignore`` | ``on_finish`` | ``timings``, llama.cpp's
numbers), ``tool_call_style`` (``indexed`` | ``whole_index0``, each call whole and at index 0 as Ollama
streams them), ``finish_reason`` (forces one; ``""`` sends none), ``tool_less_models`` (models that
answer a request with tools as Ollama does: 400 "<model> does not support tools") and the one-shot
``stream_error`` (an ``{"error": ...}`` payload sent mid-stream, as vLLM does).
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

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                429: "requests"}


class _ChatHandler(FakeHandler):
    fake: FakeOpenAIChat

    async def post(self) -> None:
        body = self.record_request() or {}
        turn = self.fake.next_turn()
        try:
            if turn.delay:
                await asyncio.sleep(turn.delay)
            model = str(body.get("model", ""))
            if body.get("tools") and model in self.fake.tool_less_models:
                self._error(400, f"registry.ollama.ai/library/{model}:latest does not support tools", turn)
            elif turn.status:
                self._error(turn.status, turn.error_message, turn)
            else:
                await self._stream(body, turn)
        except tornado.iostream.StreamClosedError:
            pass  # the client gave up (timeout) or we cut the connection on purpose
        except asyncio.CancelledError:
            if not self.request.connection.stream.closed():
                raise

    def _error(self, status: int, message: str, turn: ScriptedTurn) -> None:
        self.set_status(status)
        self.set_header("content-type", "application/json")
        if turn.retry_after_ms is not None:
            self.set_header("retry-after-ms", str(turn.retry_after_ms))
        etype = _ERROR_TYPES.get(status, "server_error")
        self.finish({"error": {"message": message, "type": etype, "param": None, "code": None}})

    async def _stream(self, body: dict[str, Any], turn: ScriptedTurn) -> None:
        fake = self.fake
        self.start_sse()
        head = {"id": f"chatcmpl-{next(fake.ids)}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "fake-model"), "system_fingerprint": "fp_fake"}

        async def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> None:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                                 "finish_reason": finish}]
            await self.sse({**head, "choices": choices, **extra}, turn)

        await chunk({"role": "assistant", "content": ""})
        if turn.malformed:
            await self.malformed_line()
            return
        if fake.stream_error is not None:
            error, fake.stream_error = fake.stream_error, None
            await self.sse({"error": error}, turn)
            self.finish()
            return
        for piece in split_chunks(turn.reasoning, turn.chunks):
            await chunk({fake.reasoning_field: piece})
        for piece in split_chunks(turn.text, turn.chunks):
            await chunk({"content": piece})
        for index, tool in enumerate(turn.tool_calls):
            args = tool.arguments if isinstance(tool.arguments, str) else json.dumps(tool.arguments)
            first = {"id": tool.call_id or f"call_{next(fake.ids)}", "type": "function",
                     "function": {"name": tool.name, "arguments": ""}}
            if fake.tool_call_style == "whole_index0":
                await chunk({"tool_calls": [{"index": 0, **first, "function": {"name": tool.name, "arguments": args}}]})
                continue
            await chunk({"tool_calls": [{"index": index, **first}]})
            for piece in split_chunks(args, turn.chunks):
                await chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})

        usage = {"prompt_tokens": turn.input_tokens, "completion_tokens": turn.output_tokens + turn.reasoning_tokens,
                 "total_tokens": turn.input_tokens + turn.output_tokens + turn.reasoning_tokens,
                 "prompt_tokens_details": {"cached_tokens": turn.cached_tokens},
                 "completion_tokens_details": {"reasoning_tokens": turn.reasoning_tokens}}
        finish = fake.finish_reason if fake.finish_reason is not None else (
            "tool_calls" if turn.tool_calls else "stop")
        if finish:
            extra: dict[str, Any] = {}
            if fake.usage_mode == "on_finish":
                extra["usage"] = usage
            elif fake.usage_mode == "timings":
                new = turn.input_tokens - turn.cached_tokens
                extra["timings"] = {"cache_n": turn.cached_tokens, "prompt_n": new, "predicted_n": turn.output_tokens,
                                    "predicted_per_second": 42.0}
            await chunk({}, finish, **extra)
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if fake.usage_mode == "standard" and wants_usage:
            await chunk(None, usage=usage)
        self.write("data: [DONE]\n\n")
        self.finish()


class FakeOpenAIChat(HTTPFakeServer):
    """Fake Chat Completions endpoint; ``settings()`` is a provider with ``api="chat_completions"``."""

    name = "openai-chat"

    def __init__(self) -> None:
        super().__init__()
        self.ids = itertools.count(1)
        self._defaults()

    def _defaults(self) -> None:
        self.reasoning_field = "reasoning_content"
        self.usage_mode = "standard"
        self.tool_call_style = "indexed"
        self.finish_reason: str | None = None
        self.tool_less_models: set[str] = set()
        self.stream_error: dict[str, Any] | None = None

    def routes(self) -> list[tuple[str, type, dict[str, Any]]]:
        return [(r"/v1/chat/completions", _ChatHandler, {})]

    def reset(self) -> None:
        super().reset()
        self._defaults()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def settings(self, **kw: Any) -> ProviderSettings:
        values: dict[str, Any] = {"name": "local", "kind": "openai", "api": "chat_completions",
                                  "api_key": "sk-fake-test-key", "base_url": self.base_url, "timeout": 5.0,
                                  "max_retries": 0}
        values.update(kw)
        return ProviderSettings(**values)
