"""The OpenAI Responses adapter against the real API (run with ``-m live`` and OPENAI_API_KEY set).

Uses a cheap reasoning model (``OPENAI_LIVE_MODEL``, default gpt-5-nano). The tool-call scenario also
proves the stateless replay: the second request carries the encrypted reasoning item back with
``store=False``, which the API rejects if the item is incomplete.
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
    ReasoningOptions,
    TextDelta,
    ToolCallRequested,
    ToolSpec,
    Usage,
)
from jupyterlab_ide_agent.providers.openai_responses import OpenAIResponsesProvider

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="OPENAI_API_KEY is not set"),
]

MODEL = os.environ.get("OPENAI_LIVE_MODEL", "gpt-5-nano")
WEATHER = ToolSpec("get_weather", "Current weather of a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture
async def provider() -> AsyncIterator[OpenAIResponsesProvider]:
    p = OpenAIResponsesProvider(ProviderSettings("openai", "openai", api_key_env="OPENAI_API_KEY",
                                                 timeout=120, max_retries=2))
    yield p
    await p.aclose()


async def run(provider: OpenAIResponsesProvider, messages: list[Any], **kw: Any) -> list[Any]:
    req = ProviderRequest(model=MODEL, system="Answer briefly.", messages=messages, max_output_tokens=2000, **kw)
    events = [e async for e in provider.stream(req)]
    assert isinstance(events[-1], Finished)
    return events


async def test_live_streamed_text(provider: OpenAIResponsesProvider) -> None:
    events = await run(provider, [UserMessage("Say the word 'pineapple' and nothing else.")],
                       reasoning=ReasoningOptions(effort="minimal", summary=False))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "pineapple" in text.lower() and events[-1].message.text == text


async def test_live_reasoning(provider: OpenAIResponsesProvider) -> None:
    events = await run(provider, [UserMessage("Is 221 prime? Answer yes or no.")],
                       reasoning=ReasoningOptions(effort="low"))
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.reasoning_tokens > 0 and usage.output_tokens >= usage.reasoning_tokens
    replay = events[-1].message.replay
    assert any(item["type"] == "reasoning" and item.get("encrypted_content") for item in replay)


async def test_live_tool_call_and_replay(provider: OpenAIResponsesProvider) -> None:
    history: list[Any] = [UserMessage("What is the weather in Paris? Use the tool.")]
    opts = ReasoningOptions(effort="low")
    events = await run(provider, history, tools=[WEATHER], reasoning=opts)
    calls = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert calls and calls[0].name == "get_weather" and "paris" in calls[0].arguments["city"].lower()
    history.append(events[-1].message)
    history += [ToolResultMessage(c.call_id, c.name, "Sunny, 21 C") for c in calls]
    events = await run(provider, history, tools=[WEATHER], reasoning=opts)
    assert "21" in events[-1].message.text
