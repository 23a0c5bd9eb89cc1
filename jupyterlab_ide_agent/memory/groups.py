"""The shape of a compacted history: summaries at the head, then whole tool-call groups.

A compacted history is ``[note?] + summaries + body``. Summaries and the note are ``UserMessage``s
marked in ``context`` (``summary_level`` >= 1, or ``compaction_note``), so they persist through
``message_to_dict``/``message_from_dict`` unchanged and every provider sees them as user text: the
head is user-role, so whatever the body starts with (a user message, merged by Anthropic's adapter,
or an assistant turn) the alternation is valid everywhere.

The body is cut only at *group starts*: an assistant message with tool calls and all the tool results
that answer it form one group, so a kept part never begins with a tool result and no call is ever
separated from its result. Replay items live inside the assistant messages and are never touched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..agent.messages import AssistantMessage, Message, ToolResultMessage, UserMessage

SUMMARY_KEY = "summary_level"
NOTE_KEY = "compaction_note"


def summary_level(message: Message) -> int:
    """The level of a summary message (1 = summary of messages, 2+ = summary of summaries), else 0."""
    if not isinstance(message, UserMessage):
        return 0
    level = getattr(message, "summary_level", None)  # a first-class field, should messages.py get one
    if level:
        return int(level)
    return int((message.context or {}).get(SUMMARY_KEY, 0) or 0)


def is_note(message: Message) -> bool:
    return isinstance(message, UserMessage) and bool((message.context or {}).get(NOTE_KEY))


def is_head(message: Message) -> bool:
    return summary_level(message) > 0 or is_note(message)


def covered(message: Message) -> int:
    """How many original messages a summary stands for (a note: how many were dropped)."""
    ctx = message.context if isinstance(message, UserMessage) else None
    return int((ctx or {}).get("messages", 0) or 0)


def make_summary(text: str, level: int, messages: int) -> UserMessage:
    header = (f"[Summary of {messages} earlier messages of this session (level {level}); "
              "the conversation continues after it.]")
    return UserMessage(f"{header}\n{text.strip()}", context={SUMMARY_KEY: level, "messages": messages})


def summary_body(message: UserMessage) -> str:
    """A summary's own text without the header line :func:`make_summary` added."""
    first, _, rest = message.text.partition("\n")
    return rest if first.startswith("[Summary of ") else message.text


def make_note(dropped: int, reason: str) -> UserMessage:
    text = (f"[Note: {dropped} earlier messages were dropped because the summarizer failed: {reason}. "
            "Ask the user or re-read files and notebooks if you need what they contained.]")
    return UserMessage(text, context={NOTE_KEY: True, "messages": dropped})


def split_head(history: Sequence[Message]) -> tuple[list[Message], list[Message]]:
    """(head: the leading summaries and note, body: everything after them)."""
    n = 0
    while n < len(history) and is_head(history[n]):
        n += 1
    return list(history[:n]), list(history[n:])


def group_starts(body: Sequence[Message]) -> list[int]:
    """Indices where a group starts: a user message, an assistant message (with the tool results
    that follow it), never a tool result. Stray results attach to the group before them."""
    starts: list[int] = []
    i, n = 0, len(body)
    while i < n:
        if isinstance(body[i], ToolResultMessage) and starts:
            i += 1
            continue
        starts.append(i)
        i += 1
        while i < n and isinstance(body[i], ToolResultMessage):
            i += 1
    return starts


def latest_user_index(body: Sequence[Message]) -> int | None:
    """The latest real user request (never a summary or note)."""
    for i in range(len(body) - 1, -1, -1):
        if isinstance(body[i], UserMessage) and not is_head(body[i]):
            return i
    return None


def pairing_problems(history: Sequence[Message]) -> list[str]:
    """Why ``history`` would be rejected for its tool calls (empty when every call is answered by
    the results right after it and no result stands alone)."""
    problems: list[str] = []
    i, n = 0, len(history)
    while i < n:
        m = history[i]
        i += 1
        if isinstance(m, ToolResultMessage):
            problems.append(f"message {i - 1}: tool result {m.call_id} without its call before it")
        elif isinstance(m, AssistantMessage) and m.tool_calls:
            wanted = {c.call_id for c in m.tool_calls}
            got: set[str] = set()
            while i < n and isinstance(history[i], ToolResultMessage) and history[i].call_id in wanted:
                got.add(history[i].call_id)  # type: ignore[union-attr]
                i += 1
            if got != wanted:
                problems.append(f"message {i - 1}: calls {sorted(wanted - got)} have no result right after")
    return problems


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 3):]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters omitted ...]\n{tail}"


def render_transcript(messages: Sequence[Message], item_chars: int = 6000) -> str:
    """The messages as plain text for the summarizer: provider-neutral, so any summarizer model can
    read any history (no tool-call structure to keep valid), with very long items cut in the middle."""
    lines: list[str] = []
    for m in messages:
        if isinstance(m, UserMessage):
            if summary_level(m):
                lines.append(f"[earlier summary, level {summary_level(m)}, {covered(m)} messages]\n"
                             f"{summary_body(m)}")
            elif is_note(m):
                lines.append(f"[note] {m.text}")
            else:
                lines.append(f"[user]\n{_cut(m.rendered(), item_chars)}")
        elif isinstance(m, AssistantMessage):
            if m.text:
                lines.append(f"[assistant{' (interrupted)' if m.interrupted else ''}]\n{_cut(m.text, item_chars)}")
            for call in m.tool_calls:
                args = _cut(json.dumps(call.arguments, ensure_ascii=False), 800)
                lines.append(f"[assistant calls {call.name}] {args}")
        elif isinstance(m, ToolResultMessage):
            flag = " (error)" if m.is_error else ""
            images = len(getattr(m, "images", None) or ())
            shown = f" ({images} image(s) shown to the agent)" if images else ""
            lines.append(f"[result of {m.name}{flag}{shown}]\n{_cut(m.content, item_chars)}")
    return "\n\n".join(lines)
