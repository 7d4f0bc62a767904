"""Cost of one call: usage × the price in force when the call was made.

Exact throughout: every part is computed in whole nano-USD (1e-9 USD, rounded half-even) with
integer arithmetic, and the total is the sum of the parts, so the parts always add up to the total.
`Cost` gives the amounts as Decimal; `price_nanos` gives the integers themselves, which the span
pricing stage turns into attribute values without going through Decimal on every call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from spancost.pricing.table import STANDARD_TIER, ModelPrice, PriceSet, PriceTable, Rates, pricing_table
from spancost.pricing.usage import Usage

NANO_USD = Decimal("1e-9")

# How providers name their service tiers in responses → the table's tier names.
_SERVICE_TIERS = {
    "default": STANDARD_TIER,
    "standard": STANDARD_TIER,
    "auto": STANDARD_TIER,
    "scale": STANDARD_TIER,
    "on_demand": STANDARD_TIER,
    "batch": "batch",
    "flex": "flex",
    "priority": "priority",
}


@dataclass(frozen=True, slots=True)
class Cost:
    """What a call cost, in USD, with the price it was computed from."""

    total: Decimal
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    key: str
    """The price-table entry, provider/model."""
    version: str
    """The price table's version (its newest checked date)."""
    tier: str
    """The service tier priced, with `;input>N` when the long-context rate applied."""


class Nanos(NamedTuple):
    """What a call cost in whole nano-USD (1e-9 USD), by part, and the tier priced."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    tier: str
    """The service tier priced, with `;input>N` when the long-context rate applied."""

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write


# Each rate (USD per million tokens) as the exact fraction num/den of nano-USD per token. Rates are
# few and repeat on every call, so each is converted once.
_NANO_FRACTIONS: dict[Decimal, tuple[int, int]] = {}


def _nanos(tokens: int, rate_mtok: Decimal) -> int:
    """tokens × rate, in nano-USD rounded half-even: integer arithmetic, exact at any size."""
    if not tokens:
        return 0
    fraction = _NANO_FRACTIONS.get(rate_mtok)
    if fraction is None:
        fraction = _NANO_FRACTIONS[rate_mtok] = (rate_mtok * 1000).as_integer_ratio()
    numerator, denominator = fraction
    if denominator == 1:
        return tokens * numerator
    quotient, remainder = divmod(tokens * numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    return quotient


def service_tier(name: str | None) -> str:
    """The table's tier for a provider's tier name; unknown and absent names are standard."""
    return _SERVICE_TIERS.get(name.lower(), STANDARD_TIER) if name else STANDARD_TIER


def price_nanos(usage: Usage, prices: PriceSet) -> Nanos:
    """The cost of `usage` at `prices` (one model's price in one period), in nano-USD by part."""
    tier = service_tier(usage.service_tier)
    if tier != STANDARD_TIER:
        if tier in prices.service_tiers:
            prices = prices.service_tiers[tier]
        else:
            tier = STANDARD_TIER
    rates: Rates = prices.rates
    label = tier
    long_context = prices.long_context
    if long_context is not None and usage.input_tokens > long_context.above_input_tokens:
        rates = long_context.rates
        label = f"{tier};input>{long_context.above_input_tokens}"

    write_1h = usage.cache_write_1h_tokens
    write_5m = usage.cache_write_tokens - write_1h
    write_rate = rates.cache_write if rates.cache_write is not None else rates.input
    write_1h_rate = rates.cache_write_1h if rates.cache_write_1h is not None else write_rate
    read_rate = rates.cache_read if rates.cache_read is not None else rates.input

    output_tokens = usage.output_tokens
    if rates.reasoning is not None and usage.reasoning_tokens:
        reasoning = min(usage.reasoning_tokens, output_tokens)
        output = _nanos(reasoning, rates.reasoning) + _nanos(output_tokens - reasoning, rates.output)
    else:
        output = _nanos(output_tokens, rates.output)
    return Nanos(
        input=_nanos(usage.uncached_input_tokens, rates.input),
        output=output,
        cache_read=_nanos(usage.cache_read_tokens, read_rate),
        cache_write=_nanos(write_5m, write_rate) + _nanos(write_1h, write_1h_rate),
        tier=label,
    )


def _usd(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-9)


def cost_of(usage: Usage, model: ModelPrice, *, at: dt.datetime | None, version: str) -> Cost:
    """The cost of `usage` on `model` at time `at` (UTC; None: the newest price)."""
    parts = price_nanos(usage, model.price_at(at))
    return Cost(
        total=_usd(parts.total),
        input=_usd(parts.input),
        output=_usd(parts.output),
        cache_read=_usd(parts.cache_read),
        cache_write=_usd(parts.cache_write),
        key=model.key,
        version=version,
        tier=parts.tier,
    )


def calc_cost(
    usage: Usage,
    model: str,
    *,
    provider: str | None = None,
    at: dt.datetime | None = None,
    table: PriceTable | None = None,
) -> Cost | None:
    """The cost of a call to `model`, or None when the model is not in the price table (unpriced)."""
    table = table or pricing_table()
    entry = table.find(model, provider)
    if entry is None:
        return None
    return cost_of(usage, entry, at=at, version=table.version)
