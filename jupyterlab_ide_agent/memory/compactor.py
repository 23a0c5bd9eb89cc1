"""Hierarchical memory compaction, driven by the token count of the next prompt.

Before every model call the loop asks :meth:`Compactor.maybe_compact`. When the prompt would pass
``threshold x context_budget`` tokens, the body of the history is cut at a group boundary (see
:mod:`.groups`): the most recent ``keep_recent`` messages stay verbatim (fewer when they alone would
not fit the token target), the older ones are summarized by the summarizer model into a level-1
summary at ``compression_ratio`` of their size, capped at ``max_summary_tokens``, and the summary is
placed at the head of the history. When the summaries together outgrow ``summary_share`` of the
budget, a run of same-level summaries is re-summarized into one summary a level higher (summaries of
summaries), so old history gets coarser while recent history stays detailed. The latest user request
is never summarized away: if the cut passes it, it is kept verbatim right after the summaries.

The summarizer is called through the provider pool, i.e. the real adapters, with a plain-text
transcript (any model can summarize any provider's history). If it fails (provider error, timeout,
empty answer) the turn still continues: the part that would have been summarized is dropped whole
and a short note says so (``degraded=True``). A summarizer that timed out is not waited for again
for ``timeout_backoff`` seconds: compactions in that window truncate at once, so one hung endpoint
does not stall every later turn. Nothing here mutates the history it is given.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..agent.messages import Message, UserMessage
from ..providers.base import (
    Finished,
    ProviderRequest,
    ReasoningOptions,
    TextDelta,
    ToolSpec,
    Usage,
)
from ..providers.prices import PriceTable
from ..providers.registry import ProviderPool, parse_model
from . import groups as g
from .tokens import PromptMeter, TokenCounter

SUMMARIZER_SYSTEM = """\
You compress the history of a working session between a user and an IDE agent in JupyterLab, so the \
agent can continue the work without the original messages. Keep, precisely and with exact spelling: \
the user's goals and requests; decisions taken and why; file, notebook and directory paths; cell ids; \
variables, functions, classes, data shapes and their meaning; commands run, processes and their pids \
and log files; errors seen and whether they were fixed; results and numbers that matter; and the open \
tasks and next steps. Drop small talk, repeated or raw tool output and anything superseded. When \
inputs disagree, the newer one wins. Write plain text under the headings Goals, Decisions, Files and \
notebooks, State and variables, Errors, Results, Open tasks. Write only the summary."""


class SummarizerFailed(Exception):
    """The summarizer model could not produce a summary (the message says why)."""


def should_compact(prompt_tokens: int, context_budget: int, threshold: float = 0.75) -> bool:
    """The decision: compact when the next prompt passes ``threshold`` of the budget."""
    return prompt_tokens > threshold * context_budget


def estimated_savings(tokens_to_compact: int, compression_ratio: float = 0.25,
                      max_summary_tokens: int = 4000) -> int:
    """Tokens saved by summarizing ``tokens_to_compact`` tokens at ``compression_ratio``."""
    return tokens_to_compact - min(math.ceil(tokens_to_compact * compression_ratio), max_summary_tokens)


@dataclass
class CompactionResult:
    history: list[Message]
    messages_compacted: int  # original messages folded into summaries (or dropped, when degraded)
    tokens_before: int
    tokens_after: int
    cost_usd: float | None
    usage: Usage = field(default_factory=Usage)  # the summarizer's, all calls together
    summarizer_model: str = ""
    summarizer_calls: int = 0
    merges: int = 0  # summaries of summaries made in this compaction
    level: int = 0  # the highest summary level in the new history
    kept_messages: int = 0
    dropped_messages: int = 0
    degraded: bool = False
    reason: str | None = None

    def event_fields(self) -> dict[str, Any]:
        """The fields of the ``compaction`` event (without type/session/seq)."""
        return {
            "messages": self.messages_compacted, "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after, "cost_usd": self.cost_usd, "level": self.level,
            "summaries": sum(1 for m in self.history if g.summary_level(m)), "merges": self.merges,
            "kept_messages": self.kept_messages, "dropped_messages": self.dropped_messages,
            "summarizer_model": self.summarizer_model, "summarizer_calls": self.summarizer_calls,
            "input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens,
            "degraded": self.degraded, "reason": self.reason,
        }


@dataclass
class _Plan:
    note: UserMessage | None
    summaries: list[Message]
    old: list[Message]  # to summarize
    kept: list[Message]  # verbatim, pinned request first when the cut passed it


class Compactor:
    """One per agent (it keeps the calibration of the token count across calls)."""

    def __init__(
        self,
        pool: ProviderPool,
        prices: PriceTable,
        summarizer_model: str = "openai:o3",
        context_budget: int = 200_000,
        threshold: float = 0.75,
        keep_recent: int = 20,
        compression_ratio: float = 0.25,
        max_summary_tokens: int = 4000,
        *,
        min_summary_tokens: int = 300,
        summary_share: float = 0.2,
        target_ratio: float = 0.5,
        summarizer_input_tokens: int = 60_000,
        summarizer_timeout: float = 300.0,
        timeout_backoff: float = 600.0,
        summarizer_effort: str | None = "low",
        reasoning_headroom: int = 8192,
        transcript_item_chars: int = 6000,
        main_model: str | None = None,
        counter: TokenCounter | None = None,
    ) -> None:
        if not 0 < threshold <= 1 or not 0 < compression_ratio < 1 or not 0 < target_ratio <= threshold:
            raise ValueError("need 0 < target_ratio <= threshold <= 1 and 0 < compression_ratio < 1")
        self.pool, self.prices = pool, prices
        self.summarizer_model = summarizer_model
        self.context_budget, self.threshold, self.keep_recent = context_budget, threshold, keep_recent
        self.compression_ratio, self.max_summary_tokens = compression_ratio, max_summary_tokens
        self.min_summary_tokens, self.summary_share, self.target_ratio = min_summary_tokens, summary_share, target_ratio
        self.summarizer_input_tokens, self.summarizer_timeout = summarizer_input_tokens, summarizer_timeout
        self.timeout_backoff = timeout_backoff
        self._timed_out_at: float | None = None  # a hung summarizer is not waited for again at once
        self.summarizer_effort, self.reasoning_headroom = summarizer_effort, reasoning_headroom
        self.transcript_item_chars = transcript_item_chars
        self.counter = counter or TokenCounter(main_model)
        self.meter = PromptMeter(self.counter)

    # --- decisions ------------------------------------------------------------------------
    def prompt_tokens(self, history: Sequence[Message], system: str, tools: Sequence[ToolSpec],
                      reported_input_tokens: int | None = None) -> int:
        return self.meter.measure(history, system, tools, reported_input_tokens)

    def should_compact(self, history: Sequence[Message], system: str, tools: Sequence[ToolSpec] = (),
                       reported_input_tokens: int | None = None) -> bool:
        tokens = self.prompt_tokens(history, system, tools, reported_input_tokens)
        return should_compact(tokens, self.context_budget, self.threshold)

    def estimated_savings(self, history: Sequence[Message], system: str,
                          tools: Sequence[ToolSpec] = ()) -> dict[str, int]:
        """What compacting now would save, without calling the summarizer."""
        before = self.meter.scaled(self.counter.prompt(system, history, tools))
        plan = self._plan(history, self.counter.fixed(system, tools))
        saved = self.meter.scaled(estimated_savings(self.counter.messages(plan.old), self.compression_ratio,
                                                    self.max_summary_tokens)) if plan.old else 0
        return {"tokens_before": before, "tokens_after": before - saved, "tokens_saved": saved,
                "messages_compacted": len(plan.old), "messages_kept": len(plan.kept)}

    def _plan(self, history: Sequence[Message], fixed: int) -> _Plan:
        """Where to cut: keep >= keep_recent messages, unless they exceed the token target."""
        head, body = g.split_head(history)
        note = next((m for m in head if g.is_note(m)), None)
        summaries = [m for m in head if g.summary_level(m)]
        starts, pinned = g.group_starts(body), g.latest_user_index(body)
        if not starts:
            return _Plan(note, summaries, [], body)
        tokens = [self.counter.message(m) for m in body]
        suffix = [0] * (len(body) + 1)
        for i in range(len(body) - 1, -1, -1):
            suffix[i] = suffix[i + 1] + tokens[i]
        cap = (self.target_ratio - self.summary_share) * self.context_budget / self.meter.ratio - fixed

        def kept_tokens(s: int) -> int:
            return suffix[s] + (tokens[pinned] if pinned is not None and pinned < s else 0)

        by_count = max((s for s in starts if len(body) - s >= self.keep_recent), default=0)
        cut = next((s for s in starts if s >= by_count and kept_tokens(s) <= cap), starts[-1])
        old = [m for i, m in enumerate(body[:cut]) if i != pinned]
        kept = ([body[pinned]] if pinned is not None and pinned < cut else []) + body[cut:]
        return _Plan(note, summaries, old, kept)

    # --- compaction -----------------------------------------------------------------------
    async def maybe_compact(self, history: Sequence[Message], system: str, tools: Sequence[ToolSpec] = (),
                            reported_input_tokens: int | None = None) -> CompactionResult | None:
        """A compacted history when the next prompt passes the threshold, else None.

        ``reported_input_tokens``: the provider's ``input_tokens`` of the previous call, i.e. of the
        history this method last saw (pass None when that call never happened, e.g. after a cancel).
        """
        before = self.prompt_tokens(history, system, tools, reported_input_tokens)
        if not should_compact(before, self.context_budget, self.threshold):
            self.meter.sent(history, system, tools)
            return None
        fixed = self.counter.fixed(system, tools)
        plan = self._plan(history, fixed)
        summaries = list(plan.summaries)
        result = CompactionResult(list(history), len(plan.old), before, before, None,
                                  summarizer_model=self.summarizer_model, kept_messages=len(plan.kept))
        note = plan.note
        if plan.old:
            try:
                for chunk in self._chunks(plan.old):
                    text = await self._summarize(chunk, result, merge=False)
                    summaries.append(g.make_summary(text, 1, len(chunk)))
            except SummarizerFailed as exc:
                summaries = list(plan.summaries)  # a partial set of chunk summaries would leave a hole
                note = self._note(note, len(plan.old), str(exc))
                result.degraded, result.reason = True, str(exc)
                result.dropped_messages = len(plan.old)
        if not result.degraded:
            try:
                summaries = await self._merge(summaries, result)
            except SummarizerFailed as exc:
                result.degraded, result.reason = True, f"merging summaries failed: {exc}"
        new = ([note] if note else []) + summaries + plan.kept
        new = self._fit(new, system, tools, result)
        if len(new) == len(history) and all(a is b for a, b in zip(new, history, strict=True)):
            self.meter.sent(history, system, tools)
            return None  # nothing could be compacted (one huge recent group): the call goes as it is
        result.history = new
        result.tokens_after = self.meter.scaled(self.counter.prompt(system, new, tools))
        result.level = max((g.summary_level(m) for m in new), default=0)
        result.kept_messages = sum(1 for m in new if not g.is_head(m))
        self.meter.sent(new, system, tools)
        return result

    def _chunks(self, messages: list[Message]) -> list[list[Message]]:
        """Split what is summarized so each summarizer request stays within its own input limit."""
        chunks: list[list[Message]] = [[]]
        size = 0
        item_cap = math.ceil(self.transcript_item_chars / self.counter.chars_per_token) + 16  # cut in the transcript
        for m in messages:
            n = min(self.counter.message(m), item_cap)
            if chunks[-1] and size + n > self.summarizer_input_tokens:
                chunks.append([])
                size = 0
            chunks[-1].append(m)
            size += n
        return chunks

    async def _merge(self, summaries: list[Message], result: CompactionResult) -> list[Message]:
        """Re-summarize while the summaries outgrow their share: the lowest level that has two or
        more summaries is merged into one a level higher (the two newest if every level has one)."""
        share = self.summary_share * self.context_budget / self.meter.ratio
        resummarized_single = False
        while summaries and self.counter.messages(summaries) > share:
            levels = [g.summary_level(s) for s in summaries]
            run = next(((levels.index(lv), len(levels) - levels[::-1].index(lv)) for lv in sorted(set(levels))
                        if levels.count(lv) >= 2), (max(0, len(levels) - 2), len(levels)))
            if run[1] - run[0] < 2:
                if resummarized_single:
                    break  # a single summary the summarizer will not shrink: _fit handles the rest
                resummarized_single = True
            batch = summaries[run[0]:run[1]]
            text = await self._summarize(batch, result, merge=True)
            merged = g.make_summary(text, max(levels[run[0]:run[1]]) + 1, sum(g.covered(s) for s in batch))
            summaries = summaries[:run[0]] + [merged] + summaries[run[1]:]
            result.merges += 1
        return summaries

    def _fit(self, history: list[Message], system: str, tools: Sequence[ToolSpec],
             result: CompactionResult) -> list[Message]:
        """Last resort when the result is still over the threshold: drop the oldest kept groups
        (never the latest user request nor the last group), then the oldest summaries."""
        limit = self.threshold * self.context_budget
        dropped = 0

        def size(h: list[Message]) -> int:
            return self.meter.scaled(self.counter.prompt(system, h, tools))

        while size(history) > limit:
            head, body = g.split_head(history)
            starts, pinned = g.group_starts(body), g.latest_user_index(body)
            droppable = [s for s in starts[:-1] if s != pinned]
            if droppable:
                s = droppable[0]
                end = next((t for t in starts if t > s), len(body))
                dropped += end - s
                history = head + body[:s] + body[end:]
            elif len([m for m in head if g.summary_level(m)]) > 0:
                idx = next(i for i, m in enumerate(head) if g.summary_level(m))
                dropped += g.covered(head[idx])
                history = head[:idx] + head[idx + 1:] + body
            else:
                break
        if dropped:
            reason = "the kept messages did not fit the context budget"
            head, body = g.split_head(history)
            note = next((m for m in head if g.is_note(m)), None)
            rest = [m for m in head if not g.is_note(m)]
            history = [self._note(note, dropped, result.reason or reason)] + rest + body
            result.degraded, result.reason = True, result.reason or reason
            result.dropped_messages += dropped
        return history

    @staticmethod
    def _note(previous: UserMessage | None, dropped: int, reason: str) -> UserMessage:
        return g.make_note(dropped + (g.covered(previous) if previous else 0), reason)

    async def _summarize(self, messages: list[Message], result: CompactionResult, *, merge: bool) -> str:
        """One summarizer call; its usage and cost are added to ``result``."""
        if self._timed_out_at is not None and time.monotonic() - self._timed_out_at < self.timeout_backoff:
            ago = time.monotonic() - self._timed_out_at
            raise SummarizerFailed(f"{self.summarizer_model} timed out {ago:.0f} s ago; not waiting for it again yet")
        size = self.counter.messages(messages)
        target = max(self.min_summary_tokens, min(self.max_summary_tokens, math.ceil(size * self.compression_ratio)))
        words = max(50, int(target * 0.75))
        what = ("These are earlier summaries of one session, oldest first. Merge them into one summary"
                if merge else "Summarize this part of the session")
        prompt = (f"{what}, in at most about {words} words.\n\n<transcript>\n"
                  f"{g.render_transcript(messages, self.transcript_item_chars)}\n</transcript>")
        try:
            ref = parse_model(self.summarizer_model)
            provider = self.pool.get(ref.provider)
        except Exception as exc:  # a misconfigured summarizer is one more failure to degrade on
            raise SummarizerFailed(str(exc)) from exc
        effort = self.summarizer_effort
        request = ProviderRequest(
            model=ref.model, system=SUMMARIZER_SYSTEM, messages=[UserMessage(prompt)],
            max_output_tokens=2 * target + (self.reasoning_headroom if effort else 0),
            reasoning=ReasoningOptions(effort=effort, summary=False) if effort else None,
        )
        result.summarizer_calls += 1
        parts: list[str] = []
        final: list[Finished] = []

        async def collect() -> None:
            stream = provider.stream(request)
            try:
                async for event in stream:
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
                    elif isinstance(event, Usage):
                        cost = self.prices.cost(ref.model, event)
                        result.usage = result.usage + event
                        if cost is not None:
                            result.cost_usd = round((result.cost_usd or 0.0) + cost, 8)
                    elif isinstance(event, Finished):
                        final.append(event)
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

        try:
            await asyncio.wait_for(collect(), self.summarizer_timeout)
        except asyncio.TimeoutError as exc:  # noqa: UP041 - a different class on Python 3.10
            self._timed_out_at = time.monotonic()
            raise SummarizerFailed(
                f"{self.summarizer_model} gave no summary within {self.summarizer_timeout:g} s"
            ) from exc
        except Exception as exc:  # ProviderError or anything else: degrade, never break the turn
            raise SummarizerFailed(getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}") from exc
        text = (final[0].message.text if final else "".join(parts)).strip()
        if not text:
            stop = final[0].stop_reason if final else "no answer"
            raise SummarizerFailed(f"{self.summarizer_model} returned an empty summary ({stop})")
        limit = int(self.max_summary_tokens * 1.5 * self.counter.chars_per_token)
        return text if len(text) <= limit else text[:limit] + "\n[summary cut: it exceeded its size limit]"
