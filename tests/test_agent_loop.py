"""The agent loop end to end: real SDKs -> wire-level fakes -> events, tools and history."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jupyterlab_ide_agent.agent.messages import AssistantMessage, ToolResultMessage, UserMessage
from jupyterlab_ide_agent.tools.base import Tool, ToolContext, ToolResult
from tests.fakes.base import ScriptedTool, ScriptedTurn

KINDS = ["openai", "anthropic", "gemini", "xai"]


async def collect(agent: Any, prompt: str, **kw: Any) -> list[dict[str, Any]]:
    return [event async for event in agent.run(prompt, **kw)]


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def assert_well_formed(events: list[dict[str, Any]], session_id: str) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq must increase by one"
    assert all(e["session_id"] == session_id for e in events)
    assert events[0]["type"] == "user_message"
    assert events[-1]["type"] == "done"
    assert len(of_type(events, "done")) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_streamed_answer_with_reasoning_and_usage(kind: str, fakes: Any, make_agent: Any) -> None:
    fakes[kind].script(
        ScriptedTurn(text="The answer is 42.", reasoning="Think about it.", chunks=4, chunk_delay=0.02,
                     input_tokens=120, output_tokens=30, reasoning_tokens=10)
    )
    agent = make_agent(kind)
    events = await collect(agent, "What is the answer?")
    assert_well_formed(events, agent.session_id)
    assert "".join(e["text"] for e in of_type(events, "text_delta")) == "The answer is 42."
    assert len(of_type(events, "text_delta")) >= 2, "text must stream in several deltas"
    assert "".join(e["text"] for e in of_type(events, "reasoning_delta")) == "Think about it."
    [usage] = of_type(events, "usage")
    assert usage["input_tokens"] == 120
    assert usage["output_tokens"] >= 30
    assert usage["cost_usd"] is not None and usage["cost_usd"] > 0
    assert usage["session_cost_usd"] == pytest.approx(usage["cost_usd"])
    assert events[-1]["reason"] == "completed"
    assert isinstance(agent.history[-1], AssistantMessage)
    assert agent.history[-1].text == "The answer is 42."


@pytest.mark.parametrize("kind", KINDS)
async def test_tool_call_round_trip(kind: str, fakes: Any, make_agent: Any, tmp_path: Any) -> None:
    (tmp_path / "data.txt").write_text("secret=7\n")
    fakes[kind].script(
        ScriptedTurn(tool_calls=[ScriptedTool("Read", {"path": "data.txt"})]),
        ScriptedTurn(text="The file says secret=7."),
    )
    agent = make_agent(kind)
    events = await collect(agent, "What is in data.txt?")
    assert_well_formed(events, agent.session_id)
    [call] = of_type(events, "tool_call")
    [result] = of_type(events, "tool_result")
    assert call["name"] == "Read" and call["arguments"] == {"path": "data.txt"}
    assert result["call_id"] == call["call_id"] and not result["is_error"]
    assert "secret=7" in result["output"]
    assert events.index(call) < events.index(result)
    assert "".join(e["text"] for e in of_type(events, "text_delta")) == "The file says secret=7."
    # the model saw the tool result: the second request carries the file's content
    assert len(fakes[kind].requests) == 2
    assert "secret=7" in str(fakes[kind].requests[1]["body"])
    assert [type(m).__name__ for m in agent.history] == [
        "UserMessage", "AssistantMessage", "ToolResultMessage", "AssistantMessage"]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_multi_turn_memory(kind: str, fakes: Any, make_agent: Any) -> None:
    fakes[kind].script(ScriptedTurn(text="Noted: your name is Ada."), ScriptedTurn(text="Ada."))
    agent = make_agent(kind)
    first = await collect(agent, "My name is Ada.")
    second = await collect(agent, "What is my name?")
    assert second[0]["seq"] == first[-1]["seq"] + 1, "seq continues across turns"
    body = str(fakes[kind].requests[1]["body"])
    assert "My name is Ada." in body and "Noted: your name is Ada." in body


async def test_provider_error_ends_turn_cleanly_and_next_turn_works(fakes: Any, make_agent: Any) -> None:
    fakes["openai"].script(ScriptedTurn(status=500, error_message="upstream exploded"), ScriptedTurn(text="ok now"))
    agent = make_agent("openai")
    events = await collect(agent, "hi")
    [error] = of_type(events, "error")
    assert error["status"] == 500 and error["retryable"] is True and error["kind"] == "server"
    assert events[-1]["reason"] == "error"
    events = await collect(agent, "again")
    assert events[-1]["reason"] == "completed"


async def test_cancel_mid_stream_keeps_partial_text(fakes: Any, make_agent: Any) -> None:
    fakes["openai"].script(
        ScriptedTurn(text="one two three four five six seven eight", chunks=8, chunk_delay=0.3),
        ScriptedTurn(text="fine"),
    )
    agent = make_agent("openai")
    events = []
    async for event in agent.run("count"):
        events.append(event)
        if event["type"] == "text_delta":
            assert agent.cancel()
    assert events[-1] == {**events[-1], "type": "done", "reason": "cancelled"}
    partial = agent.history[-1]
    assert isinstance(partial, AssistantMessage) and partial.interrupted
    assert partial.text and "eight" not in partial.text
    assert not agent.running and not agent.cancel()
    events = await collect(agent, "continue")
    assert events[-1]["reason"] == "completed"
    assert partial.text in str(fakes["openai"].requests[-1]["body"])


class SlowTool(Tool):
    name = "Slow"
    description = "Sleeps."
    parameters = {"type": "object", "properties": {}, "additionalProperties": False}

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.started.set()
        await asyncio.sleep(30)
        return ToolResult("never")


async def test_cancel_during_tool_gives_every_call_a_result(fakes: Any, make_agent: Any) -> None:
    fakes["anthropic"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("Slow", {}), ScriptedTool("Slow", {})]),
        ScriptedTurn(text="after cancel"),
    )
    agent = make_agent("anthropic")
    slow = SlowTool()
    agent.tools.register(slow)

    async def cancel_when_started() -> None:
        await slow.started.wait()
        agent.cancel()

    canceller = asyncio.create_task(cancel_when_started())
    events = await asyncio.wait_for(collect(agent, "go slow"), 10)
    await canceller
    assert events[-1]["reason"] == "cancelled"
    results = of_type(events, "tool_result")
    assert len(results) == 2 and all(r["is_error"] for r in results)
    answered = {m.call_id for m in agent.history if isinstance(m, ToolResultMessage)}
    assert {c["call_id"] for c in of_type(events, "tool_call")} == answered
    # the next request is valid for Anthropic: both tool_use ids have a tool_result
    events = await collect(agent, "and now?")
    assert events[-1]["reason"] == "completed"
    body = str(fakes["anthropic"].requests[-1]["body"])
    assert all(call_id in body for call_id in answered)


async def test_tool_errors_reach_the_model(fakes: Any, make_agent: Any) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("NoSuchTool", {}), ScriptedTool("Read", {"path": "../etc/passwd"})]),
        ScriptedTurn(text="I could not."),
    )
    agent = make_agent("openai")
    events = await collect(agent, "try")
    unknown, escape = of_type(events, "tool_result")
    assert unknown["is_error"] and "Unknown tool" in unknown["output"]
    assert escape["is_error"] and "outside" in escape["output"]
    assert events[-1]["reason"] == "completed"


async def test_max_steps_stops_a_looping_model(fakes: Any, make_agent: Any) -> None:
    fakes["openai"].default_turn = ScriptedTurn(tool_calls=[ScriptedTool("ElapsedTime", {})])
    try:
        agent = make_agent("openai", max_steps=3)
        events = await collect(agent, "loop forever")
    finally:
        fakes["openai"].default_turn = ScriptedTurn(text="Hello from the fake.")
    assert events[-1]["reason"] == "max_steps"
    assert len(of_type(events, "tool_result")) == 3


async def test_missing_key_is_a_clear_error(make_agent: Any) -> None:
    agent = make_agent("openai", providers={"openai": {"api_key": None, "api_key_env": "NOPE_KEY",
                                                         "base_url": None}})
    events = await collect(agent, "hi")
    [error] = of_type(events, "error")
    assert "NOPE_KEY" in error["message"] and error["kind"] == "config"
    assert isinstance(agent.history[0], UserMessage)


@pytest.mark.parametrize("kind", KINDS)
async def test_editor_context_reaches_the_model(kind: str, fakes: Any, make_agent: Any) -> None:
    fakes[kind].script(ScriptedTurn(text="seen"))
    agent = make_agent(kind)
    await collect(agent, "explain this cell", context={"notebook": "analysis.ipynb", "cells": ["x = 41"]})
    body = str(fakes[kind].requests[-1]["body"])
    assert "explain this cell" in body and "analysis.ipynb" in body and "x = 41" in body


async def test_python_api_without_a_server_runs_notebooks_on_its_own_kernels(
    fakes: Any, make_agent: Any, tmp_path: Any
) -> None:
    import nbformat
    import psutil

    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("JupyterNotebook", {
            "operation": "insert_execute_code_cell", "notebook_path": "nb/standalone.ipynb",
            "source": "import os\nos.getpid()"})]),
        ScriptedTurn(text="done"),
    )
    agent = make_agent("openai")
    events = await collect(agent, "run something")
    [result] = of_type(events, "tool_result")
    assert not result["is_error"], result["output"]
    kernel_pid = int(nbformat.read(tmp_path / "nb" / "standalone.ipynb", as_version=4)
                     .cells[0].outputs[0]["data"]["text/plain"])
    assert psutil.pid_exists(kernel_pid)
    await agent.cleanup()
    psutil.wait_procs([psutil.Process(kernel_pid)], timeout=10) if psutil.pid_exists(kernel_pid) else None
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE


async def test_api_keys_printed_by_a_tool_are_redacted(fakes: Any, make_agent: Any, tmp_path: Any) -> None:
    key = fakes["openai"].settings().api_key
    (tmp_path / "env.txt").write_text(f"OPENAI_API_KEY={key}\n")
    fakes["openai"].script(ScriptedTurn(tool_calls=[ScriptedTool("Read", {"path": "env.txt"})]),
                           ScriptedTurn(text="ok"))
    agent = make_agent("openai")
    events = await collect(agent, "show env")
    [result] = of_type(events, "tool_result")
    assert key not in str(events) and "[redacted API key]" in result["output"]
    assert key not in str(fakes["openai"].requests[1]["body"])


@pytest.mark.parametrize("decision", ["run", "skip"])
async def test_approval_mode_asks_before_code_runs(decision: str, fakes: Any, make_agent: Any,
                                                   tmp_path: Any) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("ListDir", {}),
                                 ScriptedTool("ExecuteScript", {"command": "echo hi > made.txt"})]),
        ScriptedTurn(text="done"),
    )
    agent = make_agent("openai", approval_mode="code")
    events = []
    async for event in agent.run("make a file"):
        events.append(event)
        if event["type"] == "approval_request":
            assert event["name"] == "ExecuteScript", "only code-running tools ask"
            assert agent.approve(event["call_id"], decision)
            assert not agent.approve(event["call_id"], decision), "a decision counts once"
    assert len(of_type(events, "approval_request")) == 1
    result = of_type(events, "tool_result")[-1]
    if decision == "run":
        await asyncio.sleep(0.5)
        assert (tmp_path / "made.txt").exists() and not result["is_error"]
    else:
        assert not (tmp_path / "made.txt").exists()
        assert result["is_error"] and "chose not to run" in result["output"]
        assert "chose not to run" in str(fakes["openai"].requests[-1]["body"])


async def test_unanswered_approval_times_out_and_cancel_releases_it(fakes: Any, make_agent: Any) -> None:
    fakes["openai"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("ExecuteScript", {"command": "true"})]), ScriptedTurn(text="ok"),
        ScriptedTurn(tool_calls=[ScriptedTool("ExecuteScript", {"command": "true"})]),
    )
    agent = make_agent("openai", approval_mode="code", approval_timeout=0.3)
    events = await collect(agent, "run it")
    assert "No approval within" in of_type(events, "tool_result")[0]["output"]
    events = []
    async for event in agent.run("again"):
        events.append(event)
        if event["type"] == "approval_request":
            agent.cancel()
    assert events[-1]["reason"] == "cancelled" and agent.approvals.pending() == []
    assert of_type(events, "tool_result")[-1]["data"] == {"approval": "cancelled"}


async def test_long_session_compacts_before_the_call_and_stays_valid(fakes: Any, make_agent: Any,
                                                                     tmp_path: Any) -> None:
    from jupyterlab_ide_agent.memory.groups import pairing_problems

    (tmp_path / "big.txt").write_text("data line\n" * 200)
    agent = make_agent("anthropic", context_budget=8000, keep_recent=4, summarizer_model="openai:o3")
    fakes["openai"].default_turn = ScriptedTurn(text="Summary: the user read big.txt several times.")
    compactions = []
    try:
        for i in range(8):
            fakes["anthropic"].script(
                ScriptedTurn(tool_calls=[ScriptedTool("Read", {"path": "big.txt"})], input_tokens=0),
                ScriptedTurn(text=f"Read it, round {i}.", input_tokens=0),
            )
            events = await collect(agent, f"read big.txt again ({i})")
            assert events[-1]["reason"] == "completed"
            compactions += of_type(events, "compaction")
            assert pairing_problems(agent.history) == []
    finally:
        fakes["openai"].default_turn = ScriptedTurn(text="Hello from the fake.")
    assert not any(c["degraded"] for c in compactions), compactions
    assert compactions, "the history outgrew the budget and was compacted"
    first = compactions[0]
    assert first["tokens_after"] < first["tokens_before"]
    assert first["summarizer_model"] == "openai:o3"
    # the summarizer's request went to o3; the main model then saw the summary
    assert any(r["body"].get("model") == "o3" for r in fakes["openai"].requests)
    assert "the user read big.txt several times" in str(fakes["anthropic"].requests[-1]["body"])
    assert agent.cost_usd > 0
