"""The one small streaming interface every provider adapter implements.

An adapter turns a :class:`ProviderRequest` (neutral history, tool specs, reasoning options) into its
SDK's call, and the SDK's stream into a closed set of :data:`ProviderEvent` values. Errors from the SDK
are mapped to :class:`ProviderError`, which says whether retrying could help; the SDKs' own retry and
timeout options do the retrying, never a loop of ours.

The stream always ends with exactly one :class:`Finished` carrying the assembled
:class:`AssistantMessage` (text, tool calls, replay items), so the loop never reassembles deltas.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ..agent.messages import AssistantMessage, Message, ToolCall


@dataclass
class ToolSpec:
    """A tool as every provider sees it: name, description, JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class ReasoningOptions:
    """Provider-neutral reasoning knobs; each adapter uses the ones its API has.

    ``effort`` (low/medium/high) drives OpenAI and xAI; ``budget_tokens`` drives Anthropic's extended
    thinking and Gemini's thinking budget (-1 = dynamic); ``summary`` asks for visible reasoning text.
    """

    effort: str | None = None
    budget_tokens: int | None = None
    summary: bool = True


@dataclass
class ProviderRequest:
    model: str
    system: str
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    max_output_tokens: int | None = None
    reasoning: ReasoningOptions | None = None
    temperature: float | None = None


@dataclass
class TextDelta:
    text: str


@dataclass
class ReasoningDelta:
    text: str


def parse_arguments(raw: str) -> dict[str, Any]:
    """Streamed tool-call arguments as a dict. Text that is not a JSON object is handed to the loop
    (and so to the model, which can correct itself) as ``{"_unparsed_arguments": raw}``, never raised."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {"_unparsed_arguments": raw}
    return value if isinstance(value, dict) else {"_unparsed_arguments": raw}


@dataclass
class ToolCallRequested:
    """A complete tool call (arguments parsed). Emitted as soon as the stream has all of it."""

    call: ToolCall


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass
class Finished:
    """``stop_reason`` is one of: stop, tool_calls, max_tokens, or the provider's own reason in
    lower case (content_filter, safety, max_context, ...) when none of those fits."""

    message: AssistantMessage
    stop_reason: str = "stop"


ProviderEvent = TextDelta | ReasoningDelta | ToolCallRequested | Usage | Finished


class ProviderError(Exception):
    """Any failure of a provider call, with what a user (and the loop) needs to know.

    ``retryable`` is True for rate limits, overload, 5xx, timeouts and dropped connections: the SDK
    already retried those as configured, so the loop reports them rather than retrying again.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool = False,
        status: int | None = None,
        kind: str = "error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.retryable = retryable
        self.status = status
        self.kind = kind  # rate_limit, overloaded, server, timeout, connection, auth, bad_request, stream, config

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "provider": self.provider,
            "retryable": self.retryable,
            "status": self.status,
            "kind": self.kind,
        }


@dataclass
class ProviderSettings:
    """How to reach one provider endpoint: which adapter, which key, which base URL.

    Keys are read from the environment variable named by ``api_key_env`` unless ``api_key`` is given
    in config; they never leave the server.
    """

    name: str
    kind: str  # openai | anthropic | gemini | xai
    #: the wire API, for kinds that speak more than one: openai -> responses (default) | chat_completions
    api: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    base_url: str | None = None
    base_url_env: str | None = None
    timeout: float = 600.0
    max_retries: int = 2
    options: dict[str, Any] = field(default_factory=dict)

    def resolved_key(self) -> str | None:
        """The key to send. A configured OpenAI-compatible ``base_url`` (Ollama, vLLM, llama.cpp)
        needs none, but the SDK insists on one, so those get a placeholder."""
        if self.api_key:
            return self.api_key
        if self.api_key_env and os.environ.get(self.api_key_env):
            return os.environ[self.api_key_env]
        if self.kind == "openai" and self.base_url:
            return "no-key-needed"
        return None

    def resolved_base_url(self) -> str | None:
        if self.base_url:
            return self.base_url
        if self.base_url_env:
            return os.environ.get(self.base_url_env) or None
        return None

    def missing(self) -> str | None:
        """What the user must set before this provider can be used, or None when it is ready.

        A base URL alone is enough for OpenAI-compatible local servers (Ollama, vLLM, llama.cpp),
        which accept any key.
        """
        if self.resolved_key():
            return None
        env = self.api_key_env or "an api_key"
        return f"{self.name}: set {env} (or c.IDEAgent.providers['{self.name}']['api_key'])"


class Provider(ABC):
    """One adapter instance per provider endpoint; it owns one SDK client and reuses it."""

    kind: str = ""

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings

    @abstractmethod
    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        """Stream one model turn. Raises :class:`ProviderError` on failure."""

    async def aclose(self) -> None:
        """Release the SDK client's connections.

        A no-op by default: a provider without a long-lived client has nothing to close, and
        subclasses that hold one override this. Not abstract, so such providers need no empty override.
        """
        return None
