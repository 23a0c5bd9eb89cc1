"""Provider-neutral conversation history.

The loop keeps one history that any provider adapter can turn into its own request format. Each
assistant message also keeps the *replay items* of the provider that produced it (OpenAI reasoning
items, Anthropic thinking blocks with signatures, Gemini thought signatures): some providers refuse a
tool-use continuation without them, and they are only valid for the provider that made them, so an
adapter uses them when ``replay.provider`` is its own kind and falls back to the neutral text and tool
calls otherwise (for example after the user switches the main model mid-session).

Messages are plain dataclasses with ``to_dict``/``from_dict`` so sessions can be persisted as JSON.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class ToolCall:
    """A tool call the model asked for. ``call_id`` pairs it with its :class:`ToolResultMessage`."""

    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class UserMessage:
    text: str
    context: dict[str, Any] | None = None
    #: the workspace summary at the start of this turn (files, notebooks, processes)
    workspace: str | None = None
    #: files and notebooks the user attached, read when the turn started: [{type, path, cell_ids?, content}]
    #: (agent/attachments.py); the content lives here, in the memory, and not in the event log
    attachments: list[dict[str, Any]] = field(default_factory=list)
    role: Literal["user"] = "user"

    def rendered(self) -> str:
        """What every provider is sent: the text, plus the editor context the sidebar attached
        (notebook path, selected cells) as JSON, each attached file or notebook as its own labelled
        block, and the workspace state of that moment, so all adapters show the model the same thing.
        The state rides on the user message, not the system prompt, so the providers' prompt caches
        stay valid turn after turn."""
        text = self.text
        context = {k: v for k, v in (self.context or {}).items() if k != "attachments"}
        if context:
            text += f"\n\n<context>\n{json.dumps(context, indent=1, default=str)}\n</context>"
        for item in self.attachments:
            attrs = f'path="{html.escape(str(item.get("path", "")))}" type="{html.escape(str(item.get("type", "")))}"'
            if item.get("cell_ids"):
                attrs += f' cells="{html.escape(",".join(map(str, item["cell_ids"])))}"'
            text += f"\n\n<attachment {attrs}>\n{item.get('content', '')}\n</attachment>"
        if self.workspace:
            text += f"\n\n<workspace_state>\n{self.workspace}\n</workspace_state>"
        return text


@dataclass
class AssistantMessage:
    """One model turn: its visible text, the tool calls it made and the provider's replay items."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str = ""
    provider: str = ""  # the adapter kind that produced it: openai, anthropic, gemini, xai
    model: str = ""
    replay: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    role: Literal["assistant"] = "assistant"


@dataclass
class ToolResultMessage:
    call_id: str
    name: str
    content: str
    is_error: bool = False
    #: images shown to the model with the result: [{"mime": "image/png", "data": "<base64>"}]
    images: list[dict[str, str]] = field(default_factory=list)
    role: Literal["tool"] = "tool"


Message = UserMessage | AssistantMessage | ToolResultMessage


def message_to_dict(message: Message) -> dict[str, Any]:
    return asdict(message)


def message_from_dict(data: dict[str, Any]) -> Message:
    role = data.get("role")
    if role == "user":
        return UserMessage(text=data["text"], context=data.get("context"), workspace=data.get("workspace"),
                           attachments=data.get("attachments") or [])
    if role == "assistant":
        calls = [ToolCall(**c) for c in data.get("tool_calls", [])]
        fields = {k: v for k, v in data.items() if k not in ("tool_calls", "role")}
        return AssistantMessage(tool_calls=calls, **fields)
    if role == "tool":
        fields = {k: v for k, v in data.items() if k != "role"}
        return ToolResultMessage(**fields)
    raise ValueError(f"unknown message role: {role!r}")


def unanswered_calls(history: list[Message]) -> list[ToolCall]:
    """Tool calls of the last assistant message that have no result yet.

    Every provider rejects a history where a tool call has no result, so the loop closes these
    (with a "cancelled" result) before it stops a turn.
    """
    answered = {m.call_id for m in history if isinstance(m, ToolResultMessage)}
    for message in reversed(history):
        if isinstance(message, AssistantMessage):
            return [c for c in message.tool_calls if c.call_id not in answered]
    return []
