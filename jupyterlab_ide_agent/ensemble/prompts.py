"""What the members and the synthesizer are asked, and how the synthesis is read back.

The synthesizer answers in markdown under three fixed headings rather than JSON: not every provider
has a JSON mode, and a reasoning model asked for JSON sometimes wraps or truncates it. Markdown with
fixed headings degrades gracefully: :func:`parse_synthesis` finds the headings however they are
decorated, and when it finds none the whole answer becomes the plan, so nothing is lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..agent.messages import AssistantMessage, Message, ToolResultMessage, UserMessage

if TYPE_CHECKING:
    from .consult import MemberResult

CONTEXT_LIMIT = 60_000  # characters of context sent to each member
ANSWER_LIMIT = 40_000  # characters of one member's answer sent to the synthesizer

MEMBER_SYSTEM = """\
You are one of several senior engineers consulted independently about a hard decision in a software \
or data-science project. The others do not see your answer; a final reviewer compares all answers.
Give your own best recommendation:
- the approach you would take and why, as concrete steps (files, commands, code, checks);
- the risks and how to verify the result;
- the alternatives you rejected, in a sentence each.
Be specific and decisive. Say plainly where you are unsure or where the context is missing \
something you need."""

SYNTHESIZER_SYSTEM = """\
You are the final reviewer of an expert panel. Several models answered the same question \
independently; some may be missing. Compare their answers and produce ONE actionable plan.
Answer in markdown with exactly these three headings, in this order, and nothing before the first:

## Plan
The recommended plan as numbered, concrete steps. Take the best ideas from all answers; where they \
conflict, choose and say why in a few words.

## Agreements
One bullet per point the members agree on (name who, e.g. "openai, gemini: ...").

## Disagreements
One bullet per point where members differ: who said what, and which side the plan takes. \
Write "- None" if they did not disagree."""

_HEADINGS = {"plan": "plan", "agreement": "agreements", "disagreement": "disagreements"}
_KEYWORD = r"(?:\d+[.)]\s*)?(?:the\s+|recommended\s+|final\s+)?(plan|agreements?|disagreements?)\b"
#: "## Plan", "### 2. Disagreements (between members)", "**Plan:**" ...
_DECORATED = re.compile(r"^\s*(?:#{1,6}\s*|\*\*|__)\s*" + _KEYWORD + r"[^\n]{0,40}$", re.IGNORECASE)
#: ... or a bare "Plan" / "Agreements:" line; "Plan the migration first:" stays body text
_PLAIN = re.compile(r"^\s*" + _KEYWORD + r"\s*:?\s*$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+(.*)$")
_EMPTY_ITEM = re.compile(r"^(none|n/?a|nothing|no (?:dis)?agreements?)\b[\w\s]{0,30}\W*$", re.IGNORECASE)


def _clip(text: str, limit: int, keep: str = "head") -> str:
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    if keep == "tail":
        return f"[... {cut} earlier characters cut ...]\n" + text[-limit:]
    return text[:limit] + f"\n[... {cut} characters cut ...]"


def member_message(question: str, context: str | None) -> str:
    text = f"## Question\n{question.strip()}"
    if context and context.strip():
        clipped = _clip(context.strip(), CONTEXT_LIMIT, "tail")
        text += f"\n\n## Context (the recent conversation and workspace)\n{clipped}"
    return text


def synthesis_message(question: str, context: str | None, results: Sequence[MemberResult]) -> str:
    """The question, each answer by name and model, then who is missing and why."""
    parts = [member_message(question, context)]
    answered = [r for r in results if r.ok]
    missing = [r for r in results if not r.ok]
    for r in answered:
        parts.append(f"## Answer from {r.spec.name} ({r.spec.model})\n{_clip(r.text.strip(), ANSWER_LIMIT)}")
    if missing:
        lines = "\n".join(f"- {r.spec.name} ({r.spec.model}): {r.reason}" for r in missing)
        parts.append(f"## Members who did not answer\n{lines}")
    parts.append(f"Synthesize the {len(answered)} answer(s) above under the three headings.")
    return "\n\n".join(parts)


def parse_synthesis(text: str) -> tuple[str, list[str], list[str]]:
    """``(plan, agreements, disagreements)`` from the synthesizer's markdown, tolerant of
    ``## Plan``, ``**Plan:**``, ``1. Plan``; without headings the whole text is the plan."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    preamble: list[str] = []
    for line in text.splitlines():
        match = _DECORATED.match(line) or _PLAIN.match(line)
        if match:
            key = match.group(1).lower().rstrip("s")
            current = _HEADINGS[key]
            sections.setdefault(current, [])
            continue
        (sections[current] if current else preamble).append(line)
    if not sections:
        return text.strip(), [], []
    plan = "\n".join(sections.get("plan", preamble)).strip()
    return plan, _bullets(sections.get("agreements", [])), _bullets(sections.get("disagreements", []))


def _bullets(lines: list[str]) -> list[str]:
    """List items; a wrapped line joins the item above; "None" items are dropped."""
    items: list[str] = []
    for line in lines:
        match = _BULLET.match(line)
        if match:
            items.append(match.group(1).strip())
        elif line.strip() and items and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()
        elif line.strip():
            items.append(line.strip())
    return [i for i in items if i and not _EMPTY_ITEM.match(i)]


def recent_context(history: Sequence[Message], max_chars: int = 12_000, per_message: int = 3_000) -> str | None:
    """The end of a conversation as plain text, newest kept first, for members who never saw it
    (the seed sent the recent conversation along with the question)."""
    rendered: list[str] = []
    used = 0
    for message in reversed(history):
        if isinstance(message, UserMessage):
            text = f"User: {message.text}"
        elif isinstance(message, AssistantMessage):
            calls = ", ".join(c.name for c in message.tool_calls)
            text = f"Assistant: {message.text}" + (f" [called {calls}]" if calls else "")
        elif isinstance(message, ToolResultMessage):
            text = f"Tool result ({message.name}{', error' if message.is_error else ''}): {message.content}"
        else:
            continue
        text = _clip(text, per_message)
        if used + len(text) > max_chars and rendered:
            break
        rendered.append(text)
        used += len(text)
    return "\n\n".join(reversed(rendered)) or None
