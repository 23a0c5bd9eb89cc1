"""ConsultEnsemble end to end: real SDKs -> the four wire-level fakes -> member events and a verdict.

The default roster is used as is (its models are the fakes' test models), so these tests also prove
the default reasoning options reach each API. The synthesizer (openai:o3 by default) shares the OpenAI
fake with the OpenAI member: its request always arrives after every member has answered or failed,
so the OpenAI fake is scripted member turn first, synthesis second.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jupyterlab_ide_agent.ensemble import (
    Ensemble,
    MemberSpec,
    Verdict,
    members_from_config,
    synthesizer_from_config,
)
from jupyterlab_ide_agent.ensemble.config import DEFAULT_MEMBERS
from jupyterlab_ide_agent.ensemble.prompts import parse_synthesis
from jupyterlab_ide_agent.providers.base import Usage
from jupyterlab_ide_agent.providers.prices import PriceTable
from jupyterlab_ide_agent.providers.registry import ProviderPool, build_settings
from jupyterlab_ide_agent.tools.base import ToolContext, ToolRegistry
from jupyterlab_ide_agent.tools.ensemble import ConsultEnsemble
from tests.conftest import providers_config
from tests.fakes.base import ScriptedTool, ScriptedTurn

KINDS = ["openai", "anthropic", "xai", "gemini"]
SYNTHESIS = """## Plan
1. Profile the loader first.
2. Switch to memory-mapped reads.

## Agreements
- openai, anthropic: the loader is the bottleneck.
- all: keep the current file format.

## Disagreements
- xai wants a rewrite in Rust; the plan keeps Python.
"""


class Recorder:
    """An ``emit`` that keeps every event as ``{"type": ..., **fields}``."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def __call__(self, type_: str, fields: dict[str, Any]) -> None:
        self.events.append({"type": type_, **fields})


@pytest.fixture
async def make_pool(fakes: dict[str, Any]) -> Any:
    """``make_pool(edit)``: a pool on the fakes; ``edit(config)`` may change the provider config."""
    pools: list[ProviderPool] = []

    def make(edit: Any = None) -> ProviderPool:
        config = providers_config(fakes)
        if edit:
            edit(config)
        pools.append(ProviderPool(build_settings(config)))
        return pools[-1]

    yield make
    for pool in pools:
        await pool.aclose()


def ensemble(pool: ProviderPool, timeouts: dict[str, float] | None = None, **kw: Any) -> Ensemble:
    members = [replace(m, timeout=(timeouts or {}).get(m.name, 10.0)) for m in members_from_config(None)]
    return Ensemble(pool, PriceTable(), members, replace(synthesizer_from_config(None), timeout=10.0), **kw)


def answer(kind: str, **kw: Any) -> ScriptedTurn:
    return ScriptedTurn(text=f"{kind} recommends plan {kind.upper()}: step one, step two.",
                        reasoning=f"{kind} weighs the options.", chunks=4, **kw)


def member_events(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "ensemble_member" and e["member"] == name]


def assert_valid_order(events: list[dict[str, Any]], verdict: Verdict) -> None:
    """Verdict last and once; per member started first, one finished/failed last, deltas between;
    each member's streamed text is exactly its answer."""
    assert events[-1]["type"] == "ensemble_verdict"
    assert [e["type"] for e in events].count("ensemble_verdict") == 1
    assert len({e["consultation_id"] for e in events}) == 1
    names = [m.spec.name for m in verdict.members] + (["synthesizer"] if verdict.synthesizer else [])
    assert {e["member"] for e in events if e["type"] == "ensemble_member"} == set(names)
    results = {m.spec.name: m for m in verdict.members}
    if verdict.synthesizer:
        results["synthesizer"] = verdict.synthesizer
    for name in names:
        states = [e["state"] for e in member_events(events, name)]
        assert states[0] == "started", (name, states)
        assert states[-1] in ("finished", "failed") and states[-1] == ("finished" if results[name].ok else "failed")
        assert set(states[1:-1]) <= {"text", "reasoning"}, (name, states)
        text = "".join(e["text"] for e in member_events(events, name) if e["state"] == "text")
        assert text == results[name].text
    synth = member_events(events, "synthesizer")
    if synth:  # the synthesizer starts only after every member has ended
        first = events.index(synth[0])
        assert all(events.index(member_events(events, n)[-1]) < first for n in names if n != "synthesizer")


def assert_costs_consistent(verdict: Verdict) -> None:
    prices = PriceTable()
    data = verdict.to_dict()
    parts = [*data["members"], *([data["synthesizer"]] if data["synthesizer"] else [])]
    for part in parts:
        model = part["model"].split(":", 1)[1]
        assert part["cost_usd"] == pytest.approx(prices.cost(model, Usage(**part["usage"])))
    assert data["cost_usd"] == pytest.approx(sum(p["cost_usd"] or 0 for p in parts))


async def test_four_members_run_concurrently_and_synthesize(fakes: Any, make_pool: Any) -> None:
    delays = {"openai": 0.5, "anthropic": 1.0, "xai": 1.5, "gemini": 2.0}
    for kind in KINDS:
        fakes[kind].script(answer(kind, delay=delays[kind], input_tokens=1000, output_tokens=200))
    fakes["openai"].script(ScriptedTurn(text=SYNTHESIS, chunks=6, input_tokens=3000, output_tokens=400))
    recorder = Recorder()
    pool = make_pool()
    for kind in KINDS:  # import the SDKs outside the measured time (a server does it once)
        pool.get(kind)
    ens = ensemble(pool)
    started = time.monotonic()
    verdict = await ens.consult("How do I make the loader faster?", "loader.py reads 2 GB per epoch.", recorder)
    wall = time.monotonic() - started
    assert wall < sum(delays.values()), "members must run concurrently"

    assert verdict.status == "ok" and not verdict.missing
    assert verdict.plan.startswith("1. Profile the loader first.") and "memory-mapped" in verdict.plan
    assert verdict.agreements == [
        "openai, anthropic: the loader is the bottleneck.",
        "all: keep the current file format.",
    ]
    assert verdict.disagreements == ["xai wants a rewrite in Rust; the plan keeps Python."]
    assert_valid_order(recorder.events, verdict)
    assert recorder.events[-1] == {"type": "ensemble_verdict", **verdict.to_dict()}
    assert_costs_consistent(verdict)
    assert all(m.usage.input_tokens == 1000 for m in verdict.members)
    assert verdict.cost_usd > 0

    # each member got the question with its default reasoning options; the synthesizer got all answers
    member_req, synth_req = (r["body"] for r in fakes["openai"].requests)
    assert member_req["model"] == "gpt-5" and member_req["reasoning"]["effort"] == "high"
    assert "loader.py reads 2 GB" in str(member_req["input"])
    assert fakes["anthropic"].requests[0]["body"]["thinking"]["budget_tokens"] == 10_000
    assert fakes["gemini"].requests[0]["body"]["generationConfig"]["thinkingConfig"]["thinking_budget"] == -1
    assert "reasoning_effort" not in fakes["xai"].requests[0]["body"]  # grok-4 models refuse it
    assert synth_req["model"] == "o3" and synth_req["reasoning"]["effort"] == "high"
    for kind in KINDS:
        assert f"{kind} recommends plan {kind.upper()}" in str(synth_req["input"])


async def test_failing_and_hanging_members_are_named_in_the_verdict(fakes: Any, make_pool: Any) -> None:
    fakes["openai"].script(ScriptedTurn(status=500, error_message="upstream exploded"),
                           ScriptedTurn(text=SYNTHESIS))
    fakes["xai"].script(answer("xai", delay=4.0))  # past its 1 s timeout (the SDK's is 5 s)
    fakes["anthropic"].script(answer("anthropic"))
    fakes["gemini"].script(answer("gemini"))
    recorder = Recorder()
    started = time.monotonic()
    verdict = await ensemble(make_pool(), timeouts={"xai": 1.0}).consult("Which queue?", None, recorder)
    assert time.monotonic() - started < 4.0, "a hung member must not hold the ensemble"
    assert verdict.status == "ok"
    missing = {m["name"]: m["reason"] for m in verdict.missing}
    assert set(missing) == {"openai", "xai"}
    assert "500" in missing["openai"] and "upstream exploded" in missing["openai"]
    assert missing["xai"] == "timeout after 1 s"
    assert_valid_order(recorder.events, verdict)
    [failed_xai] = [e for e in member_events(recorder.events, "xai") if e["state"] == "failed"]
    assert failed_xai["reason"] == "timeout after 1 s"
    # the synthesizer was told who is missing and why; so is the main model
    synth_input = str(fakes["openai"].requests[1]["body"]["input"])
    assert "Members who did not answer" in synth_input and "timeout after 1 s" in synth_input
    assert "anthropic recommends" in synth_input and "xai recommends" not in synth_input
    text = verdict.to_text()
    assert text.index("## Plan") < text.index("Missing:")
    assert "openai (server" in text and "xai (timeout after 1 s)" in text


async def test_member_without_key_fails_fast_without_a_request(fakes: Any, make_pool: Any,
                                                               monkeypatch: Any) -> None:
    monkeypatch.delenv("IDE_AGENT_TEST_NO_KEY", raising=False)

    def drop_key(config: dict[str, Any]) -> None:
        config["anthropic"].update(api_key=None, api_key_env="IDE_AGENT_TEST_NO_KEY")

    for kind in ["openai", "xai", "gemini"]:
        fakes[kind].script(answer(kind))
    fakes["openai"].script(ScriptedTurn(text=SYNTHESIS))
    recorder = Recorder()
    verdict = await ensemble(make_pool(drop_key)).consult("Q?", None, recorder)
    assert verdict.status == "ok"
    [missing] = verdict.missing
    assert missing["name"] == "anthropic"
    assert missing["reason"].startswith("missing key: set IDE_AGENT_TEST_NO_KEY")
    assert fakes["anthropic"].requests == []
    assert_valid_order(recorder.events, verdict)


async def test_every_member_failing_gives_a_clear_error(fakes: Any, make_pool: Any, tmp_path: Path) -> None:
    fakes["openai"].script(ScriptedTurn(status=500, error_message="boom"))
    fakes["anthropic"].script(ScriptedTurn(status=529, error_message="overloaded now"))
    fakes["xai"].script(ScriptedTurn(delay=3.0))
    fakes["gemini"].script(ScriptedTurn(status=429, error_message="slow down"))
    recorder = Recorder()
    tool = ConsultEnsemble(ensemble(make_pool(), timeouts={"xai": 0.5}))
    result = await ToolRegistry([tool]).run("ConsultEnsemble", {"question": "Q?"},
                                            ToolContext(root=tmp_path, session_id="s", emit=recorder))
    assert result.is_error
    assert "every member failed" in result.output
    for name, words in {"openai": "500", "anthropic": "overloaded", "xai": "timeout after 0.5 s",
                        "gemini": "429"}.items():
        assert any(name in line and words in line for line in result.output.splitlines()), (name, result.output)
    assert len(fakes["openai"].requests) == 1, "no synthesis without answers"
    verdict_event = recorder.events[-1]
    assert verdict_event["type"] == "ensemble_verdict" and verdict_event["status"] == "failed"
    assert verdict_event["error"] == result.output and result.data == {
        k: v for k, v in verdict_event.items() if k != "type"}
    assert {m["name"] for m in verdict_event["missing"]} == set(KINDS)


async def test_synthesizer_failure_degrades_to_the_members_answers(fakes: Any, make_pool: Any) -> None:
    for kind in KINDS:
        fakes[kind].script(answer(kind))
    fakes["openai"].script(ScriptedTurn(status=500, error_message="synth down"))
    recorder = Recorder()
    verdict = await ensemble(make_pool()).consult("Q?", None, recorder)
    assert verdict.status == "degraded"
    assert "synth down" in (verdict.note or "") and "openai:o3" in (verdict.note or "")
    for kind in KINDS:
        assert f"{kind} recommends plan {kind.upper()}" in verdict.plan
    assert_valid_order(recorder.events, verdict)
    assert member_events(recorder.events, "synthesizer")[-1]["state"] == "failed"
    text = verdict.to_text()
    assert "degraded" in text and "synth down" in text and "gemini recommends" in text


async def test_deltas_are_coalesced_but_still_stream(fakes: Any, make_pool: Any) -> None:
    words = " ".join(f"w{i}" for i in range(40))
    fakes["gemini"].script(ScriptedTurn(text=words, chunks=40, chunk_delay=0.02))
    fakes["openai"].script(ScriptedTurn(text=SYNTHESIS))
    pool = make_pool()
    gemini_only = [m for m in members_from_config(None) if m.name == "gemini"]
    ens = Ensemble(pool, PriceTable(), gemini_only, synthesizer_from_config(None), flush_interval=0.1)
    recorder = Recorder()
    verdict = await ens.consult("Q?", None, recorder)
    deltas = [e for e in member_events(recorder.events, "gemini") if e["state"] == "text"]
    assert 1 < len(deltas) < 40, "coalesced, yet more than one event while it streams"
    assert "".join(d["text"] for d in deltas) == words == verdict.members[0].text


async def test_agent_calls_the_ensemble_as_a_tool(fakes: Any, make_agent: Any) -> None:
    """Main model (Anthropic fake) -> ConsultEnsemble -> members + synthesis -> answer using the plan.
    The Anthropic fake serves the main model and the Anthropic member, in arrival order."""
    agent = make_agent("anthropic", ensemble_timeout=10.0)  # the agent registers ConsultEnsemble itself
    assert isinstance(agent.tools.get("ConsultEnsemble"), ConsultEnsemble)
    fakes["anthropic"].script(
        ScriptedTurn(tool_calls=[ScriptedTool("ConsultEnsemble", {"question": "How to speed up the loader?",
                                                                  "context": "loader.py, 2 GB"})]),
        answer("anthropic"),
        ScriptedTurn(text="Following the panel: profile first, then memory-map."),
    )
    for kind in ["openai", "xai", "gemini"]:
        fakes[kind].script(answer(kind))
    fakes["openai"].script(ScriptedTurn(text=SYNTHESIS))

    events = [e async for e in agent.run("My training loader is slow. Ask the panel.")]
    types = [e["type"] for e in events]
    call, result = types.index("tool_call"), types.index("tool_result")
    # the main model's usage event closes its step; then only the ensemble's events until the result
    between = [e for e in events[call + 1 : result] if e["type"] != "usage"]
    assert {e["type"] for e in between} == {"ensemble_member", "ensemble_verdict"}
    assert between[-1]["type"] == "ensemble_verdict" and between[-1]["status"] == "ok"
    assert all(e["type"] not in ("ensemble_member", "ensemble_verdict") for e in events[result:])
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and events[-1]["reason"] == "completed"
    tool_result = events[result]
    assert not tool_result["is_error"] and tool_result["output"].startswith("# Ensemble verdict (ok)")
    assert tool_result["data"]["plan"] == between[-1]["plan"]

    main_requests = [r["body"] for r in fakes["anthropic"].requests if r["body"].get("tools")]
    assert len(main_requests) == 2
    assert "memory-mapped reads" in str(main_requests[1]["messages"]), "the main model saw the plan"
    member_request = next(r["body"] for r in fakes["anthropic"].requests if not r["body"].get("tools"))
    assert "My training loader is slow" in str(member_request["messages"]), "the recent conversation went along"
    assert "loader.py, 2 GB" in str(member_request["messages"])
    assert "".join(e["text"] for e in events if e["type"] == "text_delta") == \
        "Following the panel: profile first, then memory-map."


async def test_cancel_during_consultation_stops_members_at_once(fakes: Any, make_agent: Any) -> None:
    members = [m for m in DEFAULT_MEMBERS if m["name"] != "anthropic"]
    agent = make_agent("anthropic", ensemble_members=members, ensemble_timeout=30.0)
    fakes["anthropic"].script(ScriptedTurn(tool_calls=[ScriptedTool("ConsultEnsemble", {"question": "Q?"})]))
    for kind in ["openai", "xai", "gemini"]:
        fakes[kind].script(ScriptedTurn(text="slow", delay=4.0))
    events = []
    started = time.monotonic()
    async for event in agent.run("go"):
        events.append(event)
        if event["type"] == "ensemble_member" and event["state"] == "started":
            agent.cancel()
    assert time.monotonic() - started < 3.0
    assert events[-1]["reason"] == "cancelled"
    assert not [t for t in asyncio.all_tasks() if "_ask" in repr(t.get_coro())], "member tasks left running"


async def test_unknown_member_subset_is_a_readable_error(make_pool: Any, tmp_path: Path) -> None:
    tool = ConsultEnsemble(ensemble(make_pool()))
    result = await ToolRegistry([tool]).run("ConsultEnsemble", {"question": "Q?", "members": ["gpt"]},
                                            ToolContext(root=tmp_path, session_id="s"))
    assert result.is_error and "gpt" in result.output and "openai, anthropic, xai, gemini" in result.output


async def test_member_subset_asks_only_those(fakes: Any, make_pool: Any, tmp_path: Path) -> None:
    fakes["gemini"].script(answer("gemini"))
    fakes["openai"].script(ScriptedTurn(text=SYNTHESIS))
    tool = ConsultEnsemble(ensemble(make_pool()))
    result = await ToolRegistry([tool]).run("ConsultEnsemble", {"question": "Q?", "members": ["gemini"]},
                                            ToolContext(root=tmp_path, session_id="s"))
    assert not result.is_error and result.data and [m["name"] for m in result.data["members"]] == ["gemini"]
    assert fakes["anthropic"].requests == [] and fakes["xai"].requests == []
    assert [r["body"]["model"] for r in fakes["openai"].requests] == ["o3"]


# --- pure units ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    SYNTHESIS,
    SYNTHESIS.replace("## Plan", "**Plan:**").replace("## Agreements", "**Agreements**")
             .replace("## Disagreements", "Disagreements:"),
    SYNTHESIS.replace("## ", "### 1. ", 1).replace("## Agreements", "# Agreements between members"),
])
def test_parse_synthesis_tolerates_heading_styles(text: str) -> None:
    plan, agreements, disagreements = parse_synthesis(text)
    assert plan.startswith("1. Profile the loader first.") and plan.endswith("memory-mapped reads.")
    assert len(agreements) == 2 and disagreements == ["xai wants a rewrite in Rust; the plan keeps Python."]


def test_parse_synthesis_without_headings_keeps_everything_as_the_plan() -> None:
    text = "Plan the migration first:\n1. back up\n2. migrate"
    assert parse_synthesis(text) == (text, [], [])
    plan, agreements, disagreements = parse_synthesis(
        "## Plan\nDo it.\n## Agreements\n- a point that\n  wraps a line\n## Disagreements\n- None")
    assert (plan, agreements, disagreements) == ("Do it.", ["a point that wraps a line"], [])


def test_defaults_and_config_validation() -> None:
    defaults = members_from_config(None)
    assert [m.model for m in defaults] == ["openai:gpt-5", "anthropic:claude-opus-4-1",
                                           "xai:grok-4-fast-reasoning", "gemini:gemini-2.5-pro"]
    assert members_from_config([]) == defaults
    assert {m.timeout for m in members_from_config(None, timeout=60)} == {60.0}
    [custom] = members_from_config([{"model": "local:qwen3", "timeout": 5}], timeout=60)
    assert custom == MemberSpec(name="local", model="local:qwen3", timeout=5.0) and custom.reasoning is None
    assert defaults[0].reasoning and defaults[0].reasoning.effort == "high"
    assert defaults[3].reasoning and defaults[3].reasoning.budget_tokens == -1
    synth = synthesizer_from_config(None)
    assert synth.model == "openai:o3" and synth.effort == "high" and synth.name == "synthesizer"
    assert synthesizer_from_config({"timeout": 30}).effort == "high"
    assert synthesizer_from_config({"model": "anthropic:claude-sonnet-4-5"}).effort is None
    for bad, words in [
        ([{"name": "x"}], "'model' is required"),
        ([{"model": "mystery-model"}], "'<provider>:<model>'"),
        ([{"model": "openai:gpt-5", "temperature": 1}], "unknown keys ['temperature']"),
        ([{"model": "openai:gpt-5", "effort": "max"}], "effort must be one of"),
        ([{"model": "openai:gpt-5", "timeout": 0}], "timeout must be a positive"),
        ([{"model": "openai:gpt-5"}, {"model": "openai:o3"}], "repeated: ['openai']"),
        (["openai:gpt-5"], "ensemble_members[0]: expected a dict"),
        ({"model": "openai:gpt-5"}, "expected a list"),
    ]:
        with pytest.raises(ValueError, match=None) as info:
            members_from_config(bad)  # type: ignore[arg-type]
        assert words in str(info.value), (bad, str(info.value))
    with pytest.raises(ValueError, match="ensemble_synthesizer"):
        synthesizer_from_config({"model": "nonsense"})
