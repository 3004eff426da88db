"""Amounts on the hot path: integer nano-units of the team's currency.

The relay and Redis count money in integers (Redis counters are int64 and Lua
compares doubles, exact to 2**53 nanos, about 9 million currency units per
counter, with only the last nano uncertain above). Decimals convert at the
edges, rounding costs up so rounding never undercharges.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

NANO = Decimal(1_000_000_000)
PER_MILLION = 1_000_000
CENT = Decimal("0.01")


def to_nanos(amount: Decimal) -> int:
    return int((amount * NANO).to_integral_value(rounding=ROUND_CEILING))


def from_nanos(nanos: int) -> Decimal:
    return (Decimal(nanos) / NANO).quantize(Decimal("0.000000001"))


def display(amount: Decimal, places: int = 2) -> str:
    """An amount for people: two places, more (up to six) only when they matter."""
    shown = amount.quantize(Decimal(1).scaleb(-places))
    if shown == amount:
        return f"{shown:f}"
    return f"{amount.quantize(Decimal('0.000001')).normalize():f}"


@dataclass(frozen=True, slots=True)
class Rate:
    """A model's price in a team's currency, in nanos per 1M tokens."""

    price_id: int
    input: int
    cached_input: int
    cache_write: int
    output: int

    def cost(self, prompt: int, completion: int, cached: int = 0, cache_write: int = 0) -> int:
        """Nanos for a usage; cached and cache-write tokens are subsets of ``prompt``."""
        cached = min(cached, prompt)
        cache_write = min(cache_write, prompt - cached)
        total = (
            (prompt - cached - cache_write) * self.input
            + cached * self.cached_input
            + cache_write * self.cache_write
            + completion * self.output
        )
        return -(-total // PER_MILLION)

    def estimate(self, prompt: int, completion: int) -> int:
        """An upper bound: every prompt token at the dearer of input and cache write."""
        total = prompt * max(self.input, self.cache_write) + completion * self.output
        return -(-total // PER_MILLION)
