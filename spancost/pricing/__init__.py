"""Pricing: the dated price table and the cost of a call.

>>> from spancost.pricing import Usage, calc_cost
>>> calc_cost(Usage(input_tokens=1000, output_tokens=100), "gpt-4o-mini").total
Decimal('0.000210000')
"""

from spancost.pricing.engine import Cost, calc_cost, cost_of, service_tier
from spancost.pricing.table import (
    ModelPrice,
    PriceSet,
    PriceTable,
    PriceTableError,
    Rates,
    build_table,
    default_table,
    set_default_table,
)
from spancost.pricing.usage import Usage, anthropic_usage, openai_usage

__all__ = [
    "Cost",
    "ModelPrice",
    "PriceSet",
    "PriceTable",
    "PriceTableError",
    "Rates",
    "Usage",
    "anthropic_usage",
    "build_table",
    "calc_cost",
    "cost_of",
    "default_table",
    "openai_usage",
    "service_tier",
    "set_default_table",
]
