"""The consultation: every member at once, each under its own timeout, then one synthesis.

One asyncio task per member; a member that fails (provider error after the SDK's retries, timeout,
broken stream, missing key) becomes a :class:`MemberResult` with a reason and never fails the others.
The synthesizer starts the moment the last member has answered or failed, so the wall time is the
slowest member plus the synthesis. If the synthesizer fails, the verdict is *degraded*: the members'
answers, concatenated, are the plan, so an expensive consultation is never lost. If every member
fails, the verdict is *failed* and its ``error`` names each member's reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from ..agent.messages import UserMessage
from ..providers.base import (
    Finished,
    ProviderError,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    Usage,
)
from ..providers.prices import PriceTable
from ..providers.registry import ProviderPool
from .config import MemberSpec
from .prompts import (
    MEMBER_SYSTEM,
    SYNTHESIZER_SYSTEM,
    member_message,
    parse_synthesis,
    synthesis_message,
)
from .stream import Emit, MemberEvents


@dataclass
class MemberResult:
    spec: MemberSpec
    text: str = ""
    reasoning: str = ""
    reason: str | None = None  # why it failed; None when it answered
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    wall_time_s: float = 0.0
    stop_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def summary(self) -> dict[str, Any]:
        """The member as the verdict lists it (usage tokens and cost, no reasoning text)."""
        return {
            "name": self.spec.name, "model": self.spec.model, "status": "finished" if self.ok else "failed",
            "reason": self.reason, "usage": usage_dict(self.usage), "cost_usd": self.cost_usd,
            "wall_time_s": round(self.wall_time_s, 3), "answer": self.text,
        }


@dataclass
class Verdict:
    """``status``: ok (synthesized), degraded (synthesizer failed: plan = members' answers) or
    failed (no member answered: ``error`` says why for each)."""

    consultation_id: str
    question: str
    status: str
    plan: str
    agreements: list[str]
    disagreements: list[str]
    members: list[MemberResult]
    synthesizer: MemberResult | None
    cost_usd: float
    wall_time_s: float
    note: str | None = None
    error: str | None = None

    @property
    def missing(self) -> list[dict[str, str | None]]:
        return [{"name": m.spec.name, "reason": m.reason} for m in self.members if not m.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "consultation_id": self.consultation_id, "question": self.question, "status": self.status,
            "plan": self.plan, "agreements": self.agreements, "disagreements": self.disagreements,
            "members": [m.summary() for m in self.members], "missing": self.missing,
            "synthesizer": self.synthesizer.summary() if self.synthesizer else None,
            "cost_usd": self.cost_usd, "wall_time_s": self.wall_time_s, "note": self.note, "error": self.error,
        }

    def to_text(self) -> str:
        """What the main model reads: plan first, then agreements, disagreements, who was missing."""
        if self.status == "failed":
            return self.error or "The ensemble failed."
        parts = [f"# Ensemble verdict ({self.status})"]
        if self.note:
            parts.append(f"Note: {self.note}")
        parts.append(f"## Plan\n{self.plan}")
        if self.agreements:
            parts.append("## Agreements\n" + "\n".join(f"- {a}" for a in self.agreements))
        if self.disagreements:
            parts.append("## Disagreements\n" + "\n".join(f"- {d}" for d in self.disagreements))
        answered = [m.spec.name for m in self.members if m.ok]
        parts.append(f"Answered: {', '.join(answered)}.")
        if self.missing:
            parts.append("Missing: " + "; ".join(f"{m['name']} ({m['reason']})" for m in self.missing) + ".")
        parts.append(f"Cost: ${self.cost_usd:.4f}; wall time {self.wall_time_s:.1f} s.")
        return "\n\n".join(parts)


def usage_dict(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens, "cached_tokens": usage.cached_tokens}


class Ensemble:
    """Consults ``members`` in parallel and has ``synthesizer`` merge their answers.

    Shares the agent's :class:`ProviderPool` (one SDK client per endpoint) and :class:`PriceTable`.
    ``flush_interval`` is how often buffered deltas go out as events.
    """

    def __init__(self, pool: ProviderPool, prices: PriceTable, members: Sequence[MemberSpec],
                 synthesizer: MemberSpec, *, flush_interval: float = 0.1) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.pool = pool
        self.prices = prices
        self.members = list(members)
        self.synthesizer = synthesizer
        self.flush_interval = flush_interval

    def select(self, names: Sequence[str] | None) -> list[MemberSpec]:
        """The members named (all when None); unknown names raise ValueError listing the known."""
        if not names:
            return list(self.members)
        known = {m.name: m for m in self.members}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown ensemble member(s) {unknown}; members are: {', '.join(known)}")
        return [known[n] for n in dict.fromkeys(names)]

    async def consult(self, question: str, context: str | None = None, emit: Emit | None = None,
                      members: Sequence[str] | None = None) -> Verdict:
        """Run one consultation, streaming ``ensemble_member`` events and ending with one
        ``ensemble_verdict`` through ``emit(type, fields)``. Never raises for provider failures."""
        chosen = self.select(members)
        started = time.monotonic()
        cid = uuid.uuid4().hex[:12]
        async with MemberEvents(emit, cid, interval=self.flush_interval, question=question) as events:
            await asyncio.to_thread(self._load_adapters, [*chosen, self.synthesizer])
            prompt = member_message(question, context)
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._ask(spec, MEMBER_SYSTEM, prompt, events)) for spec in chosen]
            results = [t.result() for t in tasks]
            synth: MemberResult | None = None
            if any(r.ok for r in results):
                synth_prompt = synthesis_message(question, context, results)
                synth = await self._ask(self.synthesizer, SYNTHESIZER_SYSTEM, synth_prompt, events)
            verdict = self._verdict(cid, question, results, synth, time.monotonic() - started)
            await events.emit("ensemble_verdict", verdict.to_dict())
        return verdict

    # --- one model --------------------------------------------------------------------------
    def _load_adapters(self, specs: Sequence[MemberSpec]) -> None:
        """Create the adapters before the members start, in a worker thread: the first use of an
        SDK imports it (about a second each), which would otherwise block the server's event loop
        and start the members one after another instead of together."""
        for spec in specs:
            if self._unavailable(spec) is None:
                try:
                    self.pool.get(spec.ref.provider)
                except Exception:  # noqa: BLE001, S110 - the member reports it when it runs
                    pass

    def _unavailable(self, spec: MemberSpec) -> str | None:
        """Why a member cannot be asked at all, decided without a network call."""
        settings = self.pool.settings.get(spec.ref.provider)
        if settings is None:
            return f"unknown provider {spec.ref.provider!r} (configured: {', '.join(self.pool.settings)})"
        missing = settings.missing()
        if missing:
            return "missing key: " + missing.split(": ", 1)[-1]
        return None

    async def _ask(self, spec: MemberSpec, system: str, prompt: str, events: MemberEvents) -> MemberResult:
        """Stream one model under its own timeout; every failure becomes ``result.reason``."""
        result = MemberResult(spec)
        started = time.monotonic()
        await events.state(spec.name, "started", model=spec.model, timeout_s=spec.timeout)
        result.reason = self._unavailable(spec)
        if result.ok:
            try:
                await self._stream(spec, system, prompt, events, result)
            except TimeoutError:  # ours (asyncio.timeout); the SDK's own become ProviderError
                result.reason = f"timeout after {spec.timeout:g} s"
            except ProviderError as exc:
                result.reason = f"{exc.kind}: {exc.message}"
            except Exception as exc:  # noqa: BLE001 - an SDK surprise must not sink the other members
                result.reason = f"{type(exc).__name__}: {exc}"
            if result.ok and not result.text.strip():
                result.reason = f"empty answer (stop reason: {result.stop_reason})"
        result.wall_time_s = time.monotonic() - started
        result.cost_usd = self.prices.cost(spec.ref.model, result.usage)
        timing = {"wall_time_s": round(result.wall_time_s, 3)}
        if result.ok:
            await events.state(spec.name, "finished", model=spec.model, usage=usage_dict(result.usage),
                               cost_usd=result.cost_usd, stop_reason=result.stop_reason, **timing)
        else:
            await events.state(spec.name, "failed", model=spec.model, reason=result.reason,
                               usage=usage_dict(result.usage), cost_usd=result.cost_usd, **timing)
        return result

    async def _stream(self, spec: MemberSpec, system: str, prompt: str, events: MemberEvents,
                      result: MemberResult) -> None:
        ref = spec.ref
        request = ProviderRequest(model=ref.model, system=system, messages=[UserMessage(prompt)],
                                  max_output_tokens=spec.max_output_tokens, reasoning=spec.reasoning)
        text: list[str] = []
        reasoning: list[str] = []
        try:
            async with asyncio.timeout(spec.timeout):
                async with aclosing(self.pool.get(ref.provider).stream(request)) as stream:
                    async for event in stream:
                        if isinstance(event, TextDelta):
                            text.append(event.text)
                            await events.delta(spec.name, "text", event.text)
                        elif isinstance(event, ReasoningDelta):
                            reasoning.append(event.text)
                            await events.delta(spec.name, "reasoning", event.text)
                        elif isinstance(event, Usage):
                            result.usage = result.usage + event
                        elif isinstance(event, Finished):
                            result.stop_reason = event.stop_reason
        finally:  # a member cut short keeps what it said (shown in the sidebar, not synthesized)
            result.text, result.reasoning = "".join(text), "".join(reasoning)

    # --- the verdict ------------------------------------------------------------------------
    def _verdict(self, cid: str, question: str, results: list[MemberResult], synth: MemberResult | None,
                 elapsed: float) -> Verdict:
        cost = sum(r.cost_usd or 0.0 for r in [*results, *([synth] if synth else [])])
        base = {"consultation_id": cid, "question": question, "members": results, "synthesizer": synth,
                "cost_usd": round(cost, 8), "wall_time_s": round(elapsed, 3)}
        if synth is None:
            reasons = "\n".join(f"- {r.spec.name} ({r.spec.model}): {r.reason}" for r in results)
            error = f"The ensemble could not answer: every member failed.\n{reasons}"
            return Verdict(status="failed", plan="", agreements=[], disagreements=[], error=error, **base)
        if not synth.ok:
            answers = "\n\n".join(f"### {r.spec.name} ({r.spec.model})\n{r.text.strip()}" for r in results if r.ok)
            note = (f"The synthesizer ({synth.spec.model}) failed: {synth.reason}. "
                    "Below are the members' answers, not synthesized.")
            return Verdict(status="degraded", plan=answers, agreements=[], disagreements=[], note=note, **base)
        plan, agreements, disagreements = parse_synthesis(synth.text)
        return Verdict(status="ok", plan=plan, agreements=agreements, disagreements=disagreements, **base)
