"""The xAI adapter against the real gRPC API (run with ``-m live`` and XAI_API_KEY set).

Uses a cheap reasoning model (``XAI_LIVE_MODEL``, default grok-4-fast-reasoning). Grok-4 models
reason always and reject ``reasoning_effort``, so the effort is only sent when ``XAI_LIVE_EFFORT`` is
set (for models that take it, e.g. grok-3-mini or grok-4.5+). The tool-call scenario also proves the
replay: the second request re-sends the assistant message with its encrypted reasoning.
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
from jupyterlab_ide_agent.providers.xai import XAIProvider

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("XAI_API_KEY"), reason="XAI_API_KEY is not set"),
]

MODEL = os.environ.get("XAI_LIVE_MODEL", "grok-4-fast-reasoning")
EFFORT = os.environ.get("XAI_LIVE_EFFORT")
WEATHER = ToolSpec("get_weather", "Current weather of a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture
async def provider() -> AsyncIterator[XAIProvider]:
    p = XAIProvider(ProviderSettings("xai", "xai", api_key_env="XAI_API_KEY", timeout=180, max_retries=2))
    yield p
    await p.aclose()


async def run(provider: XAIProvider, messages: list[Any], **kw: Any) -> list[Any]:
    reasoning = ReasoningOptions(effort=EFFORT) if EFFORT else None
    req = ProviderRequest(model=MODEL, system="Answer briefly.", messages=messages, max_output_tokens=4000,
                          reasoning=reasoning, **kw)
    events = [e async for e in provider.stream(req)]
    assert isinstance(events[-1], Finished)
    return events


async def test_live_streamed_text(provider: XAIProvider) -> None:
    events = await run(provider, [UserMessage("Say the word 'pineapple' and nothing else.")])
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "pineapple" in text.lower() and events[-1].message.text == text
    assert events[-1].stop_reason == "stop"


async def test_live_reasoning(provider: XAIProvider) -> None:
    events = await run(provider, [UserMessage("Is 221 prime? Answer yes or no.")])
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.input_tokens > 0
    assert usage.reasoning_tokens > 0 and usage.output_tokens > usage.reasoning_tokens
    message = events[-1].message
    visible = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert visible == message.reasoning
    replayed = message.replay[0]["message"]
    assert message.reasoning or replayed.get("encrypted_content")  # grok-4 shows none, seals it instead


async def test_live_tool_call_and_replay(provider: XAIProvider) -> None:
    history: list[Any] = [UserMessage("What is the weather in Paris? Use the tool.")]
    events = await run(provider, history, tools=[WEATHER])
    calls = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert calls and calls[0].name == "get_weather" and "paris" in calls[0].arguments["city"].lower()
    assert events[-1].stop_reason == "tool_calls"
    history.append(events[-1].message)
    history += [ToolResultMessage(c.call_id, c.name, "Sunny, 21 C") for c in calls]
    events = await run(provider, history, tools=[WEATHER])
    assert "21" in events[-1].message.text
