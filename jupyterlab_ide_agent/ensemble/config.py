"""Who sits on the ensemble: member specs and their defaults, kept as data in one place.

The consultation logic never names a model; it reads :class:`MemberSpec` values. The defaults below
are the seed's roster; ``c.IDEAgent.ensemble_members`` (a list of dicts) and
``c.IDEAgent.ensemble_synthesizer`` (one dict) replace them through :func:`members_from_config`
and :func:`synthesizer_from_config`, which validate and say clearly what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ..providers.base import ReasoningOptions
from ..providers.registry import ModelRef, parse_model

#: Seconds one member may take. The seed allowed 3,600 s per member; a member plus the synthesis
#: must fit inside the agent's tool timeout (``c.IDEAgent.tool_timeout``, 3,600 s by default).
DEFAULT_MEMBER_TIMEOUT = 1200.0
DEFAULT_SYNTHESIZER_TIMEOUT = 900.0
#: room for long reasoning plus the answer (OpenAI and Gemini count reasoning inside this cap)
DEFAULT_MAX_OUTPUT_TOKENS = 32_000

DEFAULT_MEMBERS: tuple[dict[str, Any], ...] = (
    {"name": "openai", "model": "openai:gpt-5", "effort": "high", "summary": True},
    {"name": "anthropic", "model": "anthropic:claude-opus-4-1", "budget_tokens": 10_000, "summary": True},
    # Grok-4 models always reason and answer HTTP 400 to any reasoning_effort (docs.x.ai, "Reasoning"),
    # so no effort is sent; give one ("high") only to models that take it, such as grok-3-mini.
    {"name": "xai", "model": "xai:grok-4-fast-reasoning"},
    {"name": "gemini", "model": "gemini:gemini-2.5-pro", "budget_tokens": -1, "summary": True},
)
DEFAULT_SYNTHESIZER: dict[str, Any] = {
    "name": "synthesizer", "model": "openai:o3", "effort": "high", "summary": True,
    "timeout": DEFAULT_SYNTHESIZER_TIMEOUT,
}

_EFFORTS = {"minimal", "low", "medium", "high"}


@dataclass(frozen=True)
class MemberSpec:
    """One consulted model. ``effort`` drives OpenAI/xAI, ``budget_tokens`` Anthropic/Gemini
    thinking (-1 = Gemini's dynamic budget), ``summary`` asks for visible reasoning text."""

    name: str
    model: str  # "<provider>:<model>", provider being a key of c.IDEAgent.providers
    effort: str | None = None
    budget_tokens: int | None = None
    summary: bool = True
    timeout: float = DEFAULT_MEMBER_TIMEOUT
    max_output_tokens: int | None = DEFAULT_MAX_OUTPUT_TOKENS

    @property
    def ref(self) -> ModelRef:
        return parse_model(self.model)

    @property
    def reasoning(self) -> ReasoningOptions | None:
        """None when neither knob is set: the model's own default (how Grok-4 must be called)."""
        if self.effort is None and self.budget_tokens is None:
            return None
        return ReasoningOptions(effort=self.effort, budget_tokens=self.budget_tokens, summary=self.summary)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def member_from_dict(entry: Any, *, where: str, timeout: float | None = None) -> MemberSpec:
    """Validate one config entry; ``where`` names it in errors ("ensemble_members[2]")."""
    if not isinstance(entry, dict):
        raise ValueError(  # noqa: TRY004 - every config problem is one ValueError for the caller
            f"{where}: expected a dict like {{'name': ..., 'model': 'openai:gpt-5'}}, got {type(entry).__name__}")
    known = {f.name for f in fields(MemberSpec)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(known)}")
    model = entry.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"{where}: 'model' is required, written '<provider>:<model>' (e.g. 'openai:gpt-5')")
    try:
        ref = parse_model(model)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    values = {**entry, "model": str(ref), "name": str(entry.get("name") or ref.provider)}
    if timeout is not None and "timeout" not in entry:
        values["timeout"] = timeout
    spec = MemberSpec(**values)
    if spec.effort is not None and spec.effort not in _EFFORTS:
        raise ValueError(f"{where}: effort must be one of {sorted(_EFFORTS)} or None, got {spec.effort!r}")
    if spec.budget_tokens is not None and (not isinstance(spec.budget_tokens, int) or spec.budget_tokens < -1):
        raise ValueError(f"{where}: budget_tokens must be an int >= -1 (-1 = dynamic), got {spec.budget_tokens!r}")
    if not isinstance(spec.timeout, (int, float)) or spec.timeout <= 0:
        raise ValueError(f"{where}: timeout must be a positive number of seconds, got {spec.timeout!r}")
    if spec.max_output_tokens is not None and (not isinstance(spec.max_output_tokens, int)
                                               or spec.max_output_tokens <= 0):
        raise ValueError(f"{where}: max_output_tokens must be a positive int or None")
    return replace(spec, timeout=float(spec.timeout))


def members_from_config(entries: list[dict[str, Any]] | None, timeout: float | None = None) -> list[MemberSpec]:
    """``c.IDEAgent.ensemble_members`` -> specs (None or empty = the defaults). ``timeout``
    (``c.IDEAgent.ensemble_timeout``) applies to every member that does not set its own."""
    if not isinstance(entries, (list, tuple, type(None))):
        raise ValueError(  # noqa: TRY004
            f"ensemble_members: expected a list of dicts, got {type(entries).__name__}")
    source = list(entries) if entries else list(DEFAULT_MEMBERS)
    specs = [member_from_dict(e, where=f"ensemble_members[{i}]", timeout=timeout) for i, e in enumerate(source)]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"ensemble_members: member names must be unique; repeated: {duplicates}")
    if "synthesizer" in names:
        raise ValueError("ensemble_members: 'synthesizer' is reserved for the synthesizer's events")
    return specs


def synthesizer_from_config(entry: dict[str, Any] | None, timeout: float | None = None) -> MemberSpec:
    """``c.IDEAgent.ensemble_synthesizer`` -> spec. Without ``model`` the given keys adjust the
    default (o3, high effort); with ``model`` the entry stands alone, so a model without reasoning
    knobs is never sent o3's ``effort``."""
    if entry is not None and not isinstance(entry, dict):
        raise ValueError(f"ensemble_synthesizer: expected a dict, got {type(entry).__name__}")
    values = dict(DEFAULT_SYNTHESIZER)
    if entry and "model" in entry:  # another model: do not inherit o3's reasoning knobs silently
        values = {"name": "synthesizer", "timeout": DEFAULT_SYNTHESIZER_TIMEOUT}
    values.update(entry or {})
    if timeout is not None and not (entry and "timeout" in entry):
        values["timeout"] = timeout
    values["name"] = "synthesizer"
    return member_from_dict(values, where="ensemble_synthesizer")
