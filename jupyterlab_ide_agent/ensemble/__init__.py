"""ConsultEnsemble: several frontier models asked at once, one synthesized verdict.

:mod:`.config` holds who is asked (defaults as data), :mod:`.prompts` what they are asked and how the
synthesis is parsed, :mod:`.stream` the coalesced member events, :mod:`.consult` the consultation.
"""

from .config import (
    DEFAULT_MEMBERS,
    DEFAULT_SYNTHESIZER,
    MemberSpec,
    members_from_config,
    synthesizer_from_config,
)
from .consult import Ensemble, MemberResult, Verdict
from .prompts import recent_context

__all__ = [
    "DEFAULT_MEMBERS",
    "DEFAULT_SYNTHESIZER",
    "Ensemble",
    "MemberResult",
    "MemberSpec",
    "Verdict",
    "members_from_config",
    "recent_context",
    "synthesizer_from_config",
]
