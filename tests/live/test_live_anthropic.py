"""The Anthropic Messages adapter against the real API (run with ``-m live`` and ANTHROPIC_API_KEY set).

Uses a cheap model with extended thinking (``ANTHROPIC_LIVE_MODEL``, default claude-haiku-4-5). The
tool-call scenario also proves the replay: with thinking on, the API rejects the continuation unless
the assistant turn comes back with its signed thinking block first.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from jupyterlab_ide_agent.agent.messages import ToolResultMessage, UserMessage
from jupyterlab_ide_agent.providers.anthropic_messages import AnthropicProvider
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

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="ANTHROPIC_API_KEY is not set"),
]

MODEL = os.environ.get("ANTHROPIC_LIVE_MODEL", "claude-haiku-4-5")
THINKING = ReasoningOptions(budget_tokens=1024)
WEATHER = ToolSpec("get_weather", "Current weather of a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture
async def provider() -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(ProviderSettings("anthropic", "anthropic", api_key_env="ANTHROPIC_API_KEY",
                                           timeout=120, max_retries=2))
    yield p
    await p.aclose()


async def run(provider: AnthropicProvider, messages: list[Any], **kw: Any) -> list[Any]:
    req = ProviderRequest(model=MODEL, system="Answer briefly.", messages=messages, **kw)
    events = [e async for e in provider.stream(req)]
    assert isinstance(events[-1], Finished)
    return events


async def test_live_streamed_text(provider: AnthropicProvider) -> None:
    events = await run(provider, [UserMessage("Say the word 'pineapple' and nothing else.")], max_output_tokens=50)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "pineapple" in text.lower() and events[-1].message.text == text
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.input_tokens > 0 and usage.output_tokens > 0


async def test_live_reasoning(provider: AnthropicProvider) -> None:
    events = await run(provider, [UserMessage("Is 221 prime? Answer yes or no.")], reasoning=THINKING)
    thoughts = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert thoughts.strip()
    replay = events[-1].message.replay
    assert replay[0]["type"] in ("thinking", "redacted_thinking")
    assert any(b["type"] == "thinking" and b["signature"] for b in replay)


async def test_live_tool_call_and_replay(provider: AnthropicProvider) -> None:
    history: list[Any] = [UserMessage("What is the weather in Paris? Use the tool.")]
    events = await run(provider, history, tools=[WEATHER], reasoning=THINKING)
    calls = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert calls and calls[0].name == "get_weather" and "paris" in calls[0].arguments["city"].lower()
    assert events[-1].stop_reason == "tool_calls"
    history.append(events[-1].message)
    history += [ToolResultMessage(c.call_id, c.name, "Sunny, 21 C") for c in calls]
    events = await run(provider, history, tools=[WEATHER], reasoning=THINKING)
    assert "21" in events[-1].message.text
