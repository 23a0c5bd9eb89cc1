"""Counting the tokens of a prompt before it is sent.

Why not just a tokenizer: the four providers use four tokenizers and only OpenAI's (``tiktoken``) is
available offline, and even tiktoken downloads its encoding files on first use, which fails without a
network (and must never stall the server). So the count is built in two layers:

1. :class:`TokenCounter` counts one prompt (system + messages + tool specs). For OpenAI models it uses
   tiktoken *only if* the package is installed and the encoding file is already in its local cache;
   the load runs with tiktoken's downloader replaced by one that raises, so it cannot reach the network
   (see :func:`cached_tiktoken_encoding`). Otherwise it uses a documented estimate: ASCII text at
   ``chars_per_token`` (3.5: English prose is ~4-4.5 characters per token in current tokenizers, code
   and JSON ~3; erring toward over-counting makes us compact a little early rather than overflow),
   every non-ASCII character as one token (CJK, emoji), plus a small fixed overhead per message, per
   tool call and per tool spec
   for the role/format tokens the APIs add, and a fixed 1,600 per image (the base64 is not text the
   model reads; providers bill images by size). Replay items (encrypted reasoning, signatures) are not
   counted: providers bill them as the reasoning they stand for, or drop them from older turns.
2. :class:`PromptMeter` calibrates that count with the truth: the provider reports ``input_tokens`` of
   every call. The next prompt is the last one plus what was appended since, so its size is the
   reported number plus the estimate of the new messages scaled by the observed ratio (reported /
   estimated). A report that disagrees with the estimate by more than 2x in either direction (a local
   server that reports 0, a proxy that reports nothing useful) is ignored rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from typing import Any

from ..agent.messages import AssistantMessage, Message, ToolResultMessage, UserMessage
from ..providers.base import ToolSpec

DEFAULT_CHARS_PER_TOKEN = 3.5
MESSAGE_OVERHEAD = 4  # role and separators
TOOL_CALL_OVERHEAD = 8  # id, type and name framing of one call
TOOL_SPEC_OVERHEAD = 8
PROMPT_OVERHEAD = 3  # priming of the reply
#: one image in a tool result: Claude bills about width x height / 750 (~1,600 at its ~1.15 MP
#: resize cap), OpenAI 765 for a high-detail 1024 px square, Gemini 258 per tile: take the largest
IMAGE_TOKENS = 1600

#: context windows (input + output) by model-name prefix; the longest matching prefix wins
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 400_000, "gpt-4.1": 1_047_576, "gpt-4o": 128_000, "o3": 200_000, "o4-mini": 200_000,
    "claude": 200_000, "gemini-2.5": 1_048_576, "grok-4": 256_000, "grok-4-fast": 2_000_000,
}

_ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
_encodings: dict[str, Any] = {}
_encodings_lock = threading.Lock()


def context_window(model: str) -> int | None:
    """The context window of a model name (without the provider prefix), or None if unknown."""
    best = max((p for p in CONTEXT_WINDOWS if model.startswith(p)), key=len, default=None)
    return CONTEXT_WINDOWS[best] if best else None


def encoding_for_model(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model name, or None when tiktoken is not its tokenizer."""
    if model.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "gpt-oss")):
        return "o200k_base"
    if model.startswith(("gpt-4", "gpt-3.5")):
        return "cl100k_base"
    return None


def tiktoken_cache_candidates(url: str) -> list[str]:
    """Where tiktoken versions look for a cached file: TIKTOKEN_CACHE_DIR, DATA_GYM_CACHE_DIR, the
    user cache (newer releases) and the temp dir (older releases), each under sha1(url)."""
    key = hashlib.sha1(url.encode()).hexdigest()
    dirs = [os.environ.get("TIKTOKEN_CACHE_DIR"), os.environ.get("DATA_GYM_CACHE_DIR"),
            os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tiktoken"),
            os.path.join(tempfile.gettempdir(), "data-gym-cache")]
    return [os.path.join(d, key) for d in dirs if d]


def cached_tiktoken_encoding(name: str) -> Any | None:
    """A tiktoken ``Encoding`` if tiktoken is installed and ``name`` is cached locally, else None.

    The load never touches the network: we only try when a cache file exists, and while tiktoken
    loads, its ``read_file`` (the one function that downloads) is replaced by one that raises, so a
    stale or mismatching cache entry fails fast instead of fetching.
    """
    with _encodings_lock:
        if name in _encodings:
            return _encodings[name]
        _encodings[name] = None
        url = _ENCODING_URLS.get(name)
        if url is None or not any(os.path.isfile(p) for p in tiktoken_cache_candidates(url)):
            return None
        try:
            import tiktoken
            import tiktoken.load as tiktoken_load
        except ImportError:
            return None

        def offline(blobpath: str) -> bytes:
            raise OSError(f"offline: not downloading {blobpath}")

        original = tiktoken_load.read_file
        tiktoken_load.read_file = offline
        try:
            _encodings[name] = tiktoken.get_encoding(name)
        except Exception:  # noqa: BLE001 - any failure means: use the estimate
            _encodings[name] = None
        finally:
            tiktoken_load.read_file = original
        return _encodings[name]


def estimate_text_tokens(text: str, chars_per_token: float = DEFAULT_CHARS_PER_TOKEN) -> int:
    """ASCII characters at ``chars_per_token``, each other character as one token."""
    if not text:
        return 0
    if text.isascii():
        return math.ceil(len(text) / chars_per_token)
    ascii_chars = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / chars_per_token) + (len(text) - ascii_chars)


class TokenCounter:
    """Counts the tokens of prompts for one model (tiktoken when usable offline, else the estimate).

    Per-message counts are cached by object identity: history messages are not changed after they
    are appended, and a long session recounts the same hundreds of messages before every call.
    """

    def __init__(self, model: str | None = None, chars_per_token: float = DEFAULT_CHARS_PER_TOKEN) -> None:
        self.chars_per_token = chars_per_token
        name = encoding_for_model(model.split(":", 1)[-1]) if model else None
        self.encoding = cached_tiktoken_encoding(name) if name else None
        self.method = f"tiktoken:{name}" if self.encoding is not None else f"estimate:chars/{chars_per_token:g}"
        self._cache: dict[int, tuple[Message, int]] = {}

    def text(self, text: str) -> int:
        if not text:
            return 0
        if self.encoding is not None:
            return len(self.encoding.encode(text, disallowed_special=()))
        return estimate_text_tokens(text, self.chars_per_token)

    def message(self, message: Message) -> int:
        hit = self._cache.get(id(message))
        if hit is not None and hit[0] is message:
            return hit[1]
        n = MESSAGE_OVERHEAD + IMAGE_TOKENS * len(getattr(message, "images", None) or ())
        if isinstance(message, UserMessage):
            n += self.text(message.rendered())
        elif isinstance(message, ToolResultMessage):
            n += self.text(message.content) + self.text(message.name) + TOOL_CALL_OVERHEAD
        elif isinstance(message, AssistantMessage):
            n += self.text(message.text) + self.text(message.reasoning)
            for call in message.tool_calls:
                n += TOOL_CALL_OVERHEAD + self.text(call.name) + self.text(json.dumps(call.arguments))
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[id(message)] = (message, n)
        return n

    def messages(self, messages: Sequence[Message]) -> int:
        return sum(self.message(m) for m in messages)

    def tools(self, tools: Sequence[ToolSpec]) -> int:
        return sum(
            TOOL_SPEC_OVERHEAD + self.text(t.name) + self.text(t.description)
            + self.text(json.dumps(t.parameters, separators=(",", ":")))
            for t in tools
        )

    def fixed(self, system: str, tools: Sequence[ToolSpec]) -> int:
        """The part of every prompt that is not history: system prompt, tool specs, reply priming."""
        return self.text(system) + MESSAGE_OVERHEAD + self.tools(tools) + PROMPT_OVERHEAD

    def prompt(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        return self.fixed(system, tools) + self.messages(messages)


def calibrated_prompt_tokens(counter: TokenCounter, reported_input_tokens: int,
                             new_messages: Sequence[Message], ratio: float = 1.0) -> int:
    """The next prompt's size: the last reported prompt plus the (scaled) estimate of what was added."""
    return reported_input_tokens + math.ceil(counter.messages(new_messages) * ratio)


class PromptMeter:
    """Remembers what the last prompt was and how far the estimate was from the provider's report.

    Call :meth:`sent` with the exact history of each request (the compactor does, right before the
    loop sends it) and pass the reported ``input_tokens`` of that request to the next :meth:`measure`.
    """

    MIN_RATIO, MAX_RATIO = 0.5, 2.0

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self.ratio = 1.0  # reported / estimated, from the last trusted report
        self._sent_len = 0
        self._sent_last: Message | None = None
        self._sent_estimate = 0

    def sent(self, history: Sequence[Message], system: str, tools: Sequence[ToolSpec]) -> None:
        self._sent_len = len(history)
        self._sent_last = history[-1] if history else None
        self._sent_estimate = self.counter.prompt(system, history, tools)

    def _covers(self, history: Sequence[Message]) -> bool:
        n = self._sent_len
        return 0 < n <= len(history) and history[n - 1] is self._sent_last

    def measure(self, history: Sequence[Message], system: str, tools: Sequence[ToolSpec],
                reported_input_tokens: int | None = None) -> int:
        """Tokens of the prompt ``system + history + tools``, calibrated when a report fits it."""
        if reported_input_tokens and self._sent_estimate and self._covers(history):
            ratio = reported_input_tokens / self._sent_estimate
            if self.MIN_RATIO <= ratio <= self.MAX_RATIO:
                self.ratio = ratio
                return calibrated_prompt_tokens(self.counter, reported_input_tokens,
                                                history[self._sent_len:], ratio)
        return self.scaled(self.counter.prompt(system, history, tools))

    def scaled(self, estimate: int) -> int:
        return math.ceil(estimate * self.ratio)
