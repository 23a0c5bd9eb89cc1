"""The ensemble against the real APIs (run with ``-m live``): the seed's three ensemble scenarios.

Cheap models by default, overridable per provider with the same variables as the adapters' live tests
(``OPENAI_LIVE_MODEL``, ``ANTHROPIC_LIVE_MODEL``, ``GEMINI_LIVE_MODEL``, ``XAI_LIVE_MODEL``,
``XAI_LIVE_EFFORT``) and ``ENSEMBLE_LIVE_SYNTHESIZER`` for the synthesizer. A member whose key is not
set is left out of the roster; a test skips when it has no member left.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from jupyterlab_ide_agent.ensemble import Ensemble, MemberSpec, Verdict
from jupyterlab_ide_agent.providers.prices import PriceTable
from jupyterlab_ide_agent.providers.registry import ProviderPool, build_settings

pytestmark = [pytest.mark.live, pytest.mark.timeout(600)]

QUESTION = "What is 17 * 23? Give the number and one sentence on how you got it."
CHEAP: dict[str, tuple[str, MemberSpec]] = {
    "openai": ("OPENAI_API_KEY", MemberSpec("openai", "openai:" + os.environ.get("OPENAI_LIVE_MODEL", "gpt-5-nano"),
                                            effort="low", timeout=180, max_output_tokens=4000)),
    "anthropic": ("ANTHROPIC_API_KEY", MemberSpec(
        "anthropic", "anthropic:" + os.environ.get("ANTHROPIC_LIVE_MODEL", "claude-haiku-4-5"),
        budget_tokens=1024, timeout=180, max_output_tokens=4000)),
    "xai": ("XAI_API_KEY", MemberSpec("xai", "xai:" + os.environ.get("XAI_LIVE_MODEL", "grok-4-fast-reasoning"),
                                      effort=os.environ.get("XAI_LIVE_EFFORT") or None, timeout=180,
                                      max_output_tokens=4000)),
    "gemini": ("GEMINI_API_KEY", MemberSpec("gemini",
                                            "gemini:" + os.environ.get("GEMINI_LIVE_MODEL", "gemini-2.5-flash"),
                                            budget_tokens=-1, timeout=180, max_output_tokens=4000)),
}


def available() -> list[MemberSpec]:
    return [spec for env, spec in CHEAP.values() if os.environ.get(env)]


def synthesizer(members: list[MemberSpec]) -> MemberSpec:
    model = os.environ.get("ENSEMBLE_LIVE_SYNTHESIZER")
    if model:
        return MemberSpec("synthesizer", model, timeout=240, max_output_tokens=8000)
    return MemberSpec("synthesizer", members[0].model, effort=members[0].effort,
                      budget_tokens=members[0].budget_tokens, timeout=240, max_output_tokens=8000)


@pytest.fixture
async def pool() -> AsyncIterator[ProviderPool]:
    p = ProviderPool(build_settings({"nokey": {"kind": "openai", "api_key_env": "IDE_AGENT_LIVE_NO_SUCH_KEY"}}))
    yield p
    await p.aclose()


async def consult(pool: ProviderPool, members: list[MemberSpec]) -> tuple[Verdict, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    async def emit(type_: str, fields: dict[str, Any]) -> None:
        events.append({"type": type_, **fields})

    ensemble = Ensemble(pool, PriceTable(), members, synthesizer(members))
    return await ensemble.consult(QUESTION, None, emit), events


async def test_live_basic_consultation(pool: ProviderPool) -> None:
    members = available()
    if not members:
        pytest.skip("no provider key is set")
    verdict, events = await consult(pool, members)
    assert verdict.status == "ok", verdict.to_text()
    assert "391" in verdict.plan
    for member in verdict.members:
        assert member.ok, (member.spec.name, member.reason)
        assert member.usage.input_tokens > 0 and member.usage.output_tokens > 0
        assert member.cost_usd is None or member.cost_usd > 0
        streamed = "".join(e["text"] for e in events
                           if e["type"] == "ensemble_member" and e["member"] == member.spec.name
                           and e["state"] == "text")
        assert streamed == member.text
    assert events[-1]["type"] == "ensemble_verdict" and verdict.cost_usd > 0


async def test_live_partial_failure_and_missing_key(pool: ProviderPool) -> None:
    members = available()[:1]
    if not members:
        pytest.skip("no provider key is set")
    real = members[0]
    bogus = MemberSpec("bogus", real.model.split(":")[0] + ":no-such-model-ide-agent", timeout=60)
    keyless = MemberSpec("keyless", "nokey:gpt-5-nano", timeout=60)
    verdict, _ = await consult(pool, [real, bogus, keyless])
    assert verdict.status == "ok", verdict.to_text()
    missing = {m["name"]: m["reason"] or "" for m in verdict.missing}
    assert set(missing) == {"bogus", "keyless"}
    assert missing["keyless"].startswith("missing key: set IDE_AGENT_LIVE_NO_SUCH_KEY")
    assert "bogus" in verdict.to_text() and "keyless" in verdict.to_text()
