"""The one price table: USD per million tokens, by model name prefix.

Prices change; override or extend them with ``c.IDEAgent.model_prices`` (same shape). A model that
matches no entry is reported with ``cost_usd = None`` ("unpriced"), never a made-up number.
Lookup uses the longest matching prefix, so ``gpt-5-mini`` is not priced as ``gpt-5``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Usage


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached_input: float | None = None


DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-5": Price(1.25, 10.0, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, 0.025),
    "gpt-5-nano": Price(0.05, 0.4, 0.005),
    "gpt-4.1": Price(2.0, 8.0, 0.5),
    "gpt-4o": Price(2.5, 10.0, 1.25),
    "o3": Price(2.0, 8.0, 0.5),
    "o4-mini": Price(1.1, 4.4, 0.275),
    # Anthropic
    "claude-opus-4": Price(15.0, 75.0, 1.5),
    "claude-sonnet-4": Price(3.0, 15.0, 0.3),
    "claude-haiku-4": Price(1.0, 5.0, 0.1),
    # xAI
    "grok-4": Price(3.0, 15.0, 0.75),
    "grok-4-fast": Price(0.2, 0.5, 0.05),
    # Google
    "gemini-2.5-pro": Price(1.25, 10.0, 0.31),
    "gemini-2.5-flash": Price(0.3, 2.5, 0.075),
}


class PriceTable:
    def __init__(self, overrides: dict[str, dict[str, float]] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES)
        for model, p in (overrides or {}).items():
            self.prices[model] = Price(**p)

    def lookup(self, model: str) -> Price | None:
        best = None
        for prefix in self.prices:
            if model.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return self.prices[best] if best else None

    def cost(self, model: str, usage: Usage) -> float | None:
        """Cost of one call. Reasoning tokens are billed as output and already counted in it."""
        price = self.lookup(model)
        if price is None:
            return None
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_rate = price.cached_input if price.cached_input is not None else price.input
        total = (
            (usage.input_tokens - cached) * price.input
            + cached * cached_rate
            + usage.output_tokens * price.output
        )
        return round(total / 1_000_000, 8)
