"""Google Gemini adapter (google-genai, Gemini Developer API).

Wire facts this adapter relies on (google-genai 3.6.1):

* The async client would use aiohttp whenever it is importable (xai-sdk installs it). aiohttp's
  timeout is a *total* deadline for the whole stream and its timeouts are not retried by the SDK's
  retry options, so we hand the SDK our own ``httpx2.AsyncClient``: ``HttpOptions.timeout`` (in
  milliseconds) then becomes a per-read timeout, and httpx2 timeouts/connect errors are retried by
  ``HttpRetryOptions`` like 408/429/5xx.
* Gemini gives no function-call ids: we make one up per call and keep the API's own id (when a
  model sends one) only inside the replay items.
* Thought signatures (bytes, base64 on the wire) may sit on any part, often on an empty final text
  part. Replay items keep the model's parts in wire (camelCase) form with ``thoughtSignature``;
  signed parts are never merged with their neighbours, as the API requires.
* Images of a tool result: Gemini 3 models take them inside the functionResponse
  (``FunctionResponse.parts`` of ``inline_data`` blobs, "multimodal function responses"); older
  models do not, so for them the images follow the functionResponse parts in the same user turn as
  ``inline_data`` parts, after a text part naming the call they belong to.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from google import genai
from google.genai import errors, types

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
    TextDelta,
    ToolCallRequested,
    Usage,
)

# Documented stand-in for a missing signature on function calls that another model (or an
# unsigned history) produced; Gemini 3 rejects unsigned calls of the current turn otherwise.
# The SDK base64-encodes bytes, so decode the literal to get it onto the wire verbatim.
SKIP_SIGNATURE = base64.urlsafe_b64decode("skip_thought_signature_validator")

#: image types Gemini reads; others are named in the tool result text instead
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"}
STATUS_KINDS = {400: "bad_request", 401: "auth", 403: "auth", 404: "bad_request", 408: "timeout",
                409: "server", 429: "rate_limit", 503: "overloaded", 529: "overloaded"}
RETRYABLE = {408, 409, 429}
SDK_RETRIED = {408, 429, 500, 502, 503, 504}  # google-genai's default retry status codes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _name(value: Any) -> str:
    """An SDK enum's wire name (unknown future values come through as plain strings)."""
    return str(getattr(value, "value", value))


def _part_from_replay(item: dict[str, Any]) -> types.Part:
    """Rebuild a Part from a replay item (explicitly, so the signature bytes survive intact)."""
    sig = item.get("thoughtSignature")
    part = types.Part(thought_signature=base64.b64decode(sig) if sig else None)
    if "functionCall" in item:
        call = item["functionCall"]
        part.function_call = types.FunctionCall(name=call["name"], args=call.get("args") or {}, id=call.get("id"))
    else:
        part.text = item.get("text", "")
        part.thought = item.get("thought") or None
    return part


class _Turn:
    """Accumulates one streamed response: text, reasoning, calls, replay parts, usage."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[ToolCall] = []
        self.replay: list[dict[str, Any]] = []
        self.finish: str | None = None
        self.usage: types.GenerateContentResponseUsageMetadata | None = None
        self.blocked: str | None = None
        self.started = False  # once chunks flow, the SDK no longer retries anything

    def absorb(self, chunk: types.GenerateContentResponse) -> list[ProviderEvent]:
        events: list[ProviderEvent] = []
        if chunk.usage_metadata is not None:
            self.usage = chunk.usage_metadata  # running totals: the last one wins
        if chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason:
            self.blocked = _name(chunk.prompt_feedback.block_reason)
        if not chunk.candidates:
            return events
        candidate = chunk.candidates[0]
        for part in (candidate.content.parts or []) if candidate.content else []:
            sig = _b64(part.thought_signature) if part.thought_signature else None
            if part.function_call is not None:
                events.append(ToolCallRequested(self._call(part.function_call, sig)))
            elif part.text is not None:
                if part.text:
                    (self.reasoning if part.thought else self.text).append(part.text)
                    events.append((ReasoningDelta if part.thought else TextDelta)(part.text))
                self._add_text(part.text, bool(part.thought), sig)
        if candidate.finish_reason is not None:
            self.finish = _name(candidate.finish_reason)
        return events

    def _call(self, fc: types.FunctionCall, sig: str | None) -> ToolCall:
        args: Any = fc.args if fc.args is not None else {}
        if not isinstance(args, dict):
            args = {"_unparsed_arguments": str(args)}
        call = ToolCall(call_id=fc.id or f"gemini_{uuid.uuid4().hex[:16]}", name=fc.name or "", arguments=args)
        self.calls.append(call)
        wire: dict[str, Any] = {"name": call.name, "args": args}
        if fc.id:
            wire["id"] = fc.id
        item: dict[str, Any] = {"functionCall": wire, "_callId": call.call_id}
        if sig:
            item["thoughtSignature"] = sig
        self.replay.append(item)
        return call

    def _add_text(self, text: str, thought: bool, sig: str | None) -> None:
        last = self.replay[-1] if self.replay else None
        if (sig is None and last is not None and "text" in last and "thoughtSignature" not in last
                and bool(last.get("thought")) == thought):
            last["text"] += text  # unsigned neighbours of one kind merge safely
            return
        if not text and sig is None:
            return
        item: dict[str, Any] = {"text": text}
        if thought:
            item["thought"] = True
        if sig:
            item["thoughtSignature"] = sig
        self.replay.append(item)

    def normalized_usage(self) -> Usage:
        u = self.usage
        if u is None:
            return Usage()
        thoughts = u.thoughts_token_count or 0
        return Usage(input_tokens=u.prompt_token_count or 0, output_tokens=(u.candidates_token_count or 0) + thoughts,
                     reasoning_tokens=thoughts, cached_tokens=u.cached_content_token_count or 0)

    def stop_reason(self) -> str:
        if self.calls:
            return "tool_calls"
        return {"STOP": "stop", "MAX_TOKENS": "max_tokens"}.get(self.finish or "", (self.finish or "stop").lower())


class GeminiProvider(Provider):
    """Streams Gemini ``generateContent`` turns through one lazily created ``genai.Client``."""

    kind = "gemini"

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._client: genai.Client | None = None
        self._http: httpx2.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- client --------------------------------------------------------------------------------
    def _get_client(self) -> genai.Client:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        # First use, or a new event loop (tests): pooled connections cannot cross loops, and
        # the old loop is usually closed already, so the old client is just dropped.
        s = self.settings
        key = s.resolved_key()
        if not key:
            raise ProviderError(s.missing() or f"{s.name}: no API key", provider=s.name, kind="config")
        opts = s.options
        initial = float(opts.get("retry_initial_delay", 1.0))
        retry = types.HttpRetryOptions(
            attempts=max(0, s.max_retries) + 1,
            initial_delay=initial,
            max_delay=float(opts.get("retry_max_delay", 30.0)),
            jitter=float(opts.get("retry_jitter", initial)),
        )
        self._http = httpx2.AsyncClient(trust_env=True)
        http_options = types.HttpOptions(
            base_url=s.resolved_base_url(),
            api_version=opts.get("api_version"),  # None = the SDK default (v1 in 3.6.1)
            timeout=int(s.timeout * 1000),  # milliseconds!
            retry_options=retry,
            httpx_async_client=self._http,
        )
        # vertexai=False: never let GOOGLE_GENAI_USE_VERTEXAI redirect an API-key endpoint.
        self._client = genai.Client(api_key=key, vertexai=False, http_options=http_options)
        self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, http, self._client, self._http = self._client, self._http, None, None
        if client is not None:
            await client.aio.aclose()
        if http is not None:  # the SDK leaves a client it was given to its owner
            await http.aclose()

    # --- request -------------------------------------------------------------------------------
    def _config(self, request: ProviderRequest) -> types.GenerateContentConfig:
        config = types.GenerateContentConfig(
            system_instruction=request.system or None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            max_output_tokens=request.max_output_tokens,
            temperature=request.temperature,
        )
        if request.tools:
            config.tools = [types.Tool(function_declarations=[
                types.FunctionDeclaration(name=t.name, description=t.description, parameters_json_schema=t.parameters)
                for t in request.tools
            ])]
        r = request.reasoning
        if r is not None:  # None leaves the model's default thinking, without thought text
            config.thinking_config = types.ThinkingConfig(
                include_thoughts=r.summary, thinking_budget=-1 if r.budget_tokens is None else r.budget_tokens
            )
        return config

    def _contents(self, messages: list[Message], model: str = "") -> list[types.Content]:
        contents: list[types.Content] = []
        multimodal = self._multimodal_responses(model)
        calls: dict[str, tuple[str, str | None]] = {}  # our call id -> (name, the API's own id)
        for m in messages:
            if isinstance(m, UserMessage):
                contents.append(types.Content(role="user", parts=[types.Part(text=m.rendered())]))
            elif isinstance(m, AssistantMessage):
                parts = self._model_parts(m, calls)
                if parts:
                    contents.append(types.Content(role="model", parts=parts))
            elif isinstance(m, ToolResultMessage):
                name, api_id = calls.get(m.call_id, (m.name, None))
                part, images = self._result_part(m, name, api_id, multimodal)
                last = contents[-1] if contents else None
                if last is not None and last.role == "user" and last.parts and last.parts[0].function_response:
                    # parallel results go back in one user turn: the functionResponse parts first, in call
                    # order, then the image parts of the results that have them
                    at = next((i for i, p in enumerate(last.parts) if not p.function_response), len(last.parts))
                    last.parts.insert(at, part)
                else:
                    at, last = 0, types.Content(role="user", parts=[part])
                    contents.append(last)
                if images:  # an older model: the images follow the results, labelled with their call
                    which = f"function response {at + 1} ({name})" + (f", id {api_id}" if api_id else "")
                    label = f"{'This image was' if len(images) == 1 else 'These images were'} returned by {which}:"
                    assert last.parts is not None
                    last.parts.append(types.Part(text=label))
                    last.parts += [types.Part(inline_data=types.Blob(mime_type=mime, data=raw)) for mime, raw in images]
        return contents

    def _multimodal_responses(self, model: str) -> bool:
        """Whether images go inside the functionResponse (``FunctionResponse.parts``, Gemini 3 and later)
        rather than as inline_data parts next to it (older models). ``options["function_response_parts"]``
        overrides the guess from the model name."""
        forced = self.settings.options.get("function_response_parts")
        if forced is not None:
            return bool(forced)
        match = re.search(r"gemini-(\d+)", model)
        return bool(match) and int(match.group(1)) >= 3

    @staticmethod
    def _result_part(m: ToolResultMessage, name: str, api_id: str | None,
                     multimodal: bool) -> tuple[types.Part, list[tuple[str, bytes]]]:
        """The functionResponse part of one tool result, with its images inside it when ``multimodal``;
        otherwise also the images (mime, bytes) that must follow the results as inline_data parts."""
        images: list[tuple[str, bytes]] = []
        dropped: list[str] = []
        for image in m.images:
            mime, data = str(image.get("mime", "")), image.get("data") or ""
            try:
                raw = base64.b64decode(data) if mime in IMAGE_TYPES else b""
            except ValueError:  # not base64: say so rather than fail the whole request
                raw = b""
            if raw:
                images.append((mime, raw))
            else:
                dropped.append(mime)
        text = m.content
        if dropped:
            text += f"\n[not shown to you: {len(dropped)} image(s) of type {', '.join(sorted(set(dropped)))}]"
        response = {"error": text} if m.is_error else {"output": text}
        function_response = types.FunctionResponse(name=name, id=api_id, response=response)
        if images and multimodal:
            function_response.parts = [
                types.FunctionResponsePart(inline_data=types.FunctionResponseBlob(mime_type=mime, data=raw))
                for mime, raw in images
            ]
            images = []
        return types.Part(function_response=function_response), images

    def _model_parts(self, m: AssistantMessage, calls: dict[str, tuple[str, str | None]]) -> list[types.Part]:
        if m.provider == self.kind and m.replay:
            for item in m.replay:
                if "functionCall" in item and "_callId" in item:
                    calls[item["_callId"]] = (item["functionCall"]["name"], item["functionCall"].get("id"))
            return [_part_from_replay(item) for item in m.replay]
        parts = [types.Part(text=m.text)] if m.text else []
        for i, call in enumerate(m.tool_calls):
            calls[call.call_id] = (call.name, None)
            parts.append(types.Part(function_call=types.FunctionCall(name=call.name, args=call.arguments),
                                    thought_signature=SKIP_SIGNATURE if i == 0 else None))
        return parts

    # --- stream --------------------------------------------------------------------------------
    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        client = self._get_client()
        name = self.settings.name
        try:
            contents, config = self._contents(request.messages, request.model), self._config(request)
        except (ValueError, KeyError, TypeError) as exc:  # e.g. a corrupted persisted replay item
            raise ProviderError(f"{name}: cannot build the request: {exc}", provider=name, kind="bad_request") from exc
        turn = _Turn()
        chunks: Any = None
        try:
            chunks = await client.aio.models.generate_content_stream(
                model=request.model, contents=contents, config=config
            )
            async for chunk in chunks:
                turn.started = True
                for event in turn.absorb(chunk):
                    yield event
        except (TimeoutError, errors.APIError, httpx2.HTTPError, OSError, ValueError) as exc:
            raise self._error(exc, retried=not turn.started) from exc
        finally:
            if chunks is not None:  # a consumer that stops early (cancel) must free the connection now
                await chunks.aclose()
        if turn.blocked:
            raise ProviderError(f"{name}: prompt blocked by Gemini ({turn.blocked})", provider=name, kind="bad_request")
        if turn.finish is None:
            raise ProviderError(f"{name}: stream ended before the final chunk", provider=name, kind="stream",
                                retryable=True)
        yield turn.normalized_usage()
        message = AssistantMessage(text="".join(turn.text), tool_calls=turn.calls, reasoning="".join(turn.reasoning),
                                   provider=self.kind, model=request.model, replay=turn.replay)
        yield Finished(message, turn.stop_reason())

    def _error(self, exc: BaseException, retried: bool) -> ProviderError:
        """Map SDK / transport exceptions to a ProviderError a user can read.

        ``retried`` says whether the SDK's retry options applied (only to opening the stream).
        """
        name = self.settings.name
        retries = max(0, self.settings.max_retries) if retried else 0
        if isinstance(exc, errors.APIError):
            code = exc.code
            kind = STATUS_KINDS.get(code, "server" if code >= 500 else "bad_request")
            retryable = code in RETRYABLE or code >= 500
            what = {"rate_limit": "rate limited", "overloaded": "overloaded", "auth": "authentication failed",
                    "timeout": "request timed out", "bad_request": "request rejected"}.get(kind, "server error")
            after = f" after {retries} retries" if retries and code in SDK_RETRIED else ""
            msg = f"{name}: {what} ({code}){after}: {exc.message or exc.status or ''}"
            return ProviderError(self._scrub(msg), provider=name, status=code, retryable=retryable, kind=kind)
        after = f" after {retries} retries" if retries else ""
        if isinstance(exc, (httpx2.TimeoutException, asyncio.TimeoutError)):
            return ProviderError(f"{name}: timed out after {self.settings.timeout:g}s{after}", provider=name,
                                 retryable=True, kind="timeout")
        if isinstance(exc, (httpx2.ConnectError, ConnectionRefusedError)):
            return ProviderError(self._scrub(f"{name}: cannot connect{after}: {exc}"), provider=name,
                                 retryable=True, kind="connection")
        return ProviderError(self._scrub(f"{name}: stream broken: {type(exc).__name__}: {exc}"), provider=name,
                             retryable=True, kind="stream")

    def _scrub(self, text: str) -> str:
        key = self.settings.resolved_key()
        return text.replace(key, "***") if key else text
