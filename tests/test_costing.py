"""The pricing stage over span attributes, shared by the span processor and the collector."""

from __future__ import annotations

import logging

import pytest

from spancost._log import forget_logged
from spancost.costing import cost_attributes, is_inference, span_usage

START = 1_764_000_000_000_000_000  # 2025-11-24


def test_a_chat_span_gets_cost_and_provenance() -> None:
    """gpt-4.1: 2 in / 0.5 cached / 8 out. 1000 in (400 cached), 200 out.

    600 × 2 = $0.0012; 400 × 0.5 = $0.0002; 200 × 8 = $0.0016 → $0.003
    """
    extra = cost_attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4.1",
            "gen_ai.response.model": "gpt-4.1-2025-04-14",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.cache_read.input_tokens": 400,
            "gen_ai.usage.output_tokens": 200,
        },
        START,
    )
    assert extra["gen_ai.usage.cost.amount"] == 0.003
    assert extra["spancost.cost.cache_read"] == 0.0002
    assert extra["spancost.price.key"] == "openai/gpt-4.1"


def test_the_older_cache_creation_name_is_read() -> None:
    usage = span_usage({"gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_creation.input_tokens": 4})
    assert usage is not None
    assert usage.cache_write_tokens == 4


def test_cost_already_on_the_span_is_kept_and_marked_provider() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.cost.amount": 1.25,
    }
    assert cost_attributes(attributes, START) == {"spancost.cost.status": "provider"}
    assert cost_attributes({**attributes, "spancost.cost.status": "priced"}, START) == {}


@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param(
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 5}, id="agent span"
        ),
        pytest.param(
            {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1"}, id="no usage (failed call)"
        ),
        pytest.param({"http.method": "GET"}, id="not genai"),
    ],
)
def test_spans_that_are_not_priced_get_nothing(attributes: dict) -> None:
    assert cost_attributes(attributes, START) == {}


def test_emitters_without_operation_name_are_still_model_calls() -> None:
    attributes = {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 0,
    }
    assert is_inference(attributes)
    assert cost_attributes(attributes, START)["gen_ai.usage.cost.amount"] == 0.00015


def test_unknown_model_is_unpriced_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    forget_logged()
    caplog.set_level(logging.DEBUG, logger="spancost")
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "acme-9000",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 1,
    }
    for _ in range(3):
        assert cost_attributes(attributes, START) == {"spancost.cost.status": "unpriced"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "acme-9000" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("text", "tokens"), [("1000", 1000), ("0", 0), ("²", None), ("-5", None), ("12.0", None), ("", None)]
)
def test_token_counts_as_text_are_read_when_they_are_whole_numbers(text: str, tokens: int | None) -> None:
    """Through OTLP every attribute arrives as text: digits are a count; anything else (a superscript
    digit included, which str.isdigit accepts and int refuses) is not, and never fails pricing."""
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1",
                  "gen_ai.usage.input_tokens": text, "gen_ai.usage.output_tokens": "0"}  # fmt: skip
    usage = span_usage(attributes)
    assert usage is not None
    assert usage.input_tokens == (tokens or 0)
    assert cost_attributes(attributes, START)["spancost.cost.status"] == "priced"
