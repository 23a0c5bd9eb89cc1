"""The OpenAI Responses adapter against a wire-level fake, through the real ``openai`` SDK."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from jupyterlab_ide_agent.agent.messages import AssistantMessage, ToolCall, ToolResultMessage, UserMessage
from jupyterlab_ide_agent.providers.base import (
    Finished,
    ProviderError,
    ProviderRequest,
    ProviderSettings,
    ReasoningDelta,
    ReasoningOptions,
    TextDelta,
    ToolCallRequested,
    ToolSpec,
    Usage,
)
from jupyterlab_ide_agent.providers.openai_responses import OpenAIResponsesProvider
from tests.fakes.base import ScriptedTool, ScriptedTurn
from tests.fakes.openai import FakeOpenAI

READ_FILE = ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}})


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


@pytest.fixture
async def provider(fake: FakeOpenAI) -> AsyncIterator[OpenAIResponsesProvider]:
    p = OpenAIResponsesProvider(fake.settings())
    yield p
    await p.aclose()


def request(text: str = "hi", **kw: Any) -> ProviderRequest:
    kw.setdefault("messages", [UserMessage(text)])
    return ProviderRequest(model="gpt-fake", system="You are a test.", **kw)


async def collect(provider: OpenAIResponsesProvider, req: ProviderRequest) -> list[Any]:
    return [event async for event in provider.stream(req)]


async def fails(provider: OpenAIResponsesProvider, req: ProviderRequest | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await collect(provider, req or request())
    return info.value


def finished(events: list[Any]) -> Finished:
    assert isinstance(events[-1], Finished)
    assert sum(isinstance(e, Finished) for e in events) == 1
    return events[-1]


async def test_streamed_text(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(text="Hello there, how are you today?", chunks=4))
    events = await collect(provider, request())
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 4 and "".join(deltas) == "Hello there, how are you today?"
    done = finished(events)
    assert done.message.text == "Hello there, how are you today?"
    assert (done.message.provider, done.message.model, done.stop_reason) == ("openai", "gpt-fake", "stop")
    assert isinstance(events[-2], Usage)
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/responses"
    assert sent["headers"]["Authorization"] == "Bearer sk-fake-test-key"
    body = sent["body"]
    assert body["store"] is False and body["stream"] is True and body["model"] == "gpt-fake"
    assert body["instructions"] == "You are a test."
    assert body["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert "reasoning" not in body and "include" not in body and "tools" not in body
    assert [item["type"] for item in done.message.replay] == ["message"]


async def test_reasoning_deltas_and_knobs(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(reasoning="First I think, then I answer.", text="42", reasoning_tokens=7))
    events = await collect(provider, request(reasoning=ReasoningOptions(effort="high")))
    thoughts = [e.text for e in events if isinstance(e, ReasoningDelta)]
    assert "".join(thoughts) == "First I think, then I answer."
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert max(i for i, e in enumerate(events) if isinstance(e, ReasoningDelta)) < first_text
    message = finished(events).message
    assert message.reasoning == "First I think, then I answer." and message.text == "42"
    body = fake.requests[-1]["body"]
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    reasoning_item = message.replay[0]
    assert reasoning_item["type"] == "reasoning" and reasoning_item["encrypted_content"].startswith("gAAAA")


async def test_tool_call(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(tool_calls=[ScriptedTool("read_file", {"path": "src/a.py", "lines": [1, 2]})]))
    events = await collect(provider, request(tools=[READ_FILE]))
    calls = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert len(calls) == 1
    assert calls[0].name == "read_file" and calls[0].arguments == {"path": "src/a.py", "lines": [1, 2]}
    assert calls[0].call_id.startswith("call_")
    done = finished(events)
    assert done.message.tool_calls == calls and done.stop_reason == "tool_calls"
    assert fake.requests[-1]["body"]["tools"] == [
        {"type": "function", "name": "read_file", "description": "Read a file.",
         "parameters": READ_FILE.parameters, "strict": False}
    ]


async def test_unparsable_arguments_are_handed_over(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    raw: Any = '{"path": "a'  # the fake streams a str as raw argument JSON
    fake.script(ScriptedTurn(tool_calls=[ScriptedTool("read_file", raw, call_id="call_x")]))
    events = await collect(provider, request(tools=[READ_FILE]))
    (call,) = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert call.arguments == {"_unparsed_arguments": '{"path": "a'}


async def test_history_replays_reasoning_and_pairs_tool_results(
    fake: FakeOpenAI, provider: OpenAIResponsesProvider
) -> None:
    fake.script(ScriptedTurn(reasoning="Need the file.", tool_calls=[ScriptedTool("read_file", {"path": "a.py"})]),
                ScriptedTurn(text="It prints 1."))
    opts = ReasoningOptions(effort="medium")
    first = finished(await collect(provider, request("what does a.py do?", tools=[READ_FILE], reasoning=opts)))
    call = first.message.tool_calls[0]
    history = [UserMessage("what does a.py do?"), first.message,
               ToolResultMessage(call.call_id, "read_file", "print(1)")]
    second = finished(await collect(provider, request(messages=history, tools=[READ_FILE], reasoning=opts)))
    assert second.message.text == "It prints 1."

    body = fake.requests[-1]["body"]
    assert body["instructions"] == "You are a test." and body["tools"][0]["name"] == "read_file"
    kinds = [item["type"] for item in body["input"]]
    assert kinds == ["message", "reasoning", "function_call", "function_call_output"]
    reasoning, fn_call, result = body["input"][1:]
    assert reasoning["encrypted_content"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Need the file."}]
    assert fn_call["call_id"] == call.call_id and fn_call["name"] == "read_file"
    assert result == {"type": "function_call_output", "call_id": call.call_id, "output": "print(1)"}


async def test_other_providers_turns_are_rebuilt(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    foreign = AssistantMessage(text="Let me look.", tool_calls=[ToolCall("toolu_1", "read_file", {"path": "b.py"})],
                               provider="anthropic", replay=[{"type": "thinking", "signature": "sig"}])
    history = [UserMessage("look at b.py", context={"notebook": "n.ipynb"}), foreign,
               ToolResultMessage("toolu_1", "read_file", "no such file", is_error=True)]
    await collect(provider, request(messages=history))
    user, text, fn_call, result = fake.requests[-1]["body"]["input"]
    assert "look at b.py" in user["content"][0]["text"] and "n.ipynb" in user["content"][0]["text"]
    assert text == {"type": "message", "role": "assistant", "content": "Let me look."}
    assert fn_call == {"type": "function_call", "call_id": "toolu_1", "name": "read_file",
                       "arguments": '{"path": "b.py"}'}
    assert result["call_id"] == "toolu_1" and result["output"].startswith("ERROR:")


async def test_usage_is_normalized(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(text="ok", input_tokens=100, cached_tokens=40, output_tokens=20, reasoning_tokens=30))
    (usage,) = [e for e in await collect(provider, request()) if isinstance(e, Usage)]
    assert usage == Usage(input_tokens=100, output_tokens=50, reasoning_tokens=30, cached_tokens=40)


async def test_rate_limit_is_retried_by_the_sdk(fake: FakeOpenAI) -> None:
    fake.script(ScriptedTurn(status=429), ScriptedTurn(text="after retry"))
    p = OpenAIResponsesProvider(fake.settings(max_retries=1))
    try:
        assert finished(await collect(p, request())).message.text == "after retry"
    finally:
        await p.aclose()
    assert len(fake.requests) == 2


async def test_rate_limit_reported(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(status=429, error_message="Rate limit reached for gpt-fake"))
    err = await fails(provider)
    assert (err.kind, err.status, err.retryable, err.provider) == ("rate_limit", 429, True, "openai")
    assert "Rate limit reached for gpt-fake" in err.message and err.message.startswith("openai: rate limited (429)")


async def test_server_error_is_retryable(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(status=500))
    err = await fails(provider)
    assert (err.kind, err.status, err.retryable) == ("server", 500, True)


async def test_bad_request_is_not_retryable(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(status=400, error_message="Invalid 'input[0]': sk-fake-test-key"))
    err = await fails(provider)
    assert (err.kind, err.status, err.retryable) == ("bad_request", 400, False)
    assert "Invalid 'input[0]'" in err.message and "sk-fake-test-key" not in err.message


async def test_auth_error(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(status=401, error_message="Incorrect API key provided"))
    err = await fails(provider)
    assert (err.kind, err.status, err.retryable) == ("auth", 401, False)


async def test_hang_times_out(fake: FakeOpenAI) -> None:
    fake.script(ScriptedTurn(text="too late", delay=3))
    p = OpenAIResponsesProvider(fake.settings(timeout=0.5))
    start = time.monotonic()
    try:
        err = await fails(p)
    finally:
        await p.aclose()
    assert err.kind == "timeout" and err.retryable and time.monotonic() - start < 2.5


async def test_stall_mid_stream_times_out(fake: FakeOpenAI) -> None:
    fake.script(ScriptedTurn(text="slow words here", chunk_delay=2))
    p = OpenAIResponsesProvider(fake.settings(timeout=0.5))
    try:
        err = await fails(p)
    finally:
        await p.aclose()
    assert err.kind == "timeout"


async def test_cut_stream(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(text="this answer never completes", cut_after=5))
    err = await fails(provider)
    assert err.kind == "stream" and err.retryable


async def test_stream_ending_without_completed(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.stream_error = {"type": "keepalive"}  # any event, then a clean end of the body
    err = await fails(provider)
    assert err.kind == "stream" and "before response.completed" in err.message


async def test_malformed_stream(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.script(ScriptedTurn(text="x", malformed=True))
    assert (await fails(provider)).kind == "stream"


async def test_mid_stream_error_events(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    fake.stream_error = {"type": "error", "code": "rate_limit_exceeded", "message": "Slow down", "param": None}
    err = await fails(provider)
    assert err.kind == "rate_limit" and "Slow down" in err.message
    failed = {"id": "resp_x", "object": "response", "status": "failed", "output": [],
              "error": {"code": "server_error", "message": "The model crashed"}}
    fake.stream_error = {"type": "response.failed", "response": failed}
    err = await fails(provider)
    assert (err.kind, err.retryable) == ("server", True) and "The model crashed" in err.message
    # the nested shape makes the SDK itself raise (it checks for a top-level "error" key)
    fake.stream_error = {"type": "error", "error": {"type": "invalid_request_error", "code": "context_length_exceeded",
                                                    "message": "Too long"}}
    err = await fails(provider)
    assert (err.kind, err.retryable) == ("bad_request", False) and "Too long" in err.message


async def test_connection_refused() -> None:
    p = OpenAIResponsesProvider(ProviderSettings("openai", "openai", api_key="k", base_url="http://127.0.0.1:1/v1",
                                                 timeout=2, max_retries=0))
    try:
        err = await fails(p)
    finally:
        await p.aclose()
    assert (err.kind, err.retryable) == ("connection", True)


async def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDE_AGENT_TEST_NO_KEY", raising=False)
    p = OpenAIResponsesProvider(ProviderSettings("openai", "openai", api_key_env="IDE_AGENT_TEST_NO_KEY"))
    err = await fails(p)
    assert (err.kind, err.retryable) == ("config", False) and "IDE_AGENT_TEST_NO_KEY" in err.message


async def test_local_server_needs_no_key(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-env-key")
    p = OpenAIResponsesProvider(fake.settings(api_key=None))
    try:
        assert finished(await collect(p, request())).message.text == "Hello from the fake."
    finally:
        await p.aclose()
    assert "sk-real-env-key" not in fake.requests[-1]["headers"]["Authorization"]


async def test_client_is_reused_and_closed(fake: FakeOpenAI, provider: OpenAIResponsesProvider) -> None:
    await collect(provider, request())
    client = provider._client
    await collect(provider, request())
    assert client is not None and provider._client is client
    await provider.aclose()
    assert provider._client is None
