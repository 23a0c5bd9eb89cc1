"""The Anthropic adapter against a wire-level fake, through the real ``anthropic`` SDK (nothing mocked)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from jupyterlab_ide_agent.agent.messages import AssistantMessage, ToolCall, ToolResultMessage, UserMessage
from jupyterlab_ide_agent.providers.anthropic_messages import AnthropicProvider, to_anthropic_messages
from jupyterlab_ide_agent.providers.base import (
    Finished,
    ProviderError,
    ProviderRequest,
    ReasoningDelta,
    ReasoningOptions,
    TextDelta,
    ToolCallRequested,
    ToolSpec,
    Usage,
)
from tests.fakes.anthropic import AnthropicTurn, FakeAnthropic
from tests.fakes.base import ScriptedTool, ScriptedTurn

MODEL = "claude-sonnet-4-5"
READ_FILE = ToolSpec(
    "read_file",
    "Read a file of the workspace.",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeAnthropic) -> FakeAnthropic:
    server.reset()
    return server


@pytest.fixture
async def provider(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(fake.settings())
    yield p
    await p.aclose()


def request(text: str = "hi", **kw: Any) -> ProviderRequest:
    return ProviderRequest(model=MODEL, system=kw.pop("system", "You are terse."), messages=[UserMessage(text)], **kw)


async def collect(provider: AnthropicProvider, req: ProviderRequest) -> list[Any]:
    return [event async for event in provider.stream(req)]


def finished(events: list[Any]) -> Finished:
    assert isinstance(events[-1], Finished)
    assert sum(isinstance(e, Finished) for e in events) == 1
    return events[-1]


async def failure(provider: AnthropicProvider, req: ProviderRequest | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await collect(provider, req or request())
    return info.value


async def test_streamed_text(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(ScriptedTurn(text="The answer is forty-two.", chunks=4))
    events = await collect(provider, request())
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 3
    done = finished(events)
    assert "".join(deltas) == done.message.text == "The answer is forty-two."
    assert done.stop_reason == "stop"
    assert done.message.provider == "anthropic" and done.message.model == MODEL
    assert done.message.replay == [{"type": "text", "text": "The answer is forty-two."}]
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["body"]["stream"] is True and sent["body"]["system"] == "You are terse."
    assert sent["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert "thinking" not in sent["body"]


async def test_thinking_surfaced_and_requested(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(ScriptedTurn(reasoning="Let me think about this carefully.", text="Done.", reasoning_tokens=7))
    req = request(reasoning=ReasoningOptions(budget_tokens=2000), temperature=0.2)
    events = await collect(provider, req)
    thoughts = [e.text for e in events if isinstance(e, ReasoningDelta)]
    assert "".join(thoughts) == "Let me think about this carefully."
    # reasoning streams before the text
    assert events.index(next(e for e in events if isinstance(e, ReasoningDelta))) < events.index(
        next(e for e in events if isinstance(e, TextDelta))
    )
    done = finished(events)
    assert done.message.reasoning == "Let me think about this carefully."
    thinking, text = done.message.replay
    assert thinking["type"] == "thinking" and thinking["thinking"] == "Let me think about this carefully."
    assert thinking["signature"]  # kept for the continuation
    assert text == {"type": "text", "text": "Done."}
    body = fake.requests[-1]["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000, "display": "summarized"}
    assert body["max_tokens"] > 2000
    assert "temperature" not in body  # refused by the API with thinking on


async def test_thinking_budget_and_max_tokens(provider: AnthropicProvider) -> None:
    small = provider.build_params(request(reasoning=ReasoningOptions(budget_tokens=100)))
    assert small["thinking"]["budget_tokens"] == 1024 and small["max_tokens"] > 1024
    roomy = provider.build_params(request(reasoning=ReasoningOptions(budget_tokens=4000), max_output_tokens=32000))
    assert roomy["max_tokens"] == 32000
    plain = provider.build_params(request(max_output_tokens=500, temperature=0.3))
    assert plain["max_tokens"] == 500 and plain["temperature"] == 0.3 and "thinking" not in plain
    assert "thinking" not in provider.build_params(request(reasoning=ReasoningOptions(effort="high")))


async def test_tool_call_parsed(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(ScriptedTurn(text="Reading it.", tool_calls=[ScriptedTool("read_file", {"path": "a.py", "n": [1, 2]})]))
    events = await collect(provider, request(tools=[READ_FILE]))
    calls = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert len(calls) == 1
    assert calls[0].name == "read_file" and calls[0].arguments == {"path": "a.py", "n": [1, 2]}
    assert calls[0].call_id.startswith("toolu_")
    done = finished(events)
    assert done.stop_reason == "tool_calls"
    assert done.message.tool_calls == calls
    # the call is announced before the usage and the final event
    assert events.index(next(e for e in events if isinstance(e, ToolCallRequested))) < events.index(done) - 1
    assert done.message.replay[-1] == {
        "type": "tool_use", "id": calls[0].call_id, "name": "read_file", "input": {"path": "a.py", "n": [1, 2]},
    }


async def test_unparsable_arguments_are_reported(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(AnthropicTurn(tool_calls=[ScriptedTool("read_file", {})], raw_arguments='{"path": "a.p'))
    events = await collect(provider, request(tools=[READ_FILE]))
    call = next(e.call for e in events if isinstance(e, ToolCallRequested))
    assert call.arguments == {"_unparsed_arguments": '{"path": "a.p'}


async def test_continuation_request_shape(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(
        ScriptedTurn(
            reasoning="Two files to read.",
            tool_calls=[
                ScriptedTool("read_file", {"path": "a.py"}, "toolu_a"),
                ScriptedTool("read_file", {"path": "b.py"}, "toolu_b"),
            ],
        ),
        ScriptedTurn(text="Both read."),
    )
    reasoning = ReasoningOptions(budget_tokens=2048)
    first = finished(await collect(provider, request("read a and b", tools=[READ_FILE], reasoning=reasoning)))
    history = [
        UserMessage("read a and b"),
        first.message,
        ToolResultMessage("toolu_a", "read_file", "print('a')"),
        ToolResultMessage("toolu_b", "read_file", "no such file", is_error=True),
    ]
    req = ProviderRequest(MODEL, "You are terse.", history, tools=[READ_FILE], reasoning=reasoning)
    second = finished(await collect(provider, req))
    assert second.message.text == "Both read."

    body = fake.requests[-1]["body"]
    assert body["system"] == "You are terse."
    assert body["tools"] == [
        {"name": "read_file", "description": READ_FILE.description, "input_schema": READ_FILE.parameters}
    ]
    assert body["thinking"]["type"] == "enabled"  # the replayed turn starts with signed thinking
    assert body["cache_control"] == {"type": "ephemeral"}
    user, assistant, results = body["messages"]
    assert user == {"role": "user", "content": [{"type": "text", "text": "read a and b"}]}
    assert assistant["role"] == "assistant"
    assert [b["type"] for b in assistant["content"]] == ["thinking", "tool_use", "tool_use"]
    assert assistant["content"][0]["signature"] == first.message.replay[0]["signature"]
    assert assistant["content"][1] == {
        "type": "tool_use", "id": "toolu_a", "name": "read_file", "input": {"path": "a.py"},
    }
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "is_error": False, "content": "print('a')"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "is_error": True, "content": "no such file"},
        ],
    }


async def test_foreign_turn_rebuilt_and_thinking_dropped(provider: AnthropicProvider) -> None:
    """Another provider's turn carries no thinking block, so its tool continuation goes without thinking."""
    foreign = AssistantMessage(
        text="Checking.", tool_calls=[ToolCall("call_1", "read_file", {"path": "x"})], provider="openai",
        replay=[{"type": "reasoning", "id": "rs_1"}],
    )
    history = [UserMessage("go"), foreign, ToolResultMessage("call_1", "read_file", "")]
    params = provider.build_params(ProviderRequest(MODEL, "", history, reasoning=ReasoningOptions(budget_tokens=2048)))
    assert params["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "read_file", "input": {"path": "x"}},
    ]
    assert params["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_1", "is_error": False}]
    assert "thinking" not in params and "system" not in params


def test_unsigned_thinking_and_empty_text_not_replayed() -> None:
    own = AssistantMessage(
        text="", provider="anthropic",
        replay=[
            {"type": "thinking", "thinking": "cut off", "signature": ""},
            {"type": "redacted_thinking", "data": "xyz"},
            {"type": "text", "text": ""},
            {"type": "text", "text": "ok"},
        ],
    )
    out = to_anthropic_messages([UserMessage("a"), own, UserMessage("b"), UserMessage("c")])
    assert out[1]["content"] == [{"type": "redacted_thinking", "data": "xyz"}, {"type": "text", "text": "ok"}]
    assert out[2] == {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]}
    only_unsigned = AssistantMessage(text="partial", provider="anthropic",
                                     replay=[{"type": "thinking", "thinking": "t", "signature": ""}])
    assert to_anthropic_messages([only_unsigned])[0]["content"] == [{"type": "text", "text": "partial"}]


async def test_redacted_thinking_kept_for_replay(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(AnthropicTurn(reasoning="visible", redacted_thinking=True, text="ok"))
    done = finished(await collect(provider, request(reasoning=ReasoningOptions(budget_tokens=1024))))
    assert [b["type"] for b in done.message.replay] == ["thinking", "redacted_thinking", "text"]
    assert done.message.replay[1]["data"]


async def test_usage_normalized(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(ScriptedTurn(text="x", reasoning="y", input_tokens=1200, cached_tokens=1000,
                             output_tokens=90, reasoning_tokens=60))
    events = await collect(provider, request())
    usages = [e for e in events if isinstance(e, Usage)]
    assert usages == [Usage(input_tokens=1200, output_tokens=90, reasoning_tokens=60, cached_tokens=1000)]
    assert isinstance(events[-2], Usage)


async def test_rate_limit_retried_by_the_sdk(fake: FakeAnthropic) -> None:
    fake.script(ScriptedTurn(status=429, error_message="slow down"), ScriptedTurn(text="after retry"))
    p = AnthropicProvider(fake.settings(max_retries=1))
    try:
        done = finished(await collect(p, request()))
    finally:
        await p.aclose()
    assert done.message.text == "after retry"
    assert len(fake.requests) == 2


async def test_rate_limit_exhausted(fake: FakeAnthropic) -> None:
    fake.script(*[ScriptedTurn(status=429, error_message="slow down")] * 3)
    p = AnthropicProvider(fake.settings(max_retries=2))
    try:
        err = await failure(p)
    finally:
        await p.aclose()
    assert (err.kind, err.status, err.retryable) == ("rate_limit", 429, True)
    assert err.message == "anthropic: rate limited (429) after 2 retries: slow down"
    assert len(fake.requests) == 3


async def test_server_error_is_retryable(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(ScriptedTurn(status=500, error_message="boom"))
    err = await failure(provider)
    assert (err.kind, err.status, err.retryable) == ("server", 500, True)
    assert "boom" in err.message


async def test_overloaded(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(ScriptedTurn(status=529, error_message="Overloaded"))
    err = await failure(provider)
    assert (err.kind, err.status, err.retryable) == ("overloaded", 529, True)


async def test_overloaded_mid_stream(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(AnthropicTurn(text="never", stream_error="overloaded_error", error_message="Overloaded"))
    err = await failure(provider)
    assert (err.kind, err.status, err.retryable) == ("overloaded", 529, True)
    assert err.message == "anthropic: overloaded (529) during the stream: Overloaded"


async def test_bad_request_not_retryable(fake: FakeAnthropic) -> None:
    fake.script(ScriptedTurn(status=400, error_message="messages: field required"))
    p = AnthropicProvider(fake.settings(max_retries=2))
    try:
        err = await failure(p)
    finally:
        await p.aclose()
    assert (err.kind, err.status, err.retryable) == ("bad_request", 400, False)
    assert len(fake.requests) == 1  # the SDK does not retry a 400


async def test_auth_error_never_shows_the_key(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(ScriptedTurn(status=401, error_message="invalid x-api-key"))
    err = await failure(provider)
    assert (err.kind, err.status, err.retryable) == ("auth", 401, False)
    assert "sk-ant-fake-key" not in err.message and "sk-ant-fake-key" not in str(err.to_dict())


async def test_hang_times_out(fake: FakeAnthropic) -> None:
    fake.script(ScriptedTurn(text="late", delay=3))
    p = AnthropicProvider(fake.settings(timeout=0.5))
    start = time.monotonic()
    try:
        err = await failure(p)
    finally:
        await p.aclose()
    assert (err.kind, err.retryable) == ("timeout", True)
    assert time.monotonic() - start < 2.5


async def test_stall_mid_stream_times_out(fake: FakeAnthropic) -> None:
    fake.script(ScriptedTurn(text="a b c d", chunks=4, chunk_delay=1.5))
    p = AnthropicProvider(fake.settings(timeout=0.5))
    try:
        err = await failure(p)
    finally:
        await p.aclose()
    assert err.kind == "timeout" and err.retryable
    assert "stalled" in err.message  # message_start arrived, then nothing: a read timeout inside the stream


async def test_cut_stream(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(ScriptedTurn(text="this will be cut short", chunks=5, cut_after=4))
    err = await failure(provider)
    assert (err.kind, err.retryable) == ("stream", True)


async def test_malformed_event(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(ScriptedTurn(text="fine", malformed=True))
    err = await failure(provider)
    assert err.kind == "stream"


async def test_missing_key(fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDE_AGENT_TEST_ANTHROPIC_KEY", raising=False)
    p = AnthropicProvider(fake.settings(api_key=None, api_key_env="IDE_AGENT_TEST_ANTHROPIC_KEY"))
    err = await failure(p)
    assert (err.kind, err.retryable) == ("config", False)
    assert "IDE_AGENT_TEST_ANTHROPIC_KEY" in err.message
    assert fake.requests == []


async def test_client_is_reused_and_closed(fake: FakeAnthropic) -> None:
    p = AnthropicProvider(fake.settings())
    await collect(p, request())
    client = p.client()
    await collect(p, request())
    assert p.client() is client
    await p.aclose()
    assert client.is_closed()
