"""The pricing stage: the cost attributes a finished span should carry.

One function over a span's attributes and start time, shared by the in-process span processor
and the collector, so that a span is priced the same way wherever it is priced. It never sees SDK
objects: whoever emitted the span (spancost, the anthropic SDK, another instrumentation), the
semantic-convention attributes are the contract.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from spancost import attributes as attr
from spancost._log import log_once
from spancost.pricing.engine import price_nanos
from spancost.pricing.table import PriceTable, pricing_table
from spancost.pricing.usage import Usage

logger = logging.getLogger("spancost.pricing")

# Enum values read once: this module runs for every finished span.
_PRICED = attr.CostStatus.PRICED.value
_PROVIDER = attr.CostStatus.PROVIDER.value
_UNPRICED = attr.CostStatus.UNPRICED.value
_LOCAL = attr.CostSource.LOCAL.value
_NANO = 1_000_000_000  # nano-USD per USD; an int, so that int / _NANO is one correctly rounded division


def _tokens(value: Any) -> int | None:
    if type(value) is int:  # the usual case, first: this runs for every finished span
        return value if value >= 0 else None
    if type(value) is str:  # how the collector sees every attribute
        # isascii: "²".isdigit() is true, and int("²") fails
        return int(value) if value.isascii() and value.isdigit() else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def span_model(attributes: Mapping[str, Any]) -> str | None:
    """The model that answered, else the one asked for."""
    return _text(attributes.get(attr.GEN_AI_RESPONSE_MODEL)) or _text(
        attributes.get(attr.GEN_AI_REQUEST_MODEL)
    )


def span_operation(attributes: Mapping[str, Any]) -> Any:
    """`gen_ai.operation.name`, else what OpenLLMetry's `llm.request.type` stands for (None: neither)."""
    operation = attributes.get(attr.GEN_AI_OPERATION_NAME)
    if operation is None:
        older = attributes.get(attr.LLM_REQUEST_TYPE)
        if older is not None:
            return attr.LLM_REQUEST_TYPES.get(older) if isinstance(older, str) else None
    return operation


# Older spellings of each count, read only when the semantic-convention name is absent (see the names
# module for where each comes from). OpenLLMetry's prompt tokens are all input (its anthropic
# instrumentation adds cache reads and writes to them), the semantic-convention meaning.
_OLDER_INPUT = (attr.GEN_AI_USAGE_PROMPT_TOKENS, attr.LLM_USAGE_PROMPT_TOKENS)
_OLDER_OUTPUT = (attr.GEN_AI_USAGE_COMPLETION_TOKENS, attr.LLM_USAGE_COMPLETION_TOKENS)
_CACHE_READ = (attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_OLD)
_CACHE_WRITE = (
    attr.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_OLD,
)
_REASONING = (
    attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    attr.GEN_AI_USAGE_REASONING_TOKENS,
    attr.LLM_USAGE_REASONING_TOKENS,
)
_SERVICE_TIER = (
    attr.ANTHROPIC_RESPONSE_SERVICE_TIER,
    attr.OPENAI_RESPONSE_SERVICE_TIER,
    attr.GEN_AI_RESPONSE_SERVICE_TIER,
)


def _first_tokens(attributes: Mapping[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = _tokens(attributes.get(name))
        if value is not None:
            return value
    return None


def span_usage(attributes: Mapping[str, Any]) -> Usage | None:
    """Usage from semantic-convention attributes (or older spellings of them), or None when the span
    reports no tokens."""
    input_tokens = _tokens(attributes.get(attr.GEN_AI_USAGE_INPUT_TOKENS))
    if input_tokens is None:
        input_tokens = _first_tokens(attributes, _OLDER_INPUT)
    output_tokens = _tokens(attributes.get(attr.GEN_AI_USAGE_OUTPUT_TOKENS))
    if output_tokens is None:
        output_tokens = _first_tokens(attributes, _OLDER_OUTPUT)
    if input_tokens is None and output_tokens is None:
        return None
    cache_write = _first_tokens(attributes, _CACHE_WRITE) or 0
    tier = None
    for name in _SERVICE_TIER:
        tier = _text(attributes.get(name))
        if tier is not None:
            break
    return Usage(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        cache_read_tokens=_first_tokens(attributes, _CACHE_READ) or 0,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=min(
            _tokens(attributes.get(attr.ANTHROPIC_CACHE_WRITE_1H_TOKENS)) or 0, cache_write
        ),
        reasoning_tokens=_first_tokens(attributes, _REASONING) or 0,
        service_tier=tier,
    )


def is_inference(attributes: Mapping[str, Any]) -> bool:
    """Whether the span is one model call (and so the only kind of span that carries a cost)."""
    operation = span_operation(attributes)
    if operation is not None:
        return operation in attr.INFERENCE_OPERATIONS
    # Emitters that set no operation name: a model and token counts make it a model call.
    return span_model(attributes) is not None and span_usage(attributes) is not None


def _amount(value: Any) -> float | None:
    """A cost that came with the span (a number, or its text once it went through OTLP), if usable."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


# Semantic-convention name → (older names, Usage field): counts an older emitter sent are also written
# under the standard name, so that llm_calls and the dashboards (which read only standard names) see them.
_STANDARD_COUNTS = (
    (attr.GEN_AI_USAGE_INPUT_TOKENS, _OLDER_INPUT, "input_tokens"),
    (attr.GEN_AI_USAGE_OUTPUT_TOKENS, _OLDER_OUTPUT, "output_tokens"),
    (attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, _CACHE_READ[1:], "cache_read_tokens"),
    (attr.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, _CACHE_WRITE[2:], "cache_write_tokens"),
    (attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, _REASONING[1:], "reasoning_tokens"),
)


def _standard_spellings(attributes: Mapping[str, Any], usage: Usage | None, extra: dict[str, Any]) -> None:
    if usage is None:
        return
    for standard, older, field in _STANDARD_COUNTS:
        if standard not in attributes:
            for name in older:  # a loop, not any(...): this runs for every priced span, twice or more
                if name in attributes:
                    extra[standard] = getattr(usage, field)
                    break


_UNREAD: Any = object()


def cost_attributes(
    attributes: Mapping[str, Any],
    start_time_ns: int | None,
    *,
    table: PriceTable | None = None,
    usage: Usage | None = _UNREAD,
) -> dict[str, Any]:
    """The attributes to add to a finished span so that it carries its cost; empty when none apply.

    A span that is not a model call, or that reports no usage, gets nothing. A span that already
    carries a cost keeps it (marked `provider` when nobody said where it came from; OpenLIT's
    `gen_ai.usage.cost` is copied to `gen_ai.usage.cost.amount`). An unknown model is `unpriced`: no
    amount, never $0. Usage, cost and operation that an older emitter spelled its own way are also
    written under the standard names. `usage`, when the caller has already read it with `span_usage`,
    saves reading it again.
    """
    operation = span_operation(attributes)
    if operation is not None and operation not in attr.INFERENCE_OPERATIONS:
        return {}
    extra: dict[str, Any] = {}
    if operation is not None and attr.GEN_AI_OPERATION_NAME not in attributes:
        extra[attr.GEN_AI_OPERATION_NAME] = operation
    if usage is _UNREAD:
        usage = span_usage(attributes)
    amount = attributes.get(attr.GEN_AI_USAGE_COST_AMOUNT)
    if amount is None and attr.GEN_AI_USAGE_COST in attributes:
        amount = _amount(attributes[attr.GEN_AI_USAGE_COST])
        if amount is not None:
            extra[attr.GEN_AI_USAGE_COST_AMOUNT] = amount
            extra[attr.GEN_AI_USAGE_COST_CURRENCY] = "USD"  # OpenLIT prices in USD
    if amount is not None:
        _standard_spellings(attributes, usage, extra)
        if attributes.get(attr.COST_STATUS) is None:
            extra[attr.COST_STATUS] = _PROVIDER
        return extra
    model = span_model(attributes)
    if usage is None or model is None:
        return extra
    _standard_spellings(attributes, usage, extra)
    provider = _text(attributes.get(attr.GEN_AI_PROVIDER_NAME)) or _text(attributes.get(attr.GEN_AI_SYSTEM))
    table = table or pricing_table()
    entry = table.find(model, provider)
    if entry is None:
        log_once(
            logger,
            f"unpriced:{model}",
            "spancost: no price for model %r (provider %s); its calls are "
            "recorded as unpriced. Add it with SPANCOST_PRICES.",
            model,
            provider,
        )
        extra[attr.COST_STATUS] = _UNPRICED
        return extra
    # Nano-USD integers to doubles in one correctly rounded division each:
    # the same doubles as the Decimal amounts `calc_cost` gives.
    parts = price_nanos(usage, entry.price_at_ns(start_time_ns or None))
    extra.update(
        {
            attr.GEN_AI_USAGE_COST_AMOUNT: parts.total / _NANO,
            attr.GEN_AI_USAGE_COST_CURRENCY: "USD",
            attr.GEN_AI_USAGE_COST_SOURCE: _LOCAL,
            attr.COST_STATUS: _PRICED,
            attr.COST_INPUT: parts.input / _NANO,
            attr.COST_OUTPUT: parts.output / _NANO,
            attr.COST_CACHE_READ: parts.cache_read / _NANO,
            attr.COST_CACHE_WRITE: parts.cache_write / _NANO,
            attr.PRICE_KEY: entry.key,
            attr.PRICE_VERSION: table.version,
            attr.PRICE_TIER: parts.tier,
        }
    )
    return extra
