"""A wire-level fake of the Gemini API's ``streamGenerateContent`` endpoint.

It answers ``POST /{v1|v1beta}/models/{model}:streamGenerateContent?alt=sse`` the way the real API
does: every SSE ``data:`` line is one whole ``GenerateContentResponse`` in camelCase, thoughts are
``{"text", "thought": true}`` parts, function calls are ``functionCall`` parts (without an ``id``
unless the script gives one, like the real Gemini API) and the first one carries a
``thoughtSignature``; the last chunk holds ``finishReason`` and the full ``usageMetadata``. Errors
are plain HTTP statuses with Google's ``{"error": {code, message, status}}`` body.

Usage mapping: ``ScriptedTurn.output_tokens`` is the normalized total (thinking included), so the
fake reports ``candidatesTokenCount = output_tokens - reasoning_tokens`` and
``thoughtsTokenCount = reasoning_tokens``, exactly as Gemini splits them.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

from jupyterlab_ide_agent.providers.base import ProviderSettings

from .base import FakeHandler, HTTPFakeServer, ScriptedTurn, split_chunks

# Google RPC status names the API puts in error bodies.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

FAKE_SIGNATURE = base64.b64encode(b"fake-thought-signature").decode()


def usage_metadata(turn: ScriptedTurn) -> dict[str, Any]:
    thoughts = turn.reasoning_tokens
    candidates = max(0, turn.output_tokens - thoughts)
    usage: dict[str, Any] = {
        "promptTokenCount": turn.input_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": turn.input_tokens + candidates + thoughts,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if turn.cached_tokens:
        usage["cachedContentTokenCount"] = turn.cached_tokens
    return usage


class StreamGenerateContentHandler(FakeHandler):
    """One scripted turn per request, streamed as SSE GenerateContentResponse chunks."""

    async def post(self, api_version: str, model: str) -> None:
        self.record_request()
        if not self.request.headers.get("x-goog-api-key"):
            self.error(ScriptedTurn(status=401, error_message="API key missing", retry_after_ms=None))
            return
        turn = self.fake.next_turn()
        if turn.delay:
            await asyncio.sleep(turn.delay)
        if turn.status:
            self.error(turn)
            return
        self.start_sse()
        await self.flush()  # headers go out at once, as the real API's do
        meta = {"modelVersion": model, "responseId": f"resp-{len(self.fake.requests)}"}

        def chunk(parts: list[dict[str, Any]], **candidate: Any) -> dict[str, Any]:
            # the real API sends running usage (prompt count) on every chunk
            return {
                "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0, **candidate}],
                "usageMetadata": {"promptTokenCount": turn.input_tokens},
                **meta,
            }

        for piece in split_chunks(turn.reasoning, turn.chunks):
            await self.sse(chunk([{"text": piece, "thought": True}]), turn)
        if turn.malformed:
            await self.malformed_line()
        for piece in split_chunks(turn.text, turn.chunks):
            await self.sse(chunk([{"text": piece}]), turn)
        if turn.tool_calls:
            parts = []
            for i, tool in enumerate(turn.tool_calls):
                call: dict[str, Any] = {"name": tool.name, "args": tool.arguments}
                if tool.call_id is not None:
                    call["id"] = tool.call_id
                part: dict[str, Any] = {"functionCall": call}
                if i == 0:  # Gemini signs only the first call of a parallel batch
                    part["thoughtSignature"] = FAKE_SIGNATURE
                parts.append(part)
        else:
            # a text answer ends with an empty text part that carries the signature
            parts = [{"text": "", "thoughtSignature": FAKE_SIGNATURE}]
        final = chunk(parts, finishReason="STOP")
        final["usageMetadata"] = usage_metadata(turn)
        await self.sse(final, turn)

    def error(self, turn: ScriptedTurn) -> None:
        status = turn.status or 500
        self.set_status(status)
        self.set_header("content-type", "application/json; charset=UTF-8")
        if turn.retry_after_ms is not None:
            self.set_header("retry-after-ms", str(turn.retry_after_ms))
        body = {"error": {"code": status, "message": turn.error_message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}
        self.finish(body)


def thinking_config(body: dict[str, Any]) -> dict[str, Any]:
    """``generationConfig.thinkingConfig`` of a recorded body, keys normalized to camelCase.

    google-genai 3.6.1 sends snake_case keys there (``include_thoughts``); the API accepts both.
    """
    config = (body.get("generationConfig") or body.get("generation_config") or {})
    raw = config.get("thinkingConfig") or config.get("thinking_config") or {}
    return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): v for k, v in raw.items()}


class FakeGemini(HTTPFakeServer):
    """``FakeGemini().start()``; point ``ProviderSettings.base_url`` at ``base_url`` (no version path)."""

    name = "gemini"

    def routes(self) -> list[tuple[str, type, dict[str, Any]]]:
        return [(r"/(v1|v1beta|v1alpha)/models/([^/]+):streamGenerateContent", StreamGenerateContentHandler, {})]

    def settings(self, **kw: Any) -> ProviderSettings:
        values: dict[str, Any] = {
            "name": "gemini",
            "kind": "gemini",
            "api_key": "fake-gemini-key",
            "base_url": self.base_url,
            "max_retries": 0,
            "timeout": 5.0,
            # the SDK's backoff starts at 1 s (+1 s jitter) by default: keep test retries instant
            "options": {"retry_initial_delay": 0.01, "retry_jitter": 0.0},
        }
        values.update(kw)
        return ProviderSettings(**values)
