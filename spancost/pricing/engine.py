"""Cost of one call: usage × the price in force when the call was made.

Decimal throughout; every part is rounded to 1e-9 USD (half-even) and the total is the sum of the
rounded parts, so the parts always add up to the total.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from spancost.pricing.table import STANDARD_TIER, ModelPrice, PriceSet, PriceTable, Rates, pricing_table
from spancost.pricing.usage import Usage

NANO_USD = Decimal("1e-9")
_PER_MILLION = Decimal(1_000_000)

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


def _usd(tokens: int, rate_mtok: Decimal) -> Decimal:
    return (Decimal(tokens) * rate_mtok / _PER_MILLION).quantize(NANO_USD, rounding=ROUND_HALF_EVEN)


def service_tier(name: str | None) -> str:
    """The table's tier for a provider's tier name; unknown and absent names are standard."""
    return _SERVICE_TIERS.get((name or "").lower(), STANDARD_TIER)


def cost_of(usage: Usage, model: ModelPrice, *, at: dt.datetime | None, version: str) -> Cost:
    """The cost of `usage` on `model` at time `at` (UTC; None: the newest price)."""
    prices: PriceSet = model.price_at(at)
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

    input_cost = _usd(usage.uncached_input_tokens, rates.input)
    cache_read = _usd(usage.cache_read_tokens, read_rate)
    cache_write = _usd(write_5m, write_rate) + _usd(write_1h, write_1h_rate)
    if rates.reasoning is not None and usage.reasoning_tokens:
        reasoning = min(usage.reasoning_tokens, usage.output_tokens)
        output = _usd(reasoning, rates.reasoning) + _usd(usage.output_tokens - reasoning, rates.output)
    else:
        output = _usd(usage.output_tokens, rates.output)
    return Cost(
        total=input_cost + output + cache_read + cache_write,
        input=input_cost,
        output=output,
        cache_read=cache_read,
        cache_write=cache_write,
        key=model.key,
        version=version,
        tier=label,
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
