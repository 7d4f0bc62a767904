"""Exact costs of calls, computed by hand from the published prices (USD per million tokens).

Each test's docstring shows the arithmetic; amounts are Decimal, to 1e-9 USD.
"""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_price_table import GOOD_MODEL, write

from spancost import attributes as attr
from spancost.costing import cost_attributes
from spancost.pricing import Usage, anthropic_usage, build_table, calc_cost, default_table, openai_usage

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- OpenAI -----------------------------------------------------------------------------------------


def test_openai_dated_snapshot_with_cached_input() -> None:
    """gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out. prompt_tokens 1000 include 200 cached.

    800 × 0.15 = 120 µ$; 200 × 0.075 = 15 µ$; 100 × 0.60 = 60 µ$ → $0.000195
    """
    usage = openai_usage(
        {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 200}}
    )
    cost = calc_cost(usage, "gpt-4o-mini-2024-07-18")
    assert cost is not None
    assert cost.key == "openai/gpt-4o-mini"
    assert (cost.input, cost.cache_read, cost.output) == (
        Decimal("0.000120"),
        Decimal("0.000015"),
        Decimal("0.00006"),
    )
    assert cost.total == Decimal("0.000195000")
    assert cost.tier == "standard"


def test_openai_reasoning_tokens_are_priced_as_output() -> None:
    """gpt-5: 1.25 in, 10 out; completion_tokens 1500 include 1200 reasoning.

    2000 × 1.25 = $0.0025; 1500 × 10 = $0.015 → $0.0175
    """
    usage = openai_usage(
        {
            "prompt_tokens": 2000,
            "completion_tokens": 1500,
            "completion_tokens_details": {"reasoning_tokens": 1200},
        }
    )
    assert usage.reasoning_tokens == 1200
    cost = calc_cost(usage, "gpt-5-2025-08-07")
    assert cost is not None
    assert cost.total == Decimal("0.017500000")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param("2025-06-09T23:59:59", "0.050000000", id="day-before-cut: 1000×10 + 1000×40"),
        pytest.param("2025-06-10T00:00:00", "0.010000000", id="first-moment-after: 1000×2 + 1000×8"),
        pytest.param("2026-12-01T12:00:00", "0.010000000", id="long-after"),
    ],
)
def test_openai_price_change_takes_the_time_of_the_call(when: str, expected: str) -> None:
    """o3 was cut from 10 / 40 to 2 / 8 on 2025-06-10 (UTC)."""
    cost = calc_cost(Usage(input_tokens=1000, output_tokens=1000), "o3", at=at(when))
    assert cost is not None
    assert cost.total == Decimal(expected)


@pytest.mark.parametrize(
    ("input_tokens", "cached", "expected", "tier"),
    [
        pytest.param(271_999, 0, "0.694997500", "standard", id="below: 271999×2.5 + 1000×15"),
        pytest.param(272_000, 0, "0.695000000", "standard", id="at: 272000×2.5 + 1000×15"),
        pytest.param(272_001, 0, "1.382505000", "standard;input>272000", id="above: 272001×5 + 1000×22.5"),
        pytest.param(
            300_000,
            100_000,
            "1.072500000",
            "standard;input>272000",
            id="cached count toward it: 200000×5 + 100000×0.5 + 1000×22.5",
        ),
    ],
)
def test_openai_long_context_charges_the_whole_request_above_the_threshold(
    input_tokens: int, cached: int, expected: str, tier: str
) -> None:
    """gpt-5.4: 2.5 / 0.25 cached / 15; above 272k input: 5 / 0.5 / 22.5 for every token of the request."""
    cost = calc_cost(
        Usage(input_tokens=input_tokens, output_tokens=1000, cache_read_tokens=cached), "gpt-5.4"
    )
    assert cost is not None
    assert (cost.total, cost.tier) == (Decimal(expected), tier)


def test_openai_flex_service_tier() -> None:
    """o3 flex: 1 in, 0.25 cached, 4 out. 500 uncached + 500 cached in, 1000 out.

    500 × 1 = $0.0005; 500 × 0.25 = $0.000125; 1000 × 4 = $0.004 → $0.004625
    """
    usage = openai_usage(
        {"prompt_tokens": 1000, "completion_tokens": 1000, "prompt_tokens_details": {"cached_tokens": 500}},
        service_tier="flex",
    )
    cost = calc_cost(usage, "o3", at=at("2026-11-01T00:00:00"))
    assert cost is not None
    assert (cost.total, cost.tier) == (Decimal("0.004625000"), "flex")


def test_openai_embeddings() -> None:
    """text-embedding-3-small: $0.02 per million input tokens; 8 tokens → $0.00000016."""
    cost = calc_cost(openai_usage({"prompt_tokens": 8, "total_tokens": 8}), "text-embedding-3-small")
    assert cost is not None
    assert cost.total == Decimal("0.000000160")


def test_unknown_model_is_unpriced_not_free() -> None:
    assert calc_cost(Usage(input_tokens=1000, output_tokens=10), "acme-intent-ft-3") is None


# --- Anthropic ---------------------------------------------------------------------------------------


def test_anthropic_cache_writes_5m_and_1h_and_reads() -> None:
    """claude-sonnet-4-5: 3 in, 0.30 cache read, 3.75 write (5 min), 6 write (1 h), 15 out.

    Anthropic's input_tokens (1000) exclude the cache: semconv input = 1000 + 3000 read + 2000 written.
    1000 × 3 = $0.003; 3000 × 0.3 = $0.0009; 1500 × 3.75 = $0.005625 + 500 × 6 = $0.003;
    400 × 15 = $0.006 → $0.018525
    """
    usage = anthropic_usage(
        {
            "input_tokens": 1000,
            "cache_read_input_tokens": 3000,
            "cache_creation_input_tokens": 2000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 500},
            "output_tokens": 400,
        }
    )
    assert usage.input_tokens == 6000
    cost = calc_cost(usage, "claude-sonnet-4-5-20250929")
    assert cost is not None
    assert cost.key == "anthropic/claude-sonnet-4-5"
    assert cost.cache_write == Decimal("0.008625000")
    assert cost.total == Decimal("0.018525000")


@pytest.mark.parametrize(
    ("uncached", "expected", "tier"),
    [
        pytest.param(140_000, "0.468000000", "standard", id="at 200k: 140000×3 + 60000×0.3 + 2000×15"),
        pytest.param(
            150_000,
            "0.981000000",
            "standard;input>200000",
            id="above, cache reads counting: 150000×6 + 60000×0.6 + 2000×22.5",
        ),
    ],
)
def test_anthropic_long_context_counts_cached_input(uncached: int, expected: str, tier: str) -> None:
    """Anthropic's rule: input + cache reads + cache writes above 200k puts the whole request at
    6 / 0.6 / 22.5."""
    usage = anthropic_usage(
        {"input_tokens": uncached, "cache_read_input_tokens": 60_000, "output_tokens": 2000}
    )
    cost = calc_cost(usage, "claude-sonnet-4-5")
    assert cost is not None
    assert (cost.total, cost.tier) == (Decimal(expected), tier)


def test_anthropic_batch_tier() -> None:
    """Message Batches: half price. 1000 × 1.5 + 1000 × 7.5 → $0.009."""
    usage = anthropic_usage({"input_tokens": 1000, "output_tokens": 1000, "service_tier": "batch"})
    cost = calc_cost(usage, "claude-sonnet-4-5")
    assert cost is not None
    assert (cost.total, cost.tier) == (Decimal("0.009000000"), "batch")


@pytest.mark.parametrize(
    "model",
    [
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5@20250929",
        "anthropic/claude-sonnet-4-5",
    ],
    ids=["bedrock", "vertex", "prefixed"],
)
def test_anthropic_cloud_ids_price_like_the_first_party_id(model: str) -> None:
    """Same usage, same price: 1000 × 3 + 100 × 15 → $0.0045."""
    cost = calc_cost(Usage(input_tokens=1000, output_tokens=100), model)
    assert cost is not None
    assert (cost.key, cost.total) == ("anthropic/claude-sonnet-4-5", Decimal("0.004500000"))


@pytest.mark.parametrize(
    ("when", "expected", "tier"),
    [
        pytest.param(
            "2026-03-12T23:59:59",
            "2.537500000",
            "standard;input>200000",
            id="before flat pricing: 250000×10 + 1000×37.5",
        ),
        pytest.param("2026-03-13T00:00:00", "1.275000000", "standard", id="after: 250000×5 + 1000×25"),
    ],
)
def test_anthropic_price_change_removes_the_long_context_tier(when: str, expected: str, tier: str) -> None:
    """claude-opus-4-6 had a >200k tier until 2026-03-13 and flat pricing across its window after."""
    cost = calc_cost(Usage(input_tokens=250_000, output_tokens=1000), "claude-opus-4-6", at=at(when))
    assert cost is not None
    assert (cost.total, cost.tier) == (Decimal(expected), tier)


def test_anthropic_extended_thinking_is_output() -> None:
    """claude-sonnet-4 (recorded thinking call): 46 in × 3 + 417 out × 15 → $0.000138 + $0.006255."""
    cost = calc_cost(anthropic_usage({"input_tokens": 46, "output_tokens": 417}), "claude-sonnet-4-20250514")
    assert cost is not None
    assert cost.total == Decimal("0.006393000")


# --- Google -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_tokens", "cached", "expected"),
    [
        pytest.param(100_000, 0, "0.135000000", id="below: 100000×1.25 + 1000×10"),
        pytest.param(250_000, 50_000, "0.527500000", id="above: 200000×2.5 + 50000×0.25 + 1000×15"),
    ],
)
def test_gemini_pro_long_context(input_tokens: int, cached: int, expected: str) -> None:
    cost = calc_cost(
        Usage(input_tokens=input_tokens, output_tokens=1000, cache_read_tokens=cached),
        "gemini-2.5-pro",
        provider="gcp.gemini",
    )
    assert cost is not None
    assert cost.total == Decimal(expected)


def test_gemini_flash_lite_with_cache_and_prefixed_id() -> None:
    """gemini-2.5-flash-lite: 0.10 in, 0.01 cached, 0.40 out.

    8000 × 0.1 = $0.0008; 2000 × 0.01 = $0.00002; 500 × 0.4 = $0.0002 → $0.00102
    """
    cost = calc_cost(
        Usage(input_tokens=10_000, output_tokens=500, cache_read_tokens=2000), "models/gemini-2.5-flash-lite"
    )
    assert cost is not None
    assert (cost.key, cost.total) == ("google/gemini-2.5-flash-lite", Decimal("0.001020000"))


def test_parts_always_add_up_to_the_total() -> None:
    usage = Usage(
        input_tokens=123_457,
        output_tokens=9_871,
        cache_read_tokens=3_333,
        cache_write_tokens=1_111,
        cache_write_1h_tokens=111,
        reasoning_tokens=77,
    )
    for model in ("claude-opus-4-1", "gpt-4.1", "gemini-2.5-flash"):
        cost = calc_cost(usage, model)
        assert cost is not None
        assert cost.total == cost.input + cost.output + cost.cache_read + cost.cache_write
        assert cost.total.as_tuple().exponent == -9


def test_gemini_thinking_tokens_are_output_and_dated_ids_match() -> None:
    """gemini-2.5-flash: 0.30 in, 2.50 out, thinking included: 4000 × 0.3 + 900 × 2.5 = $0.0012 + $0.00225.

    gemini-2.0-flash-001 (a versioned id) is gemini-2.0-flash at 0.10 in: 1M × 0.1 = $0.10.
    """
    usage = Usage(input_tokens=4000, output_tokens=900, reasoning_tokens=600)
    cost = calc_cost(usage, "gemini-2.5-flash", provider="gcp.gemini")
    assert cost is not None
    assert (cost.key, cost.total) == ("google/gemini-2.5-flash", Decimal("0.003450000"))
    dated = calc_cost(Usage(input_tokens=1_000_000, output_tokens=0), "gemini-2.0-flash-001")
    assert dated is not None
    assert (dated.key, dated.total) == ("google/gemini-2.0-flash", Decimal("0.100000000"))


def test_openai_cache_writes_are_read_and_priced() -> None:
    """gpt-5.6-sol: 5 in, 0.5 cached, 6.25 cache write, 30 out. prompt_tokens 10000 include 2000 read
    and 3000 written.

    5000 × 5 = $0.025; 2000 × 0.5 = $0.001; 3000 × 6.25 = $0.01875; 100 × 30 = $0.003 → $0.04775
    """
    usage = openai_usage(
        {
            "input_tokens": 10_000,
            "output_tokens": 100,
            "input_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 3000},
        }
    )
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (2000, 3000)
    cost = calc_cost(usage, "gpt-5.6-sol")
    assert cost is not None
    assert cost.total == Decimal("0.047750000")


# --- the arithmetic itself --------------------------------------------------------------------------


# 12.5 n$ per input token, 1.5 n$ per output token: every count of tokens rounds, half of them to even
_HALF_NANO_RATES = GOOD_MODEL.replace("input_mtok: 0.01875", "input_mtok: 0.0125").replace(
    "output_mtok: 2", "output_mtok: 0.0015"
)


def test_rounding_half_even_to_the_nano_dollar(tmp_path: Path) -> None:
    """acme-large at 0.0125 in (12.5 n$ per token), 0.0015 out (1.5 n$ per token).

    Input: 1 token 12.5 n$ → 12 (half to even), 3 tokens 37.5 → 38, 2 tokens 25 exactly.
    Output: 1 token 1.5 → 2, 5 tokens 7.5 → 8, 3 tokens 4.5 → 4.
    """
    assert _HALF_NANO_RATES != GOOD_MODEL
    table = build_table([write(tmp_path, _HALF_NANO_RATES)])
    nano = Decimal("1e-9")
    for tokens, input_nanos, output_nanos in ((1, 12, 2), (3, 38, 4), (2, 25, 3), (5, 62, 8)):
        cost = calc_cost(Usage(input_tokens=tokens, output_tokens=tokens), "acme-large", table=table)
        assert cost is not None
        assert (cost.input, cost.output) == (input_nanos * nano, output_nanos * nano), tokens
        assert cost.total == (input_nanos + output_nanos) * nano


_HIGH_PRECISION = decimal.Context(prec=80)


def _reference_nanos(tokens: int, rate_mtok: Decimal) -> Decimal:
    """tokens × rate / 1e6, rounded half-even to 1e-9, in Decimal at a precision nothing can exceed."""
    exact = _HIGH_PRECISION.divide(_HIGH_PRECISION.multiply(Decimal(tokens), rate_mtok), Decimal(10**6))
    return exact.quantize(Decimal("1e-9"), rounding=decimal.ROUND_HALF_EVEN, context=_HIGH_PRECISION)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(["gpt-4o-mini", "gpt-5", "claude-sonnet-4-5", "claude-opus-4-1", "gemini-2.5-pro"]),
    uncached=st.integers(0, 3_000_000),
    cache_read=st.integers(0, 2_000_000),
    cache_write=st.integers(0, 500_000),
    output=st.integers(0, 200_000),
)
def test_integer_engine_matches_decimal_reference_and_span_doubles(
    model: str, uncached: int, cache_read: int, cache_write: int, output: int
) -> None:
    """Every part equals the high-precision Decimal reference, and the doubles put on a span are the
    Decimal amounts converted (so a dashboard sum and `spancost pricing cost` agree)."""
    usage = Usage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    cost = calc_cost(usage, model)
    assert cost is not None
    entry = default_table().find(model)
    assert entry is not None
    prices = entry.price_at(None)
    rates = prices.rates
    if prices.long_context is not None and usage.input_tokens > prices.long_context.above_input_tokens:
        rates = prices.long_context.rates
    read_rate = rates.cache_read if rates.cache_read is not None else rates.input
    write_rate = rates.cache_write if rates.cache_write is not None else rates.input
    assert cost.input == _reference_nanos(uncached, rates.input)
    assert cost.cache_read == _reference_nanos(cache_read, read_rate)
    assert cost.cache_write == _reference_nanos(cache_write, write_rate)
    assert cost.output == _reference_nanos(output, rates.output)
    assert cost.total == cost.input + cost.output + cost.cache_read + cost.cache_write

    attributes = cost_attributes(
        {
            attr.GEN_AI_OPERATION_NAME: "chat",
            attr.GEN_AI_REQUEST_MODEL: model,
            attr.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
            attr.GEN_AI_USAGE_OUTPUT_TOKENS: output,
            attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
            attr.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: cache_write,
        },
        None,
    )
    assert attributes[attr.GEN_AI_USAGE_COST_AMOUNT] == float(cost.total)
    assert attributes[attr.COST_INPUT] == float(cost.input)
    assert attributes[attr.COST_CACHE_READ] == float(cost.cache_read)
    assert attributes[attr.COST_CACHE_WRITE] == float(cost.cache_write)
    assert attributes[attr.COST_OUTPUT] == float(cost.output)
