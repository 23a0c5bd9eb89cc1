"""ConsultEnsemble: the agent asks a panel of frontier models and gets one plan back.

The tool is a thin shell over :class:`~..ensemble.Ensemble`: it forwards the members' events through
``ctx.emit`` (so they reach the client between this call's ``tool_call`` and ``tool_result``) and
renders the verdict for the main model, plan first. The ensemble comes from a factory called per
consultation, so the agent's current pool, prices and ensemble config are always the ones used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ..ensemble.consult import Ensemble
from .base import Tool, ToolContext, ToolError, ToolResult


class ConsultEnsemble(Tool):
    name = "ConsultEnsemble"
    description = (
        "Ask a panel of frontier models from several providers (each reasoning hard, independently) the same "
        "question at once, and get back one synthesized plan with the points they agree and disagree on. "
        "Use it for hard, consequential decisions (an architecture choice, a stubborn bug, a risky migration, "
        "a plan for a long job), not for routine steps: it takes minutes and costs more than a normal turn. "
        "The panel sees nothing but what you send: put the facts, code, errors and constraints it needs in "
        "`question` and `context`."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "question": {"type": "string", "minLength": 1,
                         "description": "The decision or problem, stated fully and precisely."},
            "context": {"type": "string",
                        "description": "Relevant code, error output, data shapes, constraints, what was tried."},
            "members": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                        "description": "Ask only these members, by name (default: all)."},
        },
        "required": ["question"],
        "additionalProperties": False,
    }

    def __init__(self, ensemble: Ensemble | Callable[[], Ensemble],
                 conversation: Callable[[], str | None] | None = None) -> None:
        """``ensemble``: an Ensemble or a factory for one. ``conversation``: returns the recent
        conversation as text (e.g. ``lambda: recent_context(agent.history)``), sent along as the
        seed did, so the panel knows what the user is working on."""
        self._ensemble = ensemble
        self._conversation = conversation

    def ensemble(self) -> Ensemble:
        return self._ensemble if isinstance(self._ensemble, Ensemble) else self._ensemble()

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        question = args["question"].strip()
        if not question:
            raise ToolError("ConsultEnsemble needs a non-empty question.")
        parts = []
        if args.get("context", "").strip():
            parts.append(args["context"].strip())
        conversation = self._conversation() if self._conversation else None
        if conversation:
            parts.append(f"### Recent conversation with the user\n{conversation}")
        ensemble = self.ensemble()
        try:
            ensemble.select(args.get("members"))
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        verdict = await ensemble.consult(question, "\n\n".join(parts) or None, ctx.emit, args.get("members"))
        return ToolResult(verdict.to_text(), is_error=verdict.status == "failed", data=verdict.to_dict())
