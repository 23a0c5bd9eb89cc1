"""Every provider adapter against its real API (run with ``-m live``; a provider's cases skip without its key).

The scenarios are written once and run for each row of ``PROVIDERS``; a row holds all that differs
between providers: how the adapter is built, the model (cheap by default, overridable per provider),
each scenario's request options and the extra checks only that provider can make.

* streamed text: the answer arrives as text deltas that add up to the final message's text;
* reasoning: the reasoning is counted, streamed or sealed, and kept on the message for replay (not for
  Chat Completions, which returns no reasoning);
* tool call and replay: a tool call is assembled from the stream and its result goes back with the
  assistant turn. The continuation is what proves each adapter's replay: OpenAI Responses re-sends the
  encrypted reasoning item with ``store=False`` (rejected if incomplete), Anthropic the signed thinking
  block first (rejected without it when thinking is on), Gemini the parts with their thought signatures
  (required by Gemini 3 for a function-calling continuation), xAI the message with its encrypted
  reasoning.

Model variables: ``OPENAI_LIVE_MODEL``, ``OPENAI_LIVE_CHAT_MODEL``, ``ANTHROPIC_LIVE_MODEL``,
``GEMINI_LIVE_MODEL``, ``XAI_LIVE_MODEL``; ``XAI_LIVE_EFFORT`` sends a reasoning effort to xAI, which is
off by default because Grok-4 models reason always and reject ``reasoning_effort`` (set it for models
that take it, e.g. grok-3-mini or grok-4.5+).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from jupyterlab_ide_agent.agent.messages import ToolResultMessage, UserMessage
from jupyterlab_ide_agent.providers.anthropic_messages import AnthropicProvider
from jupyterlab_ide_agent.providers.base import (
    Finished,
    Provider,
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
from jupyterlab_ide_agent.providers.openai_chat import OpenAIChatProvider
from jupyterlab_ide_agent.providers.openai_responses import OpenAIResponsesProvider
from jupyterlab_ide_agent.providers.registry import ProviderPool, build_settings
from jupyterlab_ide_agent.providers.xai import XAIProvider

pytestmark = pytest.mark.live

TEXT_PROMPT = "Say the word 'pineapple' and nothing else."
REASONING_PROMPT = "Is 221 prime? Answer yes or no."
TOOL_PROMPT = "What is the weather in Paris? Use the tool."
WEATHER = ToolSpec("get_weather", "Current weather of a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})

#: an extra assertion on one scenario's events, for the providers whose API reports that detail
Check = Callable[[list[Any]], None]


def usage_of(events: list[Any]) -> Usage:
    (usage,) = [e for e in events if isinstance(e, Usage)]
    return usage


def tokens_counted(events: list[Any]) -> None:
    usage = usage_of(events)
    assert usage.input_tokens > 0 and usage.output_tokens > 0


def stopped_normally(events: list[Any]) -> None:
    assert events[-1].stop_reason == "stop"


def input_tokens_counted(events: list[Any]) -> None:
    assert usage_of(events).input_tokens > 0


def reasoning_tokens_counted(events: list[Any]) -> None:
    usage = usage_of(events)
    assert usage.reasoning_tokens > 0 and usage.output_tokens >= usage.reasoning_tokens


def reasoning_tokens_plus_answer(events: list[Any]) -> None:
    """Output counts the reasoning and, strictly on top of it, the visible answer."""
    usage = usage_of(events)
    assert usage.reasoning_tokens > 0 and usage.output_tokens > usage.reasoning_tokens


def encrypted_reasoning_item(events: list[Any]) -> None:
    replay = events[-1].message.replay
    assert any(item["type"] == "reasoning" and item.get("encrypted_content") for item in replay)


def thinking_streamed(events: list[Any]) -> None:
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)).strip()


def signed_thinking_first(events: list[Any]) -> None:
    replay = events[-1].message.replay
    assert replay[0]["type"] in ("thinking", "redacted_thinking")
    assert any(b["type"] == "thinking" and b["signature"] for b in replay)


def reasoning_streamed(events: list[Any]) -> None:
    assert any(isinstance(e, ReasoningDelta) for e in events)


def reasoning_on_message(events: list[Any]) -> None:
    assert events[-1].message.reasoning


def streamed_reasoning_is_message_reasoning(events: list[Any]) -> None:
    visible = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert visible == events[-1].message.reasoning


def reasoning_shown_or_sealed(events: list[Any]) -> None:
    message = events[-1].message
    assert message.reasoning or message.replay[0]["message"].get("encrypted_content")  # grok-4 seals it


@dataclass(frozen=True)
class Scenario:
    """One scenario's request options for one provider, and the checks only that provider makes."""

    reasoning: ReasoningOptions | None = None
    max_output_tokens: int | None = None
    checks: tuple[Check, ...] = ()
    prompt: str | None = None  # None: the scenario's common prompt


@dataclass(frozen=True)
class LiveProvider:
    id: str
    key_env: str
    settings: ProviderSettings
    adapter: type[Provider]  # the class the settings must resolve to
    model: str
    text: Scenario
    tool: Scenario
    reasoning: Scenario | None = None  # None: the API returns no reasoning to check


THINKING = ReasoningOptions(budget_tokens=1024)
XAI_EFFORT = os.environ.get("XAI_LIVE_EFFORT")
XAI_REASONING = ReasoningOptions(effort=XAI_EFFORT) if XAI_EFFORT else None

PROVIDERS = [
    LiveProvider(
        "openai", "OPENAI_API_KEY",
        ProviderSettings("openai", "openai", api_key_env="OPENAI_API_KEY", timeout=120, max_retries=2),
        OpenAIResponsesProvider, os.environ.get("OPENAI_LIVE_MODEL", "gpt-5-nano"),
        text=Scenario(ReasoningOptions(effort="minimal", summary=False), 2000),
        reasoning=Scenario(ReasoningOptions(effort="low"), 2000,
                           (reasoning_tokens_counted, encrypted_reasoning_item)),
        tool=Scenario(ReasoningOptions(effort="low"), 2000),
    ),
    LiveProvider(
        "openai_chat", "OPENAI_API_KEY",
        # built from config the way a user writes it, so the ``api`` option itself is exercised
        build_settings({"chat": {"kind": "openai", "api": "chat_completions",
                                 "api_key_env": "OPENAI_API_KEY", "timeout": 120}})["chat"],
        OpenAIChatProvider, os.environ.get("OPENAI_LIVE_CHAT_MODEL", "gpt-5-nano"),
        # usage comes through ``stream_options.include_usage``, the call from ``tool_calls`` deltas
        text=Scenario(ReasoningOptions(effort="low"), 2000, (tokens_counted, stopped_normally)),
        tool=Scenario(ReasoningOptions(effort="low"), 2000),
    ),
    LiveProvider(
        "anthropic", "ANTHROPIC_API_KEY",
        ProviderSettings("anthropic", "anthropic", api_key_env="ANTHROPIC_API_KEY", timeout=120, max_retries=2),
        AnthropicProvider, os.environ.get("ANTHROPIC_LIVE_MODEL", "claude-haiku-4-5"),
        text=Scenario(None, 50, (tokens_counted,)),
        reasoning=Scenario(THINKING, None, (thinking_streamed, signed_thinking_first)),
        tool=Scenario(THINKING, None),
    ),
    LiveProvider(
        "gemini", "GEMINI_API_KEY",
        ProviderSettings("gemini", "gemini", api_key_env="GEMINI_API_KEY", timeout=120, max_retries=2),
        GeminiProvider, os.environ.get("GEMINI_LIVE_MODEL", "gemini-2.5-flash"),
        text=Scenario(None, 4000),
        reasoning=Scenario(THINKING, 4000, (reasoning_tokens_plus_answer, reasoning_streamed, reasoning_on_message),
                           prompt="Is 221 prime? Think it through, then answer yes or no."),
        tool=Scenario(THINKING, 4000),
    ),
    LiveProvider(
        "xai", "XAI_API_KEY",
        ProviderSettings("xai", "xai", api_key_env="XAI_API_KEY", timeout=180, max_retries=2),
        XAIProvider, os.environ.get("XAI_LIVE_MODEL", "grok-4-fast-reasoning"),
        text=Scenario(XAI_REASONING, 4000, (stopped_normally,)),
        reasoning=Scenario(XAI_REASONING, 4000, (input_tokens_counted, reasoning_tokens_plus_answer,
                                                 streamed_reasoning_is_message_reasoning, reasoning_shown_or_sealed)),
        tool=Scenario(XAI_REASONING, 4000),
    ),
]


def cases(rows: Iterable[LiveProvider]) -> list[Any]:
    """One case per row, skipped with the variable to set when its key is missing."""
    return [pytest.param(row, id=row.id, marks=pytest.mark.skipif(not os.environ.get(row.key_env),
                                                                   reason=f"set {row.key_env} to run"))
            for row in rows]


@pytest.fixture
async def adapter(live: LiveProvider) -> AsyncIterator[Provider]:
    """The adapter the row's settings resolve to, made and closed the way the server does it."""
    pool = ProviderPool({live.settings.name: live.settings})
    provider = pool.get(live.settings.name)
    assert isinstance(provider, live.adapter)
    yield provider
    await pool.aclose()


async def run(provider: Provider, live: LiveProvider, scenario: Scenario, messages: list[Any],
              tools: list[ToolSpec] | None = None) -> list[Any]:
    req = ProviderRequest(model=live.model, system="Answer briefly.", messages=messages, tools=tools or [],
                          max_output_tokens=scenario.max_output_tokens, reasoning=scenario.reasoning)
    events = [e async for e in provider.stream(req)]
    assert isinstance(events[-1], Finished)
    return events


@pytest.mark.parametrize("live", cases(PROVIDERS))
async def test_live_streamed_text(adapter: Provider, live: LiveProvider) -> None:
    events = await run(adapter, live, live.text, [UserMessage(live.text.prompt or TEXT_PROMPT)])
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "pineapple" in text.lower() and events[-1].message.text == text
    for check in live.text.checks:
        check(events)


@pytest.mark.parametrize("live", cases(row for row in PROVIDERS if row.reasoning))
async def test_live_reasoning(adapter: Provider, live: LiveProvider) -> None:
    scenario = live.reasoning
    assert scenario is not None and scenario.checks, "a reasoning row names what it checks"
    events = await run(adapter, live, scenario, [UserMessage(scenario.prompt or REASONING_PROMPT)])
    for check in scenario.checks:
        check(events)


@pytest.mark.parametrize("live", cases(PROVIDERS))
async def test_live_tool_call_and_replay(adapter: Provider, live: LiveProvider) -> None:
    history: list[Any] = [UserMessage(live.tool.prompt or TOOL_PROMPT)]
    events = await run(adapter, live, live.tool, history, [WEATHER])
    calls = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert calls and calls[0].name == "get_weather" and "paris" in calls[0].arguments["city"].lower()
    assert events[-1].stop_reason == "tool_calls"
    history.append(events[-1].message)
    history += [ToolResultMessage(c.call_id, c.name, "Sunny, 21 C") for c in calls]
    events = await run(adapter, live, live.tool, history, [WEATHER])
    assert "21" in events[-1].message.text
    for check in live.tool.checks:
        check(events)
