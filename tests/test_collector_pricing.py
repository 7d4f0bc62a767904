"""Pricing at ingest: GenAI spans from any emitter that arrive without a cost are priced with the one
pricing function; costs that came with a span are kept; other emitters' content is removed.

Prices (USD per million tokens, bundled table): gpt-4o-mini 0.15 in / 0.075 cached / 0.60 out;
claude-haiku-4-5 1 in / 0.10 cache read / 1.25 cache write / 5 out.
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spancost.collector.otlp import parse_protobuf, to_rows
from spancost.collector.pricing import IngestStage
from spancost.costing import cost_attributes, is_inference, span_usage
from spancost.instrumentation.processor import SpancostSpanProcessor

T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z in ns

# As OpenLLMetry's instrumentations wrote them before semantic-conventions-ai 0.5 (SpanAttributes.LLM_*).
OLD_OPENLLMETRY = {
    "gen_ai.system": "openai",
    "llm.request.type": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.prompt_tokens": 1000,
    "gen_ai.usage.completion_tokens": 100,
    "gen_ai.usage.cache_read_input_tokens": 400,
    "llm.usage.total_tokens": 1100,
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": "secret prompt",
    "gen_ai.completion.0.content": "secret answer",
}
# As OpenLIT writes a chat span (SemanticConvention): its own cost, content on attributes and events.
OPENLIT = {
    "gen_ai.system": "openai",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
    "gen_ai.usage.total_tokens": 1100,
    "gen_ai.usage.cost": 0.00021,
    "gen_ai.environment": "production",
    "gen_ai.application_name": "support",
    "gen_ai.prompt": "secret prompt",
    "gen_ai.completion": "secret answer",
}


def test_old_openllmetry_usage_is_read_and_priced() -> None:
    """gpt-4o-mini: 600 uncached × 0.15 + 400 cached × 0.075 + 100 × 0.60 per M = 0.00009 + 0.00003 +
    0.00006 = $0.00018. The counts are also written under the standard names, for llm_calls."""
    usage = span_usage(OLD_OPENLLMETRY)
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (1000, 100, 400)
    assert is_inference(OLD_OPENLLMETRY)
    extra = cost_attributes(OLD_OPENLLMETRY, T0)
    assert extra["gen_ai.usage.cost.amount"] == 0.00018
    assert extra["gen_ai.usage.cost.source"] == "local"
    assert extra["gen_ai.operation.name"] == "chat"
    assert extra["gen_ai.usage.input_tokens"] == 1000
    assert extra["gen_ai.usage.output_tokens"] == 100
    assert extra["gen_ai.usage.cache_read.input_tokens"] == 400


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(
            {"llm.usage.prompt_tokens": 10, "llm.usage.completion_tokens": 2},
            (10, 2, 0, 0, 0),
            id="llm.usage",
        ),
        pytest.param(
            {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_creation_input_tokens": 4},
            (10, 0, 0, 4, 0),
            id="openllmetry-cache-creation",
        ),
        pytest.param(
            {"gen_ai.usage.output_tokens": 9, "gen_ai.usage.reasoning_tokens": 5},
            (0, 9, 0, 0, 5),
            id="openlit-reasoning",
        ),
        pytest.param(
            {"gen_ai.usage.completion_tokens": 9, "llm.usage.reasoning_tokens": 3},
            (0, 9, 0, 0, 3),
            id="openllmetry-reasoning",
        ),
        pytest.param(
            {"gen_ai.usage.input_tokens": "12", "gen_ai.usage.prompt_tokens": 99},
            (12, 0, 0, 0, 0),
            id="standard-wins",
        ),
    ],
)
def test_older_usage_spellings(names: dict, expected: tuple[int, ...]) -> None:
    usage = span_usage(names)
    assert usage is not None
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    ) == expected


def test_openlit_cost_is_kept_and_normalised() -> None:
    extra = cost_attributes(OPENLIT, T0)
    assert extra == {
        "gen_ai.usage.cost.amount": 0.00021,
        "gen_ai.usage.cost.currency": "USD",
        "spancost.cost.status": "provider",
    }


@pytest.mark.parametrize(
    ("request_type", "operation"),
    [("completion", "text_completion"), ("embedding", "embeddings"), ("rerank", None)],
)
def test_llm_request_type_stands_for_the_operation(request_type: str, operation: str | None) -> None:
    attributes = {"llm.request.type": request_type, "gen_ai.request.model": "gpt-4o-mini"}
    attributes["gen_ai.usage.prompt_tokens"] = 10
    assert cost_attributes(attributes, T0).get("gen_ai.operation.name") == operation


def _convert(attributes: dict, scope: str = "opentelemetry.instrumentation.openai", **stage: object) -> list:
    """One span with `attributes` (and a content event) through OTLP → rows with the ingest stage."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import Event
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, TraceFlags

    span = ReadableSpan(
        name="chat gpt-4o-mini",
        context=SpanContext(0xABC, 0x1, False, TraceFlags(1)),
        attributes=attributes,
        events=(
            Event("gen_ai.content.prompt", {"gen_ai.prompt": "secret prompt"}, timestamp=T0),
            Event("retry", {}, timestamp=T0 + 1),
        ),
        start_time=T0,
        end_time=T0 + 1000,
        instrumentation_scope=InstrumentationScope(scope, "1.0"),
    )
    request = parse_protobuf(encode_spans([span]).SerializeToString())
    [row] = to_rows(request, stage=IngestStage(**stage)).rows  # type: ignore[arg-type]
    return row


def test_a_span_priced_at_ingest_carries_the_cost_attributes_as_strings() -> None:
    row = _convert(OLD_OPENLLMETRY)
    attributes = row[11]
    assert attributes["gen_ai.usage.cost.amount"] == "0.00018"
    assert attributes["spancost.cost.status"] == "priced"
    assert attributes["spancost.price.key"] == "openai/gpt-4o-mini"
    assert attributes["gen_ai.usage.input_tokens"] == "1000"
    assert not any("secret" in value for value in attributes.values()), "content removed"
    assert "gen_ai.prompt.0.role" not in attributes
    assert row[16] == ["retry"], "the content event is removed, the other one kept"


def test_content_is_kept_when_the_operator_opts_in() -> None:
    row = _convert(OLD_OPENLLMETRY, capture_content=True)
    assert row[11]["gen_ai.prompt.0.content"] == "secret prompt"
    assert row[16] == ["gen_ai.content.prompt", "retry"]


def test_spancost_spans_are_left_as_the_application_sent_them() -> None:
    """A span from spancost's own instrumentation arrives priced, with content only if the app opted in."""
    priced = {
        **OPENLIT,
        "gen_ai.usage.cost.amount": 0.5,
        "spancost.cost.status": "priced",
        "gen_ai.input.messages": "[opted in]",
    }
    del priced["gen_ai.usage.cost"]
    row = _convert(priced, scope="spancost.instrumentation.openai")
    assert row[11]["gen_ai.usage.cost.amount"] == "0.5"
    assert row[11]["gen_ai.input.messages"] == "[opted in]"
    assert "gen_ai.usage.cost.source" not in row[11]


def test_pricing_can_be_turned_off_at_ingest() -> None:
    row = _convert(OLD_OPENLLMETRY, price=False)
    assert "gen_ai.usage.cost.amount" not in row[11]
    assert "gen_ai.prompt.0.content" not in row[11], "content is still removed"


def test_spans_that_are_not_genai_are_not_touched() -> None:
    attributes = {"http.request.method": "GET", "gen_ai.prompt.0.content": "not a model call"}
    row = _convert(attributes)
    assert row[11] == {"http.request.method": "GET", "gen_ai.prompt.0.content": "not a model call"}


def test_the_in_process_stage_reads_the_older_spellings_too() -> None:
    """The same function prices in process: OpenLLMetry's old names on a span from the same app."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SpancostSpanProcessor(SimpleSpanProcessor(memory)))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai")
    tracer.start_span("openai.chat", attributes=OLD_OPENLLMETRY, start_time=T0).end(end_time=T0 + 1)
    [span] = memory.get_finished_spans()
    assert span.attributes["gen_ai.usage.cost.amount"] == 0.00018
    assert span.attributes["gen_ai.usage.input_tokens"] == 1000


def test_a_pricing_failure_leaves_the_span_unpriced_but_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    import spancost.collector.pricing as pricing

    def boom(*args: object, **kwargs: object) -> dict:
        raise RuntimeError("price table broken")

    monkeypatch.setattr(pricing, "cost_attributes", boom)
    row = _convert(OLD_OPENLLMETRY)
    assert "gen_ai.usage.cost.amount" not in row[11]
    assert row[11]["gen_ai.request.model"] == "gpt-4o-mini"
