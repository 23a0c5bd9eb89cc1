"""Prompt size per model call over a long scripted session, with the compactor on.

    python -m bench.prompt_budget [--turns 1000] [--budget 64000] [--main anthropic|openai]

A seeded generator plays a long IDE session (user requests, assistant turns with 0-4 tool-call steps,
tool results of realistic and sometimes large sizes) through the wire-level fakes and the real SDKs:
the main model is driven through its adapter, the summarizer (``openai:o3``) through the OpenAI one.
Before every model call the compactor runs, as the loop does. The fake reports, as ``input_tokens``,
the size a real tokenizer would give: our estimate times 1.15 (estimates run low on code), so the
calibration is exercised too. Every request the main fake received is checked for split tool
call/result pairs and a missing latest user request. The last line is ``max prompt / budget = X``.

Measured (1,000 turns, 2,887 model calls, budget 64,000, threshold 0.75): max prompt 47,999 tokens,
mean 32,857; 128 compactions, 146 summarizer calls (128 + 18 merges), summaries up to level 3,
0 degraded, 0 request problems; max prompt / budget = 0.750. About 20-30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from jupyterlab_ide_agent.agent.messages import Message, ToolResultMessage, UserMessage
from jupyterlab_ide_agent.memory.compactor import CompactionResult, Compactor
from jupyterlab_ide_agent.memory.groups import pairing_problems
from jupyterlab_ide_agent.providers.base import (
    Finished,
    ProviderRequest,
    ReasoningOptions,
    ToolSpec,
    Usage,
)
from jupyterlab_ide_agent.providers.prices import PriceTable
from jupyterlab_ide_agent.providers.registry import ProviderPool
from tests.fakes.base import ScriptedTool, ScriptedTurn

MODELS = {"anthropic": "claude-opus-4-1", "openai": "gpt-5"}
TRUE_RATIO = 1.15  # what the fake reports relative to our estimate
SYSTEM = "You are an IDE agent inside JupyterLab. " * 40
TOOLS = [ToolSpec(n, f"{n}: a tool of the IDE agent. " * 6,
                  {"type": "object", "properties": {"path": {"type": "string"}, "code": {"type": "string"}}})
         for n in ("Read", "Write", "Edit", "Grep", "JupyterNotebook", "ExecuteScript", "CheckProcess")]
WORDS = ["the", "model", "loss", "epoch", "notebook", "cell", "kernel", "train.py", "data", "frame", "column",
         "value", "error", "Traceback", "import", "numpy", "pandas", "torch", "def", "return", "self", "x", "y",
         "result", "shape", "batch", "config", "path", "file", "run", "process", "pid", "GPU", "accuracy", "0.913",
         "42", "fixed", "plan", "next", "step", "validation", "checkpoint", "results/metrics.json"]
SUMMARY = ("Goals: train the classifier in train.py and report validation accuracy. Decisions: use "
           "pandas for loading, batch size 64. Files: src/model.py, notebooks/analysis.ipynb. Errors: "
           "a KeyError in column 'label' was fixed. Open tasks: run the evaluation, plot the curves. ") * 9


@dataclass
class SimStats:
    budget: int
    prompts: list[int] = field(default_factory=list)  # the true (reported) size of every main call
    results: list[CompactionResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    counting: str = ""  # the token counting method and the calibrated ratio it ended with

    @property
    def summarizer_calls(self) -> int:
        return sum(r.summarizer_calls for r in self.results)

    @property
    def max_level(self) -> int:
        return max((r.level for r in self.results), default=0)


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def true_tokens(compactor: Compactor, history: list[Message]) -> int:
    return math.ceil(compactor.counter.prompt(SYSTEM, history, TOOLS) * TRUE_RATIO)


def request_problems(kind: str, body: dict[str, Any], latest: str) -> list[str]:
    """What a real API would reject in one recorded request body (or what the compactor lost)."""
    problems: list[str] = []
    texts = json.dumps(body)
    if SYSTEM[:200] not in json.dumps(body.get("system" if kind == "anthropic" else "instructions")):
        problems.append("the system prompt is missing")
    if latest[:200] not in texts:
        problems.append("the latest user request is missing")
    if kind == "anthropic":
        msgs = body["messages"]
        if msgs[0]["role"] != "user" or msgs[-1]["role"] != "user":
            problems.append("the request does not start and end with a user message")
        for i, m in enumerate(msgs):
            if i and m["role"] == msgs[i - 1]["role"]:
                problems.append(f"messages {i - 1} and {i} have the same role")
            uses = {b["id"] for b in m["content"] if b["type"] == "tool_use"}
            results = {b["tool_use_id"] for b in m["content"] if b["type"] == "tool_result"}
            prev = {b["id"] for b in msgs[i - 1]["content"] if b["type"] == "tool_use"} if i else set()
            if results != prev:
                problems.append(f"message {i}: tool results {sorted(results)} do not answer {sorted(prev)}")
            if uses and m["content"][0]["type"] != "thinking":
                problems.append(f"message {i}: tool-use turn lost its thinking block")
    else:
        items = body["input"]
        calls = [it["call_id"] for it in items if it.get("type") == "function_call"]
        outputs = [it["call_id"] for it in items if it.get("type") == "function_call_output"]
        if sorted(calls) != sorted(outputs):
            problems.append("function calls and outputs do not pair up")
        seen: set[str] = set()
        for it in items:
            if it.get("type") == "function_call":
                seen.add(it["call_id"])
            elif it.get("type") == "function_call_output" and it["call_id"] not in seen:
                problems.append(f"output {it['call_id']} before its call")
    return problems


async def simulate(pool: ProviderPool, fakes: dict[str, Any], *, turns: int, main: str = "anthropic",
                   budget: int = 32_000, seed: int = 0, **compactor_kw: Any) -> SimStats:
    """Play ``turns`` user turns; ``fakes`` maps provider name to fake (main and openai at least)."""
    rng = random.Random(seed)
    kw: dict[str, Any] = {"summary_share": 0.15, "max_summary_tokens": 2000, **compactor_kw}
    compactor = Compactor(pool, PriceTable(), "openai:o3", context_budget=budget, **kw)
    fakes["openai"].default_turn = ScriptedTurn(text=SUMMARY, reasoning="Condensing.", input_tokens=9000,
                                                output_tokens=700, reasoning_tokens=300)
    stats = SimStats(budget)
    history: list[Message] = []
    reported: int | None = None
    provider = pool.get(main)
    main_fake = fakes[main]
    checked = 0
    started = time.perf_counter()

    async def call(turn: ScriptedTurn, latest: str) -> Any:
        nonlocal history, reported, checked
        result = await compactor.maybe_compact(history, SYSTEM, TOOLS, reported_input_tokens=reported)
        if result is not None:
            stats.results.append(result)
            history = result.history
        stats.problems += pairing_problems(history)
        size = true_tokens(compactor, history)
        stats.prompts.append(size)
        turn.input_tokens = size
        main_fake.script(turn)
        request = ProviderRequest(MODELS[main], SYSTEM, list(history), TOOLS,
                                  reasoning=ReasoningOptions(effort="medium", budget_tokens=2048))
        message = None
        async for event in provider.stream(request):
            if isinstance(event, Usage):
                reported = event.input_tokens
            elif isinstance(event, Finished):
                message = event.message
        body = main_fake.requests[-1]["body"]
        stats.problems += [f"call {checked}: {p}" for p in request_problems(provider.kind, body, latest)]
        main_fake.requests.clear()  # keep memory flat on 1,000 turns; each request was checked above
        checked += 1
        return message

    for t in range(turns):
        ctx = {"notebook": f"notebooks/analysis_{t % 7}.ipynb", "cells": [t % 11]} if t % 3 == 0 else None
        latest = f"Request {t}: " + words(rng, rng.randint(30, 180))
        history.append(UserMessage(latest, ctx))
        for step in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
            tools = [ScriptedTool(rng.choice(TOOLS).name, {"path": f"src/mod_{t}_{step}_{k}.py"},
                                  call_id=f"toolu_{t}_{step}_{k}") for k in range(rng.choice([1, 1, 2]))]
            msg = await call(ScriptedTurn(text=words(rng, rng.randint(0, 40)), reasoning=words(rng, 20),
                                          tool_calls=tools, output_tokens=80), latest)
            history.append(msg)
            for c in msg.tool_calls:
                size = rng.choice([40, 200, 400, 800]) if rng.random() > 0.05 else rng.randint(2000, 5000)
                history.append(ToolResultMessage(c.call_id, c.name, words(rng, size), rng.random() < 0.1))
        final = await call(ScriptedTurn(text=words(rng, rng.randint(40, 300)), reasoning=words(rng, 15),
                                        output_tokens=200), latest)
        history.append(final)
    stats.seconds = time.perf_counter() - started
    stats.counting = f"{compactor.counter.method}, calibrated x{compactor.meter.ratio:.3f} (fake reports x{TRUE_RATIO})"
    return stats


def report(stats: SimStats) -> str:
    prompts = stats.prompts
    degraded = sum(r.degraded for r in stats.results)
    lines = [
        f"model calls: {len(prompts)}   budget: {stats.budget} tokens   time: {stats.seconds:.1f} s",
        (f"prompt tokens per call: max {max(prompts)}  mean {sum(prompts) / len(prompts):.0f}   "
        f"(compaction threshold {int(0.75 * stats.budget)})"),
        f"token count: {stats.counting}",
        (f"compactions: {len(stats.results)}   summarizer calls: {stats.summarizer_calls}   "
        f"merges: {sum(r.merges for r in stats.results)}   highest summary level: {stats.max_level}   "
        f"degraded: {degraded}"),
        (f"summarizer cost: ${sum(r.cost_usd or 0 for r in stats.results):.2f}   "
        f"request problems: {len(stats.problems)}"),
        f"max prompt / budget = {max(prompts) / stats.budget:.3f}",
    ]
    return "\n".join(lines)


async def _main(turns: int, budget: int, main: str) -> SimStats:
    from tests.fakes.anthropic import FakeAnthropic
    from tests.fakes.openai import FakeOpenAI

    fakes: dict[str, Any] = {"openai": FakeOpenAI().start()}
    if main == "anthropic":
        fakes["anthropic"] = FakeAnthropic().start()
    pool = ProviderPool({name: fake.settings() for name, fake in fakes.items()})
    try:
        return await simulate(pool, fakes, turns=turns, main=main, budget=budget)
    finally:
        await pool.aclose()
        for fake in fakes.values():
            fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=64_000)
    parser.add_argument("--main", choices=sorted(MODELS), default="anthropic")
    args = parser.parse_args()
    stats = asyncio.run(_main(args.turns, args.budget, args.main))
    print(f"scripted session: {args.turns} turns, main model {args.main}:{MODELS[args.main]}, summarizer openai:o3")
    print(report(stats))


if __name__ == "__main__":
    main()
