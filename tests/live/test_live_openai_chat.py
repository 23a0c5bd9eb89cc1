"""The Chat Completions adapter against OpenAI's real API (run with ``-m live`` and OPENAI_API_KEY set).

OpenAI serves Chat Completions too, so the adapter that local servers use is checked against the API
that defines the format: streamed text, usage through ``stream_options.include_usage``, a tool call
assembled from ``tool_calls`` deltas and its result sent back. ``OPENAI_LIVE_CHAT_MODEL`` picks the
model (default gpt-5-nano).
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
    ReasoningOptions,
    TextDelta,
    ToolCallRequested,
    ToolSpec,
    Usage,
)
from jupyterlab_ide_agent.providers.openai_chat import OpenAIChatProvider
from jupyterlab_ide_agent.providers.registry import ProviderPool, build_settings

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="OPENAI_API_KEY is not set"),
]

MODEL = os.environ.get("OPENAI_LIVE_CHAT_MODEL", "gpt-5-nano")
WEATHER = ToolSpec("get_weather", "Current weather of a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture
async def provider() -> AsyncIterator[OpenAIChatProvider]:
    """Built from config the way a user writes it, so the ``api`` option itself is exercised."""
    pool = ProviderPool(build_settings({"chat": {"kind": "openai", "api": "chat_completions",
                                                 "api_key_env": "OPENAI_API_KEY", "timeout": 120}}))
    adapter = pool.get("chat")
    assert isinstance(adapter, OpenAIChatProvider)
    yield adapter
    await pool.aclose()


async def run(provider: OpenAIChatProvider, messages: list[Any], **kw: Any) -> list[Any]:
    req = ProviderRequest(model=MODEL, system="Answer briefly.", messages=messages, max_output_tokens=2000,
                          reasoning=ReasoningOptions(effort="low"), **kw)
    events = [e async for e in provider.stream(req)]
    assert isinstance(events[-1], Finished)
    return events


async def test_live_streamed_text_and_usage(provider: OpenAIChatProvider) -> None:
    events = await run(provider, [UserMessage("Say the word 'pineapple' and nothing else.")])
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "pineapple" in text.lower() and events[-1].message.text == text
    (usage,) = [e for e in events if isinstance(e, Usage)]
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert events[-1].stop_reason == "stop"


async def test_live_tool_call_round_trip(provider: OpenAIChatProvider) -> None:
    history: list[Any] = [UserMessage("What is the weather in Paris? Use the tool.")]
    events = await run(provider, history, tools=[WEATHER])
    calls = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert calls and calls[0].name == "get_weather" and "paris" in calls[0].arguments["city"].lower()
    assert events[-1].stop_reason == "tool_calls"
    history.append(events[-1].message)
    history += [ToolResultMessage(c.call_id, c.name, "Sunny, 21 C") for c in calls]
    events = await run(provider, history, tools=[WEATHER])
    assert "21" in events[-1].message.text
