"""spancost's own failures never reach the caller: each is caught, logged once, and the call goes on.

Each test breaks one piece of spancost (pricing, extraction, the tag context, span start, the
exporter) and checks that the SDK call returns exactly what it returns without spancost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from conftest import anthropic_client, inference_spans, openai_client
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spancost
from spancost.instrumentation import _inference, processor
from spancost.instrumentation import anthropic as anthropic_patch
from spancost.instrumentation import openai as openai_patch

MESSAGES = [{"role": "user", "content": "Say this is a test"}]


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("injected fault")


def _openai_call(replay) -> object:
    return openai_client(replay("openai-v2", "test_chat_completion_with_content")).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES
    )


def _anthropic_call(replay, **options: object) -> object:
    return anthropic_client(
        replay("anthropic", "test_sync_messages_create_basic"), **options
    ).messages.create(model="claude-sonnet-4-20250514", max_tokens=100, system="be nice", messages=MESSAGES)


@pytest.fixture
def baseline(replay) -> dict[str, object]:
    """What each call returns with no spancost installed."""
    return {
        "openai": _openai_call(replay).model_dump(),
        "anthropic": _anthropic_call(replay).model_dump(),
    }


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param((processor, "cost_attributes"), id="price-lookup"),
        pytest.param((openai_patch, "chat_response_attributes"), id="openai-extraction"),
        pytest.param((openai_patch, "chat_request_attributes"), id="openai-request"),
        pytest.param((anthropic_patch, "request_hints"), id="anthropic-hints"),
        pytest.param((anthropic_patch, "response_attributes"), id="anthropic-extraction"),
        pytest.param((_inference, "span_tags"), id="tag-context"),
        pytest.param((processor, "current_hints"), id="hint-context"),
        pytest.param((anthropic_patch, "attach_hints"), id="hint-attach"),
        pytest.param((anthropic_patch, "detach_hints"), id="hint-detach"),
    ],
)
def test_a_fault_in_spancost_never_reaches_the_caller(
    baseline, instrumented: InMemorySpanExporter, replay, monkeypatch: pytest.MonkeyPatch, caplog, fault
) -> None:
    module, name = fault
    monkeypatch.setattr(module, name, _boom)
    caplog.set_level(logging.DEBUG, logger="spancost")

    def warnings() -> int:
        faults = [r for r in caplog.records if r.exc_info and "injected fault" in str(r.exc_info[1])]
        return sum(r.levelno >= logging.WARNING for r in faults)

    for round_ in range(2):
        with spancost.tags(prompt="p"):
            assert _openai_call(replay).model_dump() == baseline["openai"]
            assert _anthropic_call(replay).model_dump() == baseline["anthropic"]
            assert _anthropic_call(replay, open_telemetry=False).model_dump() == baseline["anthropic"]
        if round_ == 0:
            first_round = warnings()
            assert first_round >= 1, "the fault must be logged"
    assert warnings() == first_round, "each fault is logged once at warning level, later at debug only"


def test_a_price_lookup_fault_still_exports_the_span_unpriced(
    instrumented: InMemorySpanExporter, replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processor, "cost_attributes", _boom)
    _openai_call(replay)
    (span,) = inference_spans(instrumented)
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert "gen_ai.usage.cost.amount" not in span.attributes


class _FailingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionError("collector down")


def test_a_failing_exporter_never_reaches_the_caller(
    baseline, instrumented: InMemorySpanExporter, tracer_provider, replay
) -> None:
    from spancost.instrumentation.processor import installed_processor

    stage = installed_processor(tracer_provider)
    failing = SimpleSpanProcessor(_FailingExporter())
    stage.add_span_processor(failing)
    try:
        assert _openai_call(replay).model_dump() == baseline["openai"]
        assert _anthropic_call(replay).model_dump() == baseline["anthropic"]
    finally:
        stage._downstream = tuple(p for p in stage.downstream if p is not failing)
    assert len(inference_spans(instrumented)) == 2
