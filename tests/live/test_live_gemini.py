"""The Gemini adapter against the real API (run with ``-m live`` and GEMINI_API_KEY set).

Uses a cheap thinking model (``GEMINI_LIVE_MODEL``, default gemini-2.5-flash). The tool-call scenario
also proves the replay: the second request sends the model's parts back with their thought
signatures, which Gemini 3 models require for a function-calling continuation.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from jupyterlab_ide_agent.agent.messages import ToolResultMessage, UserMessage
from jupyterlab_ide_agent.providers.base import (
    Finished,
    ProviderRequest,
    ProviderSettings,
    ReasoningDelta,
    ReasoningOptions,
    TextDelta,
    ToolCallRequested,
    ToolSpec,
    Usage,
)
from jupyterlab_ide_agent.providers.gemini import GeminiProvider

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("GEMINI_API_KEY"), reason="GEMINI_API_KEY is not set"),
]

MODEL = os.environ.get("GEMINI_LIVE_MODEL", "gemini-2.5-flash")
WEATHER = ToolSpec("get_weather", "Current weather of a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture
async def provider() -> AsyncIterator[GeminiProvider]:
    p = GeminiProvider(ProviderSettings("gemini", "gemini", api_key_env="GEMINI_API_KEY", timeout=120, max_retries=2))
    yield p
    await p.aclose()


async def run(provider: GeminiProvider, messages: list[Any], **kw: Any) -> list[Any]:
    req = ProviderRequest(model=MODEL, system="Answer briefly.", messages=messages, max_output_tokens=4000, **kw)
    events = [e async for e in provider.stream(req)]
    assert isinstance(events[-1], Finished)
    return events


async def test_live_streamed_text(provider: GeminiProvider) -> None:
    events = await run(provider, [UserMessage("Say the word 'pineapple' and nothing else.")])
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "pineapple" in text.lower() and events[-1].message.text == text


async def test_live_reasoning(provider: GeminiProvider) -> None:
    events = await run(provider, [UserMessage("Is 221 prime? Think it through, then answer yes or no.")],
                       reasoning=ReasoningOptions(budget_tokens=1024))
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.reasoning_tokens > 0 and usage.output_tokens > usage.reasoning_tokens
    assert any(isinstance(e, ReasoningDelta) for e in events)
    assert events[-1].message.reasoning


async def test_live_tool_call_and_replay(provider: GeminiProvider) -> None:
    history: list[Any] = [UserMessage("What is the weather in Paris? Use the tool.")]
    opts = ReasoningOptions(budget_tokens=1024)
    events = await run(provider, history, tools=[WEATHER], reasoning=opts)
    calls = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert calls and calls[0].name == "get_weather" and "paris" in calls[0].arguments["city"].lower()
    assert events[-1].stop_reason == "tool_use"
    history.append(events[-1].message)
    history += [ToolResultMessage(c.call_id, c.name, "Sunny, 21 C") for c in calls]
    events = await run(provider, history, tools=[WEATHER], reasoning=opts)
    assert "21" in events[-1].message.text
