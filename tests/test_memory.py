"""Token counting and hierarchical compaction, with the summarizer driven through the real OpenAI
adapter against the wire-level fake (and the main model through the Anthropic/OpenAI adapters)."""

from __future__ import annotations

import itertools
import json
import random
import sys
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench.prompt_budget import simulate
from jupyterlab_ide_agent.agent.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    UserMessage,
    message_from_dict,
    message_to_dict,
)
from jupyterlab_ide_agent.memory import groups as g
from jupyterlab_ide_agent.memory import tokens as tk
from jupyterlab_ide_agent.memory.compactor import (
    SUMMARIZER_SYSTEM,
    Compactor,
    estimated_savings,
    should_compact,
)
from jupyterlab_ide_agent.memory.tokens import (
    PromptMeter,
    TokenCounter,
    estimate_text_tokens,
)
from jupyterlab_ide_agent.providers.anthropic_messages import to_anthropic_messages
from jupyterlab_ide_agent.providers.base import ToolSpec
from jupyterlab_ide_agent.providers.prices import PriceTable
from jupyterlab_ide_agent.providers.registry import ProviderPool
from tests.fakes.base import ScriptedTurn

SYSTEM = "You are an IDE agent."
TOOLS = [ToolSpec("Read", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}})]
SUMMARY = "Goals: fix train.py. Files: src/model.py, notebooks/eda.ipynb. Variables: df, lr=0.01. Open: rerun."


@pytest.fixture
async def pool(fakes: dict[str, Any]) -> AsyncIterator[ProviderPool]:
    p = ProviderPool({name: fake.settings() for name, fake in fakes.items()})
    yield p
    await p.aclose()


def make_turn(i: int, steps: int = 2, calls: int = 1, size: int = 400) -> list[Message]:
    """One user turn: request, ``steps`` tool-call groups (with Anthropic replay items), final answer."""
    out: list[Message] = [UserMessage(f"Request {i}: please look at src/file_{i}.py " + "x" * size)]
    for s in range(steps):
        tcs = [ToolCall(f"c{i}_{s}_{k}", "Read", {"path": f"src/file_{i}_{k}.py"}) for k in range(calls)]
        replay = [{"type": "thinking", "thinking": "plan", "signature": f"sig{i}{s}"}] + [
            {"type": "tool_use", "id": c.call_id, "name": c.name, "input": c.arguments} for c in tcs]
        out.append(AssistantMessage("", tcs, "plan", "anthropic", "claude-opus-4-1", replay))
        out += [ToolResultMessage(c.call_id, "Read", "y" * size) for c in tcs]
    out.append(AssistantMessage(f"Done with {i}. " + "z" * size, provider="anthropic", model="claude-opus-4-1",
                                replay=[{"type": "text", "text": f"Done with {i}."}]))
    return out


def history_of(turns: int, **kw: Any) -> list[Message]:
    return [m for i in range(turns) for m in make_turn(i, **kw)]


def compactor(pool: ProviderPool, **kw: Any) -> Compactor:
    args: dict[str, Any] = {"summarizer_model": "openai:o3", "context_budget": 8000, "keep_recent": 10,
                            "summary_share": 0.15, **kw}
    return Compactor(pool, PriceTable(), **args)


def assert_valid(history: list[Message], latest: UserMessage) -> None:
    """What every compacted history must satisfy for every provider."""
    head, body = g.split_head(history)
    assert g.pairing_problems(history) == []
    assert all(isinstance(m, UserMessage) for m in head)
    assert body and not isinstance(body[0], ToolResultMessage)
    assert any(m is latest for m in body), "the latest user request was lost or copied"
    turns = to_anthropic_messages(history)
    assert turns[0]["role"] == "user"
    assert all(a["role"] != b["role"] for a, b in itertools.pairwise(turns))


# --- token counting ----------------------------------------------------------------------------
def test_estimate_counts_ascii_by_chars_and_other_characters_one_each() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("a" * 35) == 10
    assert estimate_text_tokens("a" * 35 + "日本語") == 13
    counter = TokenCounter("anthropic:claude-opus-4-1")
    assert counter.method == "estimate:chars/3.5"
    msg = AssistantMessage("a" * 35, [ToolCall("c", "Read", {"path": "x"})])
    assert counter.message(msg) == tk.MESSAGE_OVERHEAD + 10 + tk.TOOL_CALL_OVERHEAD + 2 + 4  # {"path": "x"}
    assert counter.tools(TOOLS) > 10 and counter.prompt(SYSTEM, [msg], TOOLS) > counter.message(msg)
    # images are counted per image, not by their base64 size
    shot = ToolResultMessage("c", "Read", "ok", images=[{"mime": "image/png", "data": "A" * 100_000}])
    assert counter.message(shot) == counter.message(ToolResultMessage("c", "Read", "ok")) + tk.IMAGE_TOKENS
    assert "(1 image(s) shown to the agent)" in g.render_transcript([shot])
    # the context the sidebar attaches is sent, so it is counted
    assert counter.message(UserMessage("hi", {"notebook": "a.ipynb"})) > counter.message(UserMessage("hi"))


def test_tiktoken_is_used_only_from_a_local_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No cache file: no tiktoken at all. A cache file but a load that would download: the guard
    turns the download into an error and we fall back to the estimate."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tk, "_encodings", {})
    assert tk.cached_tiktoken_encoding("o200k_base") is None
    assert TokenCounter("openai:gpt-5").method.startswith("estimate")

    downloads: list[str] = []
    fake_load = types.ModuleType("tiktoken.load")
    fake_load.read_file = lambda url: downloads.append(url) or b""  # type: ignore[attr-defined]
    fake = types.ModuleType("tiktoken")
    fake.load = fake_load  # type: ignore[attr-defined]

    class Encoding:
        def encode(self, text: str, disallowed_special: Any = ()) -> list[int]:
            return list(range(len(text.split())))

    def get_encoding(name: str) -> Any:
        if name == "cl100k_base":  # a stale cache entry: tiktoken would fetch the file again
            fake_load.read_file(tk._ENCODING_URLS[name])
        return Encoding()

    fake.get_encoding = get_encoding  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tiktoken", fake)
    monkeypatch.setitem(sys.modules, "tiktoken.load", fake_load)
    for name in ("o200k_base", "cl100k_base"):
        (tmp_path / tk.tiktoken_cache_candidates(tk._ENCODING_URLS[name])[0].rsplit("/", 1)[1]).write_bytes(b"x")
    monkeypatch.setattr(tk, "_encodings", {})
    counter = TokenCounter("openai:gpt-5")
    assert counter.method == "tiktoken:o200k_base" and counter.text("three words here") == 3
    assert tk.cached_tiktoken_encoding("cl100k_base") is None and downloads == []
    assert TokenCounter("anthropic:claude-opus-4-1").method.startswith("estimate")  # not Claude's tokenizer


def test_meter_calibrates_with_the_reported_count_and_distrusts_nonsense() -> None:
    counter = TokenCounter()
    meter = PromptMeter(counter)
    history: list[Message] = history_of(3)
    meter.sent(history, SYSTEM, TOOLS)
    estimate = counter.prompt(SYSTEM, history, TOOLS)
    new = [UserMessage("and now this " * 20)]
    reported = int(estimate * 1.3)
    got = meter.measure(history + new, SYSTEM, TOOLS, reported)
    assert got == reported + int(counter.messages(new) * reported / estimate + 0.999)
    assert meter.ratio == pytest.approx(1.3, rel=0.01)
    meter.sent(history, SYSTEM, TOOLS)
    assert meter.measure(history + new, SYSTEM, TOOLS, 10) == meter.scaled(counter.prompt(SYSTEM, history + new, TOOLS))
    # a report for another history (not a continuation of the last one sent) is not used
    assert meter.measure(history_of(1), SYSTEM, TOOLS, 5) == meter.scaled(counter.prompt(SYSTEM, history_of(1), TOOLS))


# --- the seed's scenarios -------------------------------------------------------------------------
def test_should_compact_decision(pool: ProviderPool) -> None:
    assert not should_compact(7499, 10_000) and should_compact(7501, 10_000)
    assert should_compact(5001, 10_000, threshold=0.5)
    c = compactor(pool)
    assert not c.should_compact(history_of(2), SYSTEM, TOOLS)
    assert c.should_compact(history_of(30), SYSTEM, TOOLS)
    assert c.should_compact(history_of(2), SYSTEM, TOOLS, reported_input_tokens=None) is False


def test_estimated_savings(pool: ProviderPool) -> None:
    assert estimated_savings(10_000, 0.25, 4000) == 7500
    assert estimated_savings(40_000, 0.25, 4000) == 36_000  # the summary is capped
    c = compactor(pool)
    short = c.estimated_savings(history_of(1), SYSTEM, TOOLS)
    assert short["tokens_saved"] == 0 and short["messages_compacted"] == 0
    long = c.estimated_savings(history_of(30), SYSTEM, TOOLS)
    assert long["tokens_saved"] > long["tokens_before"] // 2
    assert long["messages_compacted"] + long["messages_kept"] == len(history_of(30))


async def test_no_compaction_when_short(pool: ProviderPool, fakes: dict[str, Any]) -> None:
    assert await compactor(pool).maybe_compact(history_of(2), SYSTEM, TOOLS) is None
    assert fakes["openai"].requests == []


async def test_compaction_of_a_long_history(pool: ProviderPool, fakes: dict[str, Any]) -> None:
    fakes["openai"].script(ScriptedTurn(text=SUMMARY, reasoning="r", input_tokens=5000, output_tokens=300))
    history = history_of(30)
    c = compactor(pool)
    result = await c.maybe_compact(history, SYSTEM, TOOLS)
    assert result is not None and not result.degraded
    new = result.history
    assert g.summary_level(new[0]) == 1 and SUMMARY in new[0].text
    assert result.tokens_before > 0.75 * 8000 > result.tokens_after
    assert result.messages_compacted + result.kept_messages == len(history)
    kept = history[-result.kept_messages:]
    assert result.kept_messages >= 10 and all(a is b for a, b in zip(new[1:], kept, strict=True))
    assert_valid(new, history[-5])  # the last turn's request
    assert result.summarizer_calls == 1 and result.usage.input_tokens == 5000
    assert result.cost_usd == pytest.approx((5000 * 2.0 + 300 * 8.0) / 1e6)  # o3's price
    body = fakes["openai"].requests[0]["body"]
    assert body["model"] == "o3" and body["instructions"] == SUMMARIZER_SYSTEM and "tools" not in body
    transcript = body["input"][0]["content"][0]["text"]
    assert "src/file_0_0.py" in transcript and "[assistant calls Read]" in transcript
    fields = result.event_fields()
    assert {"messages", "tokens_before", "tokens_after", "cost_usd", "level", "degraded"} <= set(fields)
    json.dumps(fields)
    # summaries survive persistence with their level
    assert g.summary_level(message_from_dict(json.loads(json.dumps(message_to_dict(new[0]))))) == 1
    assert await c.maybe_compact(new, SYSTEM, TOOLS) is None  # well under the threshold now


# --- invariants ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
async def test_cut_never_splits_a_call_from_its_result(pool: ProviderPool, fakes: dict[str, Any], seed: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(fakes["openai"], "default_turn", ScriptedTurn(text=SUMMARY))
    history = [m for i in range(rng.randint(8, 30))
               for m in make_turn(i, rng.randint(0, 4), rng.randint(1, 3), rng.choice([50, 300, 900]))]
    result = await compactor(pool, keep_recent=rng.randint(1, 25)).maybe_compact(history, SYSTEM, TOOLS)
    latest = [m for m in history if isinstance(m, UserMessage)][-1]
    if result is None:
        return
    assert_valid(result.history, latest)
    originals = {id(m) for m in history}
    for m in result.history:  # kept messages are the very objects: replay items untouched
        assert g.is_head(m) or id(m) in originals


async def test_the_latest_request_survives_a_long_tool_loop(pool: ProviderPool, fakes: dict[str, Any]) -> None:
    """One request followed by 40 tool steps: the cut passes the request, which stays verbatim
    right after the summary; the kept part then starts with an assistant turn."""
    fakes["openai"].script(ScriptedTurn(text=SUMMARY))
    turn = make_turn(99, steps=40, size=300)
    history = history_of(2) + turn
    result = await compactor(pool).maybe_compact(history, SYSTEM, TOOLS)
    assert result is not None
    new = result.history
    assert g.summary_level(new[0]) == 1 and new[1] is turn[0]
    assert isinstance(new[2], AssistantMessage)
    assert_valid(new, turn[0])


async def test_summaries_of_summaries(pool: ProviderPool, fakes: dict[str, Any]) -> None:
    fakes["openai"].script(ScriptedTurn(text=SUMMARY), ScriptedTurn(text="merged " + SUMMARY))
    older = [g.make_summary("old " * 250, 2, 40)] + [g.make_summary(f"part {i} " * 120, 1, 10) for i in range(3)]
    history = older + history_of(20)
    result = await compactor(pool).maybe_compact(history, SYSTEM, TOOLS)
    assert result is not None and result.merges == 1 and result.summarizer_calls == 2
    levels = [g.summary_level(m) for m in result.history if g.summary_level(m)]
    assert levels == [2, 2] and result.level == 2  # the four level-1 summaries became one level-2
    assert g.covered(result.history[1]) == 30 + result.messages_compacted
    merge_prompt = fakes["openai"].requests[1]["body"]["input"][0]["content"][0]["text"]
    assert "Merge them into one summary" in merge_prompt and "part 2" in merge_prompt
    assert levels == sorted(levels, reverse=True)


async def test_a_large_part_is_summarized_in_chunks(pool: ProviderPool, fakes: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Each summarizer request stays within summarizer_input_tokens; one level-1 summary per chunk."""
    monkeypatch.setattr(fakes["openai"], "default_turn", ScriptedTurn(text="short summary"))
    result = await compactor(pool, summarizer_input_tokens=1500, summary_share=0.3).maybe_compact(
        history_of(30), SYSTEM, TOOLS)
    assert result is not None and not result.degraded and result.merges == 0
    summaries = [m for m in result.history if g.summary_level(m)]
    assert len(summaries) == result.summarizer_calls >= 3
    assert sum(g.covered(s) for s in summaries) == result.messages_compacted
    sizes = [len(r["body"]["input"][0]["content"][0]["text"]) for r in fakes["openai"].requests]
    assert max(sizes) < 1500 * 3.5 + 1000  # the transcript of one chunk, plus the instructions


# --- failures -----------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", ["http500", "timeout", "empty", "unconfigured"])
async def test_summarizer_failure_degrades_to_truncation(pool: ProviderPool, fakes: dict[str, Any],
                                                         failure: str) -> None:
    kw: dict[str, Any] = {}
    if failure == "http500":
        fakes["openai"].script(ScriptedTurn(status=500, error_message="upstream exploded"))
    elif failure == "timeout":
        fakes["openai"].script(ScriptedTurn(text=SUMMARY, delay=2.0))
        kw["summarizer_timeout"] = 0.3
    elif failure == "empty":
        fakes["openai"].script(ScriptedTurn(text=""))
    else:
        kw["summarizer_model"] = "nowhere:model"
    history = history_of(30)
    result = await compactor(pool, **kw).maybe_compact(history, SYSTEM, TOOLS)
    assert result is not None and result.degraded and result.reason
    note = result.history[0]
    assert g.is_note(note) and "earlier messages were dropped because the summarizer failed" in note.text
    assert note.text.startswith(f"[Note: {result.dropped_messages} earlier messages")
    assert result.dropped_messages == result.messages_compacted > 0
    assert result.tokens_after < 0.75 * 8000
    assert_valid(result.history, history[-5])
    expected = {"http500": "upstream exploded", "timeout": "within 0.3 s", "empty": "empty summary",
                "unconfigured": "nowhere"}[failure]
    assert expected in result.reason and result.event_fields()["degraded"] is True


async def test_a_hung_summarizer_is_not_waited_for_again_at_once(pool: ProviderPool, fakes: dict[str, Any]) -> None:
    fakes["openai"].script(ScriptedTurn(text=SUMMARY, delay=2.0))
    c = compactor(pool, summarizer_timeout=0.3)
    first = await c.maybe_compact(history_of(30), SYSTEM, TOOLS)
    assert first is not None and "within 0.3 s" in (first.reason or "")
    second = await c.maybe_compact(first.history + history_of(25), SYSTEM, TOOLS)
    assert second is not None and second.degraded and "not waiting for it again" in (second.reason or "")
    assert len(fakes["openai"].requests) == 1 and g.covered(second.history[0]) == (
        first.dropped_messages + second.dropped_messages)  # one note, the counts added up
    c.timeout_backoff = 0.0
    fakes["openai"].script(ScriptedTurn(text=SUMMARY))
    third = await c.maybe_compact(second.history + history_of(25), SYSTEM, TOOLS)
    assert third is not None and not third.degraded and g.is_note(third.history[0])


async def test_a_failed_merge_keeps_the_new_summary(pool: ProviderPool, fakes: dict[str, Any]) -> None:
    fakes["openai"].script(ScriptedTurn(text=SUMMARY), ScriptedTurn(status=500, error_message="merge broke"))
    older = [g.make_summary(f"part {i} " * 250, 1, 10) for i in range(3)]
    result = await compactor(pool).maybe_compact(older + history_of(20), SYSTEM, TOOLS)
    assert result is not None and result.degraded and "merging summaries failed" in (result.reason or "")
    assert [g.summary_level(m) for m in result.history[:4]] == [1, 1, 1, 1]
    assert result.tokens_after <= 0.75 * 8000
    assert g.pairing_problems(result.history) == []


# --- long sessions through the fakes ---------------------------------------------------------------
async def test_300_turn_session_stays_under_budget(pool: ProviderPool, fakes: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fakes["openai"], "default_turn", fakes["openai"].default_turn)  # restored after
    budget = 32_000
    stats = await simulate(pool, fakes, turns=300, main="anthropic", budget=budget)
    assert stats.problems == []  # every request the Anthropic fake received was valid and complete
    assert max(stats.prompts) <= budget and max(stats.prompts) <= 0.75 * budget + 1
    assert len(stats.prompts) > 800 and len(stats.results) > 20
    assert all(r.tokens_before > 0.75 * budget for r in stats.results)  # only when past the threshold
    assert all(not r.degraded and r.summarizer_calls == 1 + r.merges for r in stats.results)
    assert stats.max_level >= 3  # summaries of summaries of summaries
    summarizer = [r["body"] for r in fakes["openai"].requests]
    assert len(summarizer) == stats.summarizer_calls  # no call the design does not account for
    for body in summarizer:
        assert body["model"] == "o3" and body["instructions"] == SUMMARIZER_SYSTEM
        assert body["reasoning"]["effort"] == "low" and "tools" not in body and len(body["input"]) == 1
    assert sum(r.usage.input_tokens for r in stats.results) == 9000 * stats.summarizer_calls


async def test_long_session_with_an_openai_main_model(pool: ProviderPool, fakes: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Responses API input: reasoning items, function_call and function_call_output stay paired."""
    monkeypatch.setattr(fakes["openai"], "default_turn", fakes["openai"].default_turn)
    stats = await simulate(pool, fakes, turns=40, main="openai", budget=24_000, seed=7)
    assert stats.problems == [] and len(stats.results) >= 3
    assert max(stats.prompts) <= 24_000
