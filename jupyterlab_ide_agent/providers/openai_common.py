"""What the two OpenAI adapters share: one ``AsyncOpenAI`` client per endpoint and one error mapping.

The Responses adapter (``openai_responses.py``) and the Chat Completions adapter (``openai_chat.py``)
differ only in the wire format of a turn. The client (key, base URL, the SDK's own retries and
timeout) and the way the SDK's exceptions become a :class:`ProviderError` are the same, so both
adapters inherit them from :class:`OpenAIClientProvider` and a fix lands in both.
"""

from __future__ import annotations

import re

import openai
from openai import AsyncOpenAI

from .base import Provider, ProviderError, ProviderSettings

# Mid-stream error codes that retrying cannot fix; any other mid-stream failure is treated as a server fault.
_BAD_REQUEST_CODES = {"context_length_exceeded", "invalid_prompt", "invalid_request_error", "content_filter"}
_STATUS_KINDS = {400: "bad_request", 401: "auth", 403: "auth", 404: "bad_request", 408: "timeout", 409: "server",
                 422: "bad_request", 429: "rate_limit", 503: "overloaded", 529: "overloaded"}
_KIND_WORDS = {"rate_limit": "rate limited", "overloaded": "overloaded", "server": "server error",
               "timeout": "timed out", "auth": "authentication failed", "bad_request": "request rejected",
               "connection": "cannot connect", "stream": "stream broken"}
#: image types both OpenAI APIs read (input_image / image_url); others are named in the text instead
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}

#: How servers say "this model cannot call tools": Ollama ("<model> does not support tools"), OpenAI
#: ("tools is not supported with this model"), vLLM without a tool parser ("\"auto\" tool choice requires
#: --enable-auto-tool-choice ..."), llama.cpp without templates ("tools param requires --jinja flag").
_NO_TOOLS = re.compile(
    r"does not support (tools|tool|function)"
    r"|(tools?|tool calls?|tool calling|tool use|function calling|functions)( param| parameter)?"
    r" (is |are )?(not supported|unsupported)"
    r"|enable-auto-tool-choice|tools param requires",
    re.IGNORECASE,
)
NO_TOOLS_HINT = (
    "The agent's main model must support tool calling: pick a model that does (Ollama: one tagged 'tools'; "
    "llama.cpp: start llama-server with --jinja; vLLM: --enable-auto-tool-choice --tool-call-parser ...). "
    "A model without tools can still be an ensemble member or the summarizer, which send no tools."
)


def split_images(images: list[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """The images an OpenAI API reads, and a note naming the ones it would refuse (empty when none)."""
    shown = [i for i in images if i.get("mime") in IMAGE_TYPES and i.get("data")]
    dropped = sorted({str(i.get("mime")) for i in images if i not in shown})
    note = f"\n[not shown to you: {len(images) - len(shown)} image(s) of type {', '.join(dropped)}]" if dropped else ""
    return shown, note


def data_url(image: dict[str, str]) -> str:
    return f"data:{image['mime']};base64,{image['data']}"


class OpenAIClientProvider(Provider):
    """An adapter on one shared ``AsyncOpenAI`` client, with the SDK's errors mapped to ProviderError."""

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._client: AsyncOpenAI | None = None

    # --- client ----------------------------------------------------------------------------
    def _client_or_raise(self) -> AsyncOpenAI:
        if self._client is None:
            key = self.settings.resolved_key()
            base_url = self.settings.resolved_base_url()
            if not key and not base_url:
                message = self.settings.missing() or f"{self.settings.name}: no API key configured"
                raise ProviderError(message, provider=self.settings.name, kind="config")
            # Local OpenAI-compatible servers accept any key; an explicit dummy also stops the SDK from
            # reading OPENAI_API_KEY from the environment and sending it to a third-party server.
            self._client = AsyncOpenAI(api_key=key or "unused", base_url=base_url,
                                       timeout=self.settings.timeout, max_retries=self.settings.max_retries)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # --- errors ----------------------------------------------------------------------------
    def _fail(self, kind: str, detail: str, *, status: int | None = None, retryable: bool = False,
              retried: bool = False) -> ProviderError:
        """One ProviderError with a message a user can read, and never the key in it."""
        head = _KIND_WORDS.get(kind, kind) + (f" ({status})" if status else "")
        if retried and self.settings.max_retries:
            head += f" after {self.settings.max_retries} retries"
        message = f"{self.settings.name}: {head}: {detail}"
        key = self.settings.resolved_key()
        if key:
            message = message.replace(key, "***")
        return ProviderError(message, provider=self.settings.name, retryable=retryable, status=status, kind=kind)

    def _stream_error(self, detail: str) -> ProviderError:
        return self._fail("stream", detail, retryable=True)

    def _no_tools(self, detail: str, status: int | None) -> ProviderError:
        """Retrying or waiting cannot help a model that has no tool calling: say what to change."""
        return self._fail("bad_request", f"the model does not support tool calls ({detail}). {NO_TOOLS_HINT}",
                          status=status)

    def _error(self, err: openai.OpenAIError, *, mid_stream: bool) -> ProviderError:
        if isinstance(err, openai.APITimeoutError):
            return self._fail("timeout", f"no answer within {self.settings.timeout:g} s", retryable=True,
                              retried=not mid_stream)
        if isinstance(err, openai.APIConnectionError):
            if mid_stream:
                return self._stream_error(f"connection lost mid-stream ({err.__cause__ or err})")
            return self._fail("connection", str(err.__cause__ or err), retryable=True, retried=True)
        if isinstance(err, openai.APIStatusError):
            status = err.status_code
            body = err.body if isinstance(err.body, dict) else {}
            detail = str(body.get("message") or err.message)
            if _NO_TOOLS.search(detail):
                return self._no_tools(detail, status)
            retryable = status in (408, 409, 429) or status >= 500
            kind = _STATUS_KINDS.get(status, "server" if status >= 500 else "bad_request")
            return self._fail(kind, detail, status=status, retryable=retryable, retried=retryable)
        if isinstance(err, openai.APIError):  # an {"error": ...} payload inside the stream
            body = err.body if isinstance(err.body, dict) else {}
            if _NO_TOOLS.search(err.message):
                return self._no_tools(err.message, None)
            return self._coded_error(body.get("code") or body.get("type"), err.message)
        return self._stream_error(str(err))

    def _coded_error(self, code: str | int | None, message: str) -> ProviderError:
        code = str(code or "")
        detail = f"{message} [{code}]" if code else message
        if "rate_limit" in code:
            return self._fail("rate_limit", detail, retryable=True)
        if "overloaded" in code:
            return self._fail("overloaded", detail, retryable=True)
        if code in _BAD_REQUEST_CODES:
            return self._fail("bad_request", detail)
        if code.isdigit():  # vLLM and llama.cpp put the HTTP status in ``code``
            status = int(code)
            kind = _STATUS_KINDS.get(status, "server" if status >= 500 else "bad_request")
            retryable = status in (408, 409, 429) or status >= 500
            return self._fail(kind, message, status=status, retryable=retryable)
        return self._fail("server", detail, retryable=True)
