"""The agent's memory: token counting, hierarchical compaction and the durable session store."""

from .compactor import CompactionResult, Compactor, estimated_savings, should_compact
from .store import SessionRecord, SessionStore, StoreError, default_store_path
from .tokens import PromptMeter, TokenCounter

__all__ = [
    "CompactionResult", "Compactor", "PromptMeter", "SessionRecord", "SessionStore", "StoreError",
    "TokenCounter", "default_store_path", "estimated_savings", "should_compact",
]
