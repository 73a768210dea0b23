"""The language models that prompt and embedding steps call: prices and speeds."""

from __future__ import annotations

from decimal import Decimal

from stepgraph.demo.text_tables import table
from stepgraph.records import format_cost
from stepgraph.store.types import COST_SCALE

# US dollars per million tokens (input, output), as the providers publish them, and
# generation speed in milliseconds per completion token.
_MODELS = table("""
    gpt-4o-mini             0.15    0.60    9
    gpt-4o                  2.50    10.00   14
    claude-3-5-sonnet       3.00    15.00   16
    claude-3-5-haiku        0.80    4.00    8
    gemini-1.5-flash        0.075   0.30    5
    text-embedding-3-small  0.02    0       0
""")
_PRICES: dict[str, tuple[Decimal, Decimal]] = {
    model: (Decimal(i).scaleb(-6), Decimal(o).scaleb(-6)) for model, i, o, _ in _MODELS
}
_COST_QUANTUM = Decimal(1).scaleb(-COST_SCALE)

MS_PER_TOKEN: dict[str, float] = {model: float(ms) for model, _, _, ms in _MODELS}
"""How long each model takes to generate one completion token, in milliseconds."""


def call_cost(model: str, prompt_tokens: int, completion_tokens: int) -> str:
    """What a call to ``model`` costs, in US dollars, as the contract spells costs."""
    price_in, price_out = _PRICES[model]
    total = (price_in * prompt_tokens + price_out * completion_tokens).quantize(_COST_QUANTUM)
    return format_cost(total)
