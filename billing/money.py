"""Amounts on the hot path: integer nano-units of the team's currency.

The relay and Redis count money in integers (Redis counters are int64 and Lua
compares doubles, exact to 2**53 nanos, about 9 million currency units per
counter, with only the last nano uncertain above). Decimals convert at the
edges, rounding costs up so rounding never undercharges.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

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


class TokenCounts(Protocol):
    """What a price applies to: ``wire.base.Usage`` on the relay, ``UsageRecord`` in the ledger
    (the same field names, so both price through ``Rate.cost_of``)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int


@dataclass(frozen=True, slots=True)
class Rate:
    """A model's price in a team's currency, in nanos per 1M tokens.

    ``cache_write`` prices the cache writes kept five minutes, ``cache_write_1h`` those kept
    an hour (None: the same as ``cache_write``)."""

    price_id: int
    input: int
    cached_input: int
    cache_write: int
    output: int
    cache_write_1h: int | None = None

    @property
    def long_write(self) -> int:
        return self.cache_write if self.cache_write_1h is None else self.cache_write_1h

    def cost(
        self,
        prompt: int,
        completion: int,
        cached: int = 0,
        cache_write: int = 0,
        cache_write_1h: int = 0,
    ) -> int:
        """Nanos for a usage, rounded up. Cached (read) and cache-write tokens are subsets of
        ``prompt`` and one-hour writes a subset of the writes: each token is priced once,
        at its own class's rate."""
        cached = min(max(cached, 0), prompt)
        cache_write = min(max(cache_write, 0), prompt - cached)
        long = min(max(cache_write_1h, 0), cache_write)
        total = (
            (prompt - cached - cache_write) * self.input
            + cached * self.cached_input
            + (cache_write - long) * self.cache_write
            + long * self.long_write
            + completion * self.output
        )
        return -(-total // PER_MILLION)

    def cost_of(self, usage: TokenCounts) -> int:
        """``cost`` of a request's token counts: the one way the relay's settle step, its
        cost metric and the ledger price a request, so they agree to the nano."""
        return self.cost(
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
            usage.cache_write_tokens,
            usage.cache_write_1h_tokens,
        )

    def estimate(self, prompt: int, completion: int) -> int:
        """An upper bound: every prompt token at the dearest of input and cache writes."""
        total = (
            prompt * max(self.input, self.cache_write, self.long_write) + completion * self.output
        )
        return -(-total // PER_MILLION)
