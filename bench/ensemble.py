"""Benchmark: the ensemble's wall time against the slowest member plus the synthesis.

Run from the repository root: ``python -m bench.ensemble [--runs N]``. It starts the four wire-level
fake providers (real SDKs, real sockets), scripts the members to answer after 0.5, 1, 1.5 and 2 s
and the synthesizer after 0.5 s, and times ``Ensemble.consult``. The ideal is 2.0 + 0.5 = 2.5 s: the
members run concurrently and the synthesis starts as soon as the last one ends. One warm-up
consultation first pays the SDK imports and connection set-up (once per server process) and is
reported separately. The last line is the ratio measured/ideal (median of the runs); target <= 1.05.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
from typing import Any

from jupyterlab_ide_agent.ensemble import (
    Ensemble,
    members_from_config,
    synthesizer_from_config,
)
from jupyterlab_ide_agent.providers.prices import PriceTable
from jupyterlab_ide_agent.providers.registry import ProviderPool, build_settings
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import ScriptedTurn
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.fakes.xai import FakeXAI

MEMBER_DELAYS = {"openai": 0.5, "anthropic": 1.0, "xai": 1.5, "gemini": 2.0}
SYNTH_DELAY = 0.5
SYNTHESIS = "## Plan\n1. Do the thing.\n\n## Agreements\n- all: the thing.\n\n## Disagreements\n- None\n"


def script(fakes: dict[str, Any]) -> None:
    """One consultation's worth of answers; the OpenAI fake serves its member, then the synthesizer."""
    for kind, delay in MEMBER_DELAYS.items():
        fakes[kind].script(ScriptedTurn(text=f"{kind} answers " + "word " * 200, reasoning="thinking " * 50,
                                        chunks=20, delay=delay, input_tokens=2000, output_tokens=800))
    fakes["openai"].script(ScriptedTurn(text=SYNTHESIS, chunks=10, delay=SYNTH_DELAY,
                                        input_tokens=6000, output_tokens=600))


async def consult_once(ensemble: Ensemble, fakes: dict[str, Any]) -> tuple[float, int, str]:
    for fake in fakes.values():
        fake.reset()
    script(fakes)
    events: list[str] = []

    async def emit(type_: str, fields: dict[str, Any]) -> None:
        events.append(type_)

    started = time.perf_counter()
    verdict = await ensemble.consult("Which approach?", "some context", emit)
    elapsed = time.perf_counter() - started
    if verdict.status != "ok":
        raise SystemExit(f"benchmark consultation did not succeed: {verdict.status} {verdict.missing}")
    return elapsed, len(events), verdict.status


async def main(runs: int) -> None:
    fakes = {"openai": FakeOpenAI().start(), "anthropic": FakeAnthropic().start(),
             "gemini": FakeGemini().start(), "xai": FakeXAI().start()}
    config = {}
    for name, fake in fakes.items():
        values = dataclasses.asdict(fake.settings())
        values.pop("name")
        config[name] = values
    pool = ProviderPool(build_settings(config))
    members = [dataclasses.replace(m, timeout=30.0) for m in members_from_config(None)]
    ensemble = Ensemble(pool, PriceTable(), members, dataclasses.replace(synthesizer_from_config(None), timeout=30.0))
    ideal = max(MEMBER_DELAYS.values()) + SYNTH_DELAY
    try:
        cold, _, _ = await consult_once(ensemble, fakes)
        print(f"cold run (SDK imports + first connections): {cold:.3f} s")
        times = []
        for i in range(runs):
            elapsed, n_events, status = await consult_once(ensemble, fakes)
            times.append(elapsed)
            print(f"run {i + 1}: {elapsed:.3f} s, {n_events} events, verdict {status}")
    finally:
        await pool.aclose()
        for fake in fakes.values():
            fake.stop()
    measured = statistics.median(times)
    print(f"members' delays {sorted(MEMBER_DELAYS.values())} s, synthesis {SYNTH_DELAY} s")
    print(f"ideal (slowest member + synthesis): {ideal:.3f} s")
    print(f"measured (median of {runs}): {measured:.3f} s (min {min(times):.3f}, max {max(times):.3f})")
    print(f"ratio measured/ideal: {measured / ideal:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
