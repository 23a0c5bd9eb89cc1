"""GeminiProvider against the wire-level FakeGemini, through the real google-genai SDK."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from jupyterlab_ide_agent.agent.messages import AssistantMessage, ToolCall, ToolResultMessage, UserMessage
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
from jupyterlab_ide_agent.providers.gemini import GeminiProvider

from .fakes.base import ScriptedTool, ScriptedTurn
from .fakes.gemini import FAKE_SIGNATURE, FakeGemini, thinking_config

MODEL = "gemini-2.5-flash"
READ_TOOL = ToolSpec(
    name="read_file",
    description="Read a file from the workspace.",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"],
                "additionalProperties": False},
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    server = FakeGemini().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset(fake: FakeGemini) -> None:
    fake.reset()


@pytest.fixture
async def provider(fake: FakeGemini) -> AsyncIterator[GeminiProvider]:
    p = GeminiProvider(fake.settings())
    yield p
    await p.aclose()


def request(*messages: Any, **kw: Any) -> ProviderRequest:
    return ProviderRequest(model=MODEL, system="You are a test.", messages=list(messages) or [UserMessage("hi")], **kw)


async def collect(p: GeminiProvider, req: ProviderRequest) -> list[Any]:
    return [event async for event in p.stream(req)]


def camel(d: dict[str, Any]) -> dict[str, Any]:
    """The SDK sends some nested keys in snake_case (the API takes both): compare in camelCase."""
    return {"".join(w.capitalize() if i else w for i, w in enumerate(k.split("_"))): v for k, v in d.items()}


async def test_streamed_text(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(text="Hello there, general Kenobi.", chunks=4))
    events = await collect(provider, request())
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 4
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.stop_reason == "stop"
    assert "".join(deltas) == finished.message.text == "Hello there, general Kenobi."
    assert finished.message.provider == "gemini" and finished.message.model == MODEL
    # the empty signed closing part is kept for replay, the text merged into one part
    assert finished.message.replay == [{"text": "Hello there, general Kenobi."},
                                       {"text": "", "thoughtSignature": FAKE_SIGNATURE}]
    sent = fake.requests[-1]
    assert sent["path"] == f"/v1/models/{MODEL}:streamGenerateContent?alt=sse"
    assert sent["headers"]["X-Goog-Api-Key"] == "fake-gemini-key"


async def test_reasoning_deltas_and_thinking_config(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(reasoning="Let me think about it.", text="42", reasoning_tokens=7, output_tokens=9))
    events = await collect(provider, request(reasoning=ReasoningOptions(budget_tokens=2048)))
    thoughts = [e.text for e in events if isinstance(e, ReasoningDelta)]
    assert "".join(thoughts) == "Let me think about it."
    # reasoning arrives before text
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert max(i for i, e in enumerate(events) if isinstance(e, ReasoningDelta)) < first_text
    message = events[-1].message
    assert message.reasoning == "Let me think about it." and message.text == "42"
    assert message.replay[0] == {"text": "Let me think about it.", "thought": True}
    assert thinking_config(fake.requests[-1]["body"]) == {"includeThoughts": True, "thinkingBudget": 2048}


async def test_no_reasoning_options_sends_no_thinking_config(fake: FakeGemini, provider: GeminiProvider) -> None:
    await collect(provider, request())
    assert thinking_config(fake.requests[-1]["body"]) == {}
    await collect(provider, request(reasoning=ReasoningOptions()))
    assert thinking_config(fake.requests[-1]["body"]) == {"includeThoughts": True, "thinkingBudget": -1}


async def test_tool_call(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(text="Reading.", tool_calls=[ScriptedTool("read_file", {"path": "a.py"}),
                                                          ScriptedTool("read_file", {"path": "b.py"})]))
    events = await collect(provider, request(tools=[READ_TOOL]))
    calls = [e.call for e in events if isinstance(e, ToolCallRequested)]
    assert [c.arguments for c in calls] == [{"path": "a.py"}, {"path": "b.py"}]
    assert all(c.name == "read_file" and c.call_id.startswith("gemini_") for c in calls)
    assert len({c.call_id for c in calls}) == 2
    finished = events[-1]
    assert finished.stop_reason == "tool_calls" and finished.message.tool_calls == calls
    # calls are announced before Usage/Finished
    assert events.index(ToolCallRequested(calls[1])) < next(i for i, e in enumerate(events) if isinstance(e, Usage))
    assert finished.message.replay == [
        {"text": "Reading."},
        {"functionCall": {"name": "read_file", "args": {"path": "a.py"}}, "_callId": calls[0].call_id,
         "thoughtSignature": FAKE_SIGNATURE},
        {"functionCall": {"name": "read_file", "args": {"path": "b.py"}}, "_callId": calls[1].call_id},
    ]


async def test_api_given_call_id_is_kept(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(tool_calls=[ScriptedTool("read_file", {"path": "a"}, call_id="fc-1")]))
    events = await collect(provider, request(tools=[READ_TOOL]))
    assert events[-1].message.tool_calls[0].call_id == "fc-1"
    assert events[-1].message.replay[0]["functionCall"]["id"] == "fc-1"


async def test_history_with_tool_results(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(reasoning="plan", tool_calls=[ScriptedTool("read_file", {"path": "a.py"}),
                                                           ScriptedTool("read_file", {"path": "b.py"})]))
    first = (await collect(provider, request(UserMessage("read them"), tools=[READ_TOOL])))[-1].message
    a, b = first.tool_calls
    history = [UserMessage("read them"), first,
               ToolResultMessage(a.call_id, "read_file", "print('a')"),
               ToolResultMessage(b.call_id, "read_file", "no such file", is_error=True)]
    fake.script(ScriptedTurn(text="Done."))
    events = await collect(provider, request(*history, tools=[READ_TOOL]))
    assert events[-1].message.text == "Done."

    body = fake.requests[-1]["body"]
    assert body["systemInstruction"]["parts"] == [{"text": "You are a test."}]
    decl = camel(body["tools"][0]["functionDeclarations"][0])
    assert decl["name"] == "read_file" and decl["parametersJsonSchema"] == READ_TOOL.parameters
    user, model, results = body["contents"]
    assert user == {"role": "user", "parts": [{"text": "read them"}]}
    assert model["role"] == "model"
    assert model["parts"][0] == {"text": "plan", "thought": True}
    call_a, call_b = model["parts"][1:]
    assert call_a["functionCall"] == {"name": "read_file", "args": {"path": "a.py"}}
    assert base64.urlsafe_b64decode(call_a["thoughtSignature"]) == base64.b64decode(FAKE_SIGNATURE)
    assert "thoughtSignature" not in call_b and "_callId" not in call_a
    # both results in ONE user turn, in call order, paired by name
    assert results == {"role": "user", "parts": [
        {"functionResponse": {"name": "read_file", "response": {"output": "print('a')"}}},
        {"functionResponse": {"name": "read_file", "response": {"error": "no such file"}}},
    ]}


async def test_foreign_assistant_message_is_rebuilt(fake: FakeGemini, provider: GeminiProvider) -> None:
    foreign = AssistantMessage(text="Let me look.", tool_calls=[ToolCall("call_x", "read_file", {"path": "z"})],
                               provider="openai", replay=[{"type": "reasoning", "id": "rs_1"}])
    history = [UserMessage("go"), foreign, ToolResultMessage("call_x", "read_file", "zzz")]
    await collect(provider, request(*history))
    model = fake.requests[-1]["body"]["contents"][1]
    assert model["parts"][0] == {"text": "Let me look."}
    assert model["parts"][1]["functionCall"] == {"name": "read_file", "args": {"path": "z"}}
    assert model["parts"][1]["thoughtSignature"] == "skip_thought_signature_validator"


async def test_usage_normalized(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(text="x", input_tokens=120, output_tokens=50, reasoning_tokens=30, cached_tokens=100))
    events = await collect(provider, request())
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage == [Usage(input_tokens=120, output_tokens=50, reasoning_tokens=30, cached_tokens=100)]
    assert isinstance(events[-1], Finished)


async def test_429_retried_by_sdk(fake: FakeGemini) -> None:
    p = GeminiProvider(fake.settings(max_retries=1))
    fake.script(ScriptedTurn(status=429, error_message="quota"), ScriptedTurn(text="after retry"))
    try:
        events = await collect(p, request())
    finally:
        await p.aclose()
    assert events[-1].message.text == "after retry"
    assert len(fake.requests) == 2


async def test_429_exhausted(fake: FakeGemini) -> None:
    p = GeminiProvider(fake.settings(max_retries=2))
    fake.script(*[ScriptedTurn(status=429, error_message="Resource has been exhausted")] * 3)
    with pytest.raises(ProviderError) as info:
        await collect(p, request())
    await p.aclose()
    err = info.value
    assert (err.kind, err.status, err.retryable, err.provider) == ("rate_limit", 429, True, "gemini")
    assert err.message == "gemini: rate limited (429) after 2 retries: Resource has been exhausted"
    assert len(fake.requests) == 3


async def test_500_is_retryable(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(status=500, error_message="boom"))
    with pytest.raises(ProviderError) as info:
        await collect(provider, request())
    assert (info.value.kind, info.value.status, info.value.retryable) == ("server", 500, True)
    assert "boom" in info.value.message


async def test_400_not_retryable(fake: FakeGemini) -> None:
    p = GeminiProvider(fake.settings(max_retries=2))
    fake.script(ScriptedTurn(status=400, error_message="bad schema"))
    with pytest.raises(ProviderError) as info:
        await collect(p, request())
    await p.aclose()
    assert (info.value.kind, info.value.status, info.value.retryable) == ("bad_request", 400, False)
    assert len(fake.requests) == 1  # the SDK does not retry a 400 either


async def test_hang_times_out(fake: FakeGemini) -> None:
    p = GeminiProvider(fake.settings(timeout=0.5))
    fake.script(ScriptedTurn(delay=5.0))
    start = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await collect(p, request())
    await p.aclose()
    assert time.monotonic() - start < 3
    assert (info.value.kind, info.value.retryable) == ("timeout", True)


async def test_timeout_is_per_read_not_total(fake: FakeGemini) -> None:
    """httpx2's timeout is per read: a stalled stream fails, a slow but flowing one does not."""
    p = GeminiProvider(fake.settings(timeout=0.5))
    fake.script(ScriptedTurn(text="one two three four", chunks=4, chunk_delay=0.25),
                ScriptedTurn(text="one two three", chunks=3, chunk_delay=2.0))
    try:
        events = await collect(p, request())  # ~1.25 s in total, longer than the timeout
        assert events[-1].message.text == "one two three four"
        with pytest.raises(ProviderError) as info:
            await collect(p, request())
    finally:
        await p.aclose()
    assert info.value.kind == "timeout"


async def test_cut_stream(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(text="this will be cut short", chunks=4, cut_after=2))
    events: list[Any] = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(request()):
            events.append(event)
    assert info.value.kind == "stream" and info.value.retryable
    assert len([e for e in events if isinstance(e, TextDelta)]) == 2
    assert not any(isinstance(e, Finished) for e in events)


async def test_malformed_line(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(text="fine", malformed=True))
    with pytest.raises(ProviderError) as info:
        await collect(provider, request())
    assert info.value.kind == "stream"


async def test_connection_refused() -> None:
    settings = FakeGemini().settings(base_url="http://127.0.0.1:9")
    p = GeminiProvider(settings)
    with pytest.raises(ProviderError) as info:
        await collect(p, request())
    await p.aclose()
    assert (info.value.kind, info.value.retryable) == ("connection", True)


async def test_missing_key(fake: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    p = GeminiProvider(fake.settings(api_key=None, api_key_env="GEMINI_API_KEY"))
    with pytest.raises(ProviderError) as info:
        await collect(p, request())
    assert (info.value.kind, info.value.retryable) == ("config", False)
    assert "GEMINI_API_KEY" in info.value.message
    assert fake.requests == []


async def test_key_never_in_messages(fake: FakeGemini) -> None:
    p = GeminiProvider(fake.settings(api_key="sekrit-key-123"))
    fake.script(ScriptedTurn(status=403, error_message="key sekrit-key-123 is not valid"))
    with pytest.raises(ProviderError) as info:
        await collect(p, request())
    await p.aclose()
    assert info.value.kind == "auth" and "sekrit-key-123" not in str(info.value)


async def test_consumer_stopping_early_frees_the_stream(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.script(ScriptedTurn(text="a long answer that nobody reads", chunks=5, chunk_delay=0.05))
    gen = provider.stream(request())
    assert isinstance(await gen.__anext__(), TextDelta)
    await gen.aclose()  # what the loop does on cancel
    events = await collect(provider, request())
    assert events[-1].message.text == "Hello from the fake."


async def test_client_reused(fake: FakeGemini, provider: GeminiProvider) -> None:
    await collect(provider, request())
    client = provider._client
    await collect(provider, request())
    assert provider._client is client and len(fake.requests) == 2
