"""The OpenAI Chat Completions adapter (``api="chat_completions"``) against a wire-level fake, through the
real ``openai`` SDK; and both OpenAI APIs driving the agent loop."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from jupyterlab_ide_agent.agent.loop import IDEAgent
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
from jupyterlab_ide_agent.providers.openai_chat import OpenAIChatProvider
from jupyterlab_ide_agent.providers.openai_responses import OpenAIResponsesProvider
from jupyterlab_ide_agent.providers.registry import ProviderPool, build_settings
from jupyterlab_ide_agent.tools.base import Tool, ToolContext, ToolImage, ToolResult
from tests.fakes.base import ScriptedTool, ScriptedTurn
from tests.fakes.openai_chat import FakeOpenAIChat

READ_FILE = ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}})
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n fake png body").decode()


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIChat]:
    fake = FakeOpenAIChat().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeOpenAIChat) -> FakeOpenAIChat:
    server.reset()
    return server


@pytest.fixture
async def make_provider(fake: FakeOpenAIChat) -> AsyncIterator[Callable[..., OpenAIChatProvider]]:
    made: list[OpenAIChatProvider] = []

    def make(**settings: Any) -> OpenAIChatProvider:
        made.append(OpenAIChatProvider(fake.settings(**settings)))
        return made[-1]

    yield make
    for p in made:
        await p.aclose()


@pytest.fixture
def provider(make_provider: Callable[..., OpenAIChatProvider]) -> OpenAIChatProvider:
    return make_provider()


def request(text: str = "hi", **kw: Any) -> ProviderRequest:
    kw.setdefault("messages", [UserMessage(text)])
    return ProviderRequest(model=kw.pop("model", "qwen3-coder"), system="You are a test.", **kw)


async def collect(provider: OpenAIChatProvider, req: ProviderRequest | None = None) -> list[Any]:
    return [event async for event in provider.stream(req or request())]


async def fails(provider: OpenAIChatProvider, req: ProviderRequest | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await collect(provider, req)
    return info.value


def finished(events: list[Any]) -> Finished:
    assert isinstance(events[-1], Finished)
    assert sum(isinstance(e, Finished) for e in events) == 1
    return events[-1]


def of(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


# ---------------------------------------------------------------- streaming


async def test_streamed_text_and_the_request_sent(fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    fake.script(ScriptedTurn(text="Hello there, how are you today?", chunks=4))
    events = await collect(provider)
    assert [e.text for e in of(events, TextDelta)] == ["Hello th", "ere, how", " are you", " today?"]
    done = finished(events)
    assert (done.message.text, done.message.provider, done.stop_reason) == (
        "Hello there, how are you today?", "openai_chat", "stop")
    assert done.message.replay == [] and isinstance(events[-2], Usage)
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-fake-test-key"
    assert sent["body"] == {"model": "qwen3-coder", "stream": True, "stream_options": {"include_usage": True},
                            "messages": [{"role": "system", "content": "You are a test."},
                                         {"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_deltas(field: str, fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    fake.reasoning_field = field
    fake.script(ScriptedTurn(reasoning="First I think, then I answer.", text="42"))
    events = await collect(provider, request(reasoning=ReasoningOptions(effort="high")))
    assert "".join(e.text for e in of(events, ReasoningDelta)) == "First I think, then I answer."
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert max(i for i, e in enumerate(events) if isinstance(e, ReasoningDelta)) < first_text
    message = finished(events).message
    assert (message.reasoning, message.text) == ("First I think, then I answer.", "42")
    assert fake.requests[-1]["body"]["reasoning_effort"] == "high"


async def test_tool_call_deltas_are_assembled(fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    fake.script(ScriptedTurn(tool_calls=[ScriptedTool("read_file", {"path": "src/a.py", "lines": [1, 2]})],
                             chunks=5))
    events = await collect(provider, request(tools=[READ_FILE]))
    [call] = [e.call for e in of(events, ToolCallRequested)]
    assert call.name == "read_file" and call.arguments == {"path": "src/a.py", "lines": [1, 2]}
    assert call.call_id.startswith("call_")
    done = finished(events)
    assert done.message.tool_calls == [call] and done.stop_reason == "tool_calls"
    assert fake.requests[-1]["body"]["tools"] == [
        {"type": "function", "function": {"name": "read_file", "description": "Read a file.",
                                          "parameters": READ_FILE.parameters}}]


@pytest.mark.parametrize("style", ["indexed", "whole_index0"])
async def test_parallel_tool_calls(style: str, fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    """Distinct indexes (OpenAI, vLLM), or every call whole at index 0 (Ollama): two calls either way."""
    fake.tool_call_style = style
    fake.script(ScriptedTurn(text="Reading both.", tool_calls=[
        ScriptedTool("read_file", {"path": "a.py"}, call_id="call_a"),
        ScriptedTool("read_file", {"path": "b.py"}, call_id="call_b")]))
    events = await collect(provider, request(tools=[READ_FILE]))
    calls = [e.call for e in of(events, ToolCallRequested)]
    assert calls == [ToolCall("call_a", "read_file", {"path": "a.py"}),
                     ToolCall("call_b", "read_file", {"path": "b.py"})]
    assert finished(events).message.text == "Reading both."


async def test_unparsable_arguments_are_handed_over(fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    raw: Any = '{"path": "a'
    fake.script(ScriptedTurn(tool_calls=[ScriptedTool("read_file", raw, call_id="call_x")]))
    [call] = [e.call for e in of(await collect(provider, request(tools=[READ_FILE])), ToolCallRequested)]
    assert call.arguments == {"_unparsed_arguments": '{"path": "a'}


async def test_length_finish_is_max_tokens(fake: FakeOpenAIChat, make_provider: Any) -> None:
    """A turn cut by the token cap: stop_reason max_tokens; a call cut mid-arguments reaches the loop unparsed."""
    fake.finish_reason = "length"
    fake.script(ScriptedTurn(text="The answer is", tool_calls=[ScriptedTool("read_file", '{"path": "long/pa')]))
    events = await collect(make_provider(), request(tools=[READ_FILE], max_output_tokens=64))
    done = finished(events)
    assert done.stop_reason == "max_tokens" and done.message.text == "The answer is"
    assert done.message.tool_calls[0].arguments == {"_unparsed_arguments": '{"path": "long/pa'}
    assert fake.requests[-1]["body"]["max_tokens"] == 64  # what older servers read
    await collect(make_provider(options={"max_tokens_param": "max_completion_tokens"}), request(max_output_tokens=64))
    assert fake.requests[-1]["body"]["max_completion_tokens"] == 64
    assert "max_tokens" not in fake.requests[-1]["body"]


# ---------------------------------------------------------------- usage


@pytest.mark.parametrize(("mode", "expected"), [
    ("standard", Usage(100, 50, 30, 40)),   # include_usage honoured: a last chunk with choices: []
    ("on_finish", Usage(100, 50, 30, 40)),  # usage on the finishing chunk
    ("timings", Usage(100, 20, 0, 40)),     # llama.cpp's numbers only
    ("ignore", Usage()),                    # nothing: zeros, never a crash
])
async def test_usage_from_what_the_server_sends(mode: str, expected: Usage, fake: FakeOpenAIChat,
                                                provider: OpenAIChatProvider) -> None:
    fake.usage_mode = mode
    fake.script(ScriptedTurn(text="ok", input_tokens=100, cached_tokens=40, output_tokens=20, reasoning_tokens=30))
    events = await collect(provider)
    assert of(events, Usage) == [expected]
    assert finished(events).message.text == "ok"


async def test_stream_usage_can_be_switched_off(fake: FakeOpenAIChat, make_provider: Any) -> None:
    events = await collect(make_provider(options={"stream_usage": False}))
    assert "stream_options" not in fake.requests[-1]["body"]
    assert of(events, Usage) == [Usage()]


# ---------------------------------------------------------------- history, replay, images


async def test_history_round_trip(fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    fake.script(ScriptedTurn(reasoning="Need the file.", tool_calls=[ScriptedTool("read_file", {"path": "a.py"})]),
                ScriptedTurn(text="It prints 1."))
    first = finished(await collect(provider, request("what does a.py do?", tools=[READ_FILE])))
    call = first.message.tool_calls[0]
    foreign = AssistantMessage(text="Earlier.", tool_calls=[ToolCall("toolu_1", "read_file", {"path": "b.py"})],
                               provider="anthropic", replay=[{"type": "thinking", "signature": "sig"}])
    history = [UserMessage("look at b.py", context={"notebook": "n.ipynb"}), foreign,
               ToolResultMessage("toolu_1", "read_file", "no such file", is_error=True),
               UserMessage("what does a.py do?"), first.message,
               ToolResultMessage(call.call_id, "read_file", "print(1)")]
    second = finished(await collect(provider, request(messages=history, tools=[READ_FILE])))
    assert second.message.text == "It prints 1."
    messages = fake.requests[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user", "assistant", "tool"]
    assert "n.ipynb" in messages[1]["content"]
    assert messages[2] == {"role": "assistant", "content": "Earlier.", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "b.py"}'}}]}
    assert messages[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "ERROR: no such file"}
    # a turn with only tool calls has no content; its reasoning is not sent back by default
    assert messages[5] == {"role": "assistant", "tool_calls": [
        {"id": call.call_id, "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.py"}'}}]}
    assert messages[6] == {"role": "tool", "tool_call_id": call.call_id, "content": "print(1)"}


async def test_reasoning_replay_option(fake: FakeOpenAIChat, make_provider: Any) -> None:
    own = AssistantMessage(tool_calls=[ToolCall("c1", "read_file", {})], reasoning="mine", provider="openai_chat")
    other = AssistantMessage(text="x", reasoning="not mine", provider="openai")
    history = [UserMessage("a"), own, ToolResultMessage("c1", "read_file", "ok"), other, UserMessage("b")]
    await collect(make_provider(options={"replay_reasoning": True}), request(messages=history))
    sent = fake.requests[-1]["body"]["messages"]
    assert sent[2]["reasoning_content"] == "mine" and "reasoning_content" not in sent[4]


def image_history(images: list[dict[str, str]]) -> list[Any]:
    calls = [ToolCall("call_txt", "Plot", {}), ToolCall("call_img", "Plot", {})]
    return [UserMessage("Plot it."), AssistantMessage(text="Running.", tool_calls=calls, provider="elsewhere"),
            ToolResultMessage("call_txt", "Plot", "no image here"),
            ToolResultMessage("call_img", "Plot", "[image/png 3x2]", images=images)]


async def test_tool_result_images_follow_in_a_user_message(fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    await collect(provider, request(messages=image_history([{"mime": "image/png", "data": PNG_B64}])))
    messages = fake.requests[-1]["body"]["messages"]
    assert [m["role"] for m in messages][-4:] == ["assistant", "tool", "tool", "user"]
    plain, with_image, shown = messages[-3:]
    assert plain == {"role": "tool", "tool_call_id": "call_txt", "content": "no image here"}
    assert with_image["tool_call_id"] == "call_img" and "attached in the next user message" in with_image["content"]
    label, image = shown["content"]
    assert "call_img" in label["text"] and "Plot" in label["text"]
    assert image == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}


async def test_images_refused_or_switched_off_are_named(fake: FakeOpenAIChat, make_provider: Any) -> None:
    svg = {"mime": "image/svg+xml", "data": base64.b64encode(b"<svg/>").decode()}
    await collect(make_provider(), request(messages=image_history([svg])))
    messages = fake.requests[-1]["body"]["messages"]
    assert messages[-1]["role"] == "tool" and "not shown to you: 1 image(s) of type image/svg+xml" in str(messages)
    assert "PHN2Zy8+" not in str(messages)
    await collect(make_provider(options={"images": False}), request(messages=image_history(
        [{"mime": "image/png", "data": PNG_B64}])))
    messages = fake.requests[-1]["body"]["messages"]
    assert messages[-1]["role"] == "tool" and "configured without images" in messages[-1]["content"]
    assert PNG_B64 not in str(messages)


# ---------------------------------------------------------------- a model without tools


async def test_model_without_tools_is_a_clear_error(fake: FakeOpenAIChat, make_provider: Any) -> None:
    fake.tool_less_models = {"gemma2"}
    provider = make_provider(max_retries=2)
    err = await fails(provider, request(model="gemma2", tools=[READ_FILE]))
    assert (err.kind, err.status, err.retryable) == ("bad_request", 400, False)
    assert "does not support tool calls" in err.message and "gemma2" in err.message
    assert "must support tool calling" in err.message and "ensemble member" in err.message
    assert len(fake.requests) == 1  # answered at once, not retried
    # the same model without tools (an ensemble member, the summarizer) works
    assert finished(await collect(provider, request(model="gemma2"))).message.text == "Hello from the fake."


@pytest.mark.parametrize(("status", "server_says"), [
    (400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'),  # vLLM
    (500, "tools param requires --jinja flag"),  # llama.cpp without chat templates
    (400, "tools is not supported with this model."),  # OpenAI
])
async def test_no_tools_phrasings(status: int, server_says: str, fake: FakeOpenAIChat,
                                  provider: OpenAIChatProvider) -> None:
    fake.script(ScriptedTurn(status=status, error_message=server_says))
    err = await fails(provider, request(tools=[READ_FILE]))
    assert (err.kind, err.retryable) == ("bad_request", False)
    assert server_says in err.message and "must support tool calling" in err.message


async def test_responses_api_gets_the_same_no_tools_error() -> None:
    """The hint lives in the shared error mapping, so the Responses adapter says the same."""
    from tests.fakes.openai import FakeOpenAI

    responses_fake = FakeOpenAI().start()
    p = OpenAIResponsesProvider(responses_fake.settings())
    try:
        responses_fake.script(ScriptedTurn(status=400, error_message="llama3 does not support tools"))
        with pytest.raises(ProviderError) as info:
            [e async for e in p.stream(request(tools=[READ_FILE]))]
    finally:
        await p.aclose()
        responses_fake.stop()
    assert info.value.kind == "bad_request" and "must support tool calling" in info.value.message


# ---------------------------------------------------------------- errors


async def test_rate_limit_and_server_errors(fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    fake.script(ScriptedTurn(status=429, error_message="Rate limit reached for sk-fake-test-key"))
    err = await fails(provider)
    assert (err.kind, err.status, err.retryable, err.provider) == ("rate_limit", 429, True, "local")
    assert err.message.startswith("local: rate limited (429)") and "sk-fake-test-key" not in err.message
    fake.script(ScriptedTurn(status=500))
    err = await fails(provider)
    assert (err.kind, err.status, err.retryable) == ("server", 500, True)
    fake.script(ScriptedTurn(status=401, error_message="Incorrect API key provided"))
    assert (await fails(provider)).kind == "auth"


async def test_rate_limit_is_retried_by_the_sdk(fake: FakeOpenAIChat, make_provider: Any) -> None:
    fake.script(ScriptedTurn(status=429), ScriptedTurn(text="after retry"))
    assert finished(await collect(make_provider(max_retries=1))).message.text == "after retry"
    assert len(fake.requests) == 2


async def test_mid_stream_error_payloads(fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    fake.stream_error = {"object": "error", "message": "prompt too long", "type": "BadRequestError", "code": 400}
    err = await fails(provider)
    assert (err.kind, err.status, err.retryable) == ("bad_request", 400, False) and "prompt too long" in err.message
    fake.stream_error = {"message": "Slow down", "type": "requests", "code": "rate_limit_exceeded"}
    err = await fails(provider)
    assert (err.kind, err.retryable) == ("rate_limit", True)


async def test_cut_and_unfinished_streams(fake: FakeOpenAIChat, provider: OpenAIChatProvider) -> None:
    fake.script(ScriptedTurn(text="this answer never completes", chunks=6, cut_after=3))
    err = await fails(provider)
    assert (err.kind, err.retryable) == ("stream", True)
    fake.finish_reason = ""  # a clean end of the body, but no finish_reason: not a complete answer
    fake.script(ScriptedTurn(text="half an answer"))
    err = await fails(provider)
    assert err.kind == "stream" and "without a finish_reason" in err.message
    fake.finish_reason = None
    fake.script(ScriptedTurn(text="x", malformed=True))
    assert (await fails(provider)).kind == "stream"


async def test_hang_times_out(fake: FakeOpenAIChat, make_provider: Any) -> None:
    fake.script(ScriptedTurn(text="too late", delay=3))
    err = await fails(make_provider(timeout=0.5))
    assert (err.kind, err.retryable) == ("timeout", True)


async def test_connection_refused() -> None:
    p = OpenAIChatProvider(ProviderSettings("local", "openai", api="chat_completions",
                                            base_url="http://127.0.0.1:1/v1", timeout=2, max_retries=0))
    try:
        err = await fails(p)
    finally:
        await p.aclose()
    assert (err.kind, err.retryable) == ("connection", True)


# ---------------------------------------------------------------- configuration


async def test_api_option_selects_the_adapter() -> None:
    settings = build_settings({"local": {"kind": "openai", "api": "chat_completions", "base_url": "http://h/v1"},
                               "responses": {"kind": "openai", "api": "responses", "base_url": "http://h/v1"}})
    pool = ProviderPool(settings)
    try:
        assert isinstance(pool.get("local"), OpenAIChatProvider)
        assert isinstance(pool.get("responses"), OpenAIResponsesProvider)
        assert isinstance(pool.get("openai"), OpenAIResponsesProvider)  # the default
    finally:
        await pool.aclose()


def test_bad_api_values_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"api 'chat' for kind 'openai' must be one of \['responses', "
                                         r"'chat_completions'\]"):
        build_settings({"local": {"kind": "openai", "api": "chat"}})
    with pytest.raises(ValueError, match="api 'chat_completions' for kind 'anthropic' must be left out"):
        build_settings({"anthropic": {"api": "chat_completions"}})
    pool = ProviderPool({"x": ProviderSettings("x", "openai", api="nope", base_url="http://h/v1")})
    with pytest.raises(ProviderError) as info:
        pool.get("x")
    assert info.value.kind == "config" and "api 'nope'" in info.value.message


# ---------------------------------------------------------------- the agent loop on both APIs


@pytest.fixture
async def agent_on(fakes: dict[str, Any], fake: FakeOpenAIChat, tmp_path: Path) -> AsyncIterator[Any]:
    """``agent_on("responses" | "chat_completions", model)``: an IDEAgent whose main model is served by
    the Responses fake or the Chat Completions fake, configured as a user writes it."""
    agents: list[IDEAgent] = []

    def make(api: str, model: str = "gpt-5") -> tuple[IDEAgent, Any]:
        server = fakes["openai"] if api == "responses" else fake
        values = dataclasses.asdict(server.settings(api=api))
        values.pop("name")
        config = Config({"IDEAgent": {"providers": {"local": values}, "main_model": f"local:{model}",
                                      "enable_memory_compaction": False}})
        agents.append(IDEAgent(session_id=f"test-{api}", workspace_dir=tmp_path, config=config))
        return agents[-1], server

    yield make
    for agent in agents:
        await agent.cleanup()


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_agent_tool_round_trip_on_both_apis(api: str, agent_on: Any, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("secret=7\n")
    agent, server = agent_on(api)
    server.script(
        ScriptedTurn(reasoning="Read it.", tool_calls=[ScriptedTool("Read", {"path": "data.txt"})],
                     input_tokens=1000, output_tokens=50),
        ScriptedTurn(text="The file says secret=7.", chunks=3, input_tokens=1200, output_tokens=20),
    )
    events = [e async for e in agent.run("What is in data.txt?")]
    assert (events[-1]["type"], events[-1]["reason"]) == ("done", "completed")
    [call] = of_type(events, "tool_call")
    [result] = of_type(events, "tool_result")
    assert call["name"] == "Read" and call["arguments"] == {"path": "data.txt"}
    assert result["call_id"] == call["call_id"] and "secret=7" in result["output"]
    assert "".join(e["text"] for e in of_type(events, "text_delta")) == "The file says secret=7."
    assert "".join(e["text"] for e in of_type(events, "reasoning_delta")) == "Read it."
    first, second = of_type(events, "usage")
    assert (first["input_tokens"], first["output_tokens"]) == (1000, 50)
    assert first["cost_usd"] == pytest.approx((1000 * 1.25 + 50 * 10.0) / 1e6)  # priced as gpt-5
    assert second["session_cost_usd"] == pytest.approx(first["cost_usd"] + second["cost_usd"])
    assert len(server.requests) == 2 and "secret=7" in str(server.requests[1]["body"])
    assert [type(m).__name__ for m in agent.history] == [
        "UserMessage", "AssistantMessage", "ToolResultMessage", "AssistantMessage"]


async def test_agent_on_an_unpriced_local_model_with_an_image_tool(agent_on: Any) -> None:
    """A local model's name is in no price table: cost None, no crash; a tool's image reaches the model."""

    class PlotTool(Tool):
        name = "Plot"
        description = "Make a plot."

        async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
            return ToolResult("[image/png 3x2]", images=[ToolImage("image/png", PNG_B64)])

    agent, server = agent_on("chat_completions", "qwen3-coder:30b")
    agent.tools.register(PlotTool())
    server.script(ScriptedTurn(tool_calls=[ScriptedTool("Plot", {})]), ScriptedTurn(text="grey"))
    events = [e async for e in agent.run("plot")]
    assert events[-1]["reason"] == "completed"
    assert all(u["cost_usd"] is None for u in of_type(events, "usage"))
    last = server.requests[1]["body"]["messages"][-1]
    assert last["role"] == "user" and last["content"][1]["image_url"]["url"].endswith(PNG_B64)


async def test_agent_reports_a_tool_less_model(agent_on: Any, fake: FakeOpenAIChat) -> None:
    fake.tool_less_models = {"phi3"}
    agent, _ = agent_on("chat_completions", "phi3")
    events = [e async for e in agent.run("hello")]
    [error] = of_type(events, "error")
    assert error["kind"] == "bad_request" and "must support tool calling" in error["message"]
    assert events[-1]["reason"] == "error"
