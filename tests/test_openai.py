"""openai SDK: recorded API responses replayed through the real SDK; every attribute and the exact cost."""

from __future__ import annotations

import hashlib

import openai
import pytest
from conftest import inference_spans, openai_client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import spancost
from spancost.pricing import default_table

MESSAGES = [{"role": "user", "content": "Say this is a test"}]


def test_chat_completion_with_content_is_one_priced_span(instrumented: InMemorySpanExporter, replay) -> None:
    """Recorded gpt-4o-mini call: 12 in × $0.15/M + 5 out × $0.60/M = $0.0000018 + $0.000003 = $0.0000048."""
    traffic = replay("openai-v2", "test_chat_completion_with_content")
    response = openai_client(traffic).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=False
    )

    assert response.choices[0].message.content == "This is a test."
    (span,) = inference_spans(instrumented)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-ASYMQRl3A3DXL9FWCK9tnGRcKIO7q",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.cost.amount": 0.0000048,
        "gen_ai.usage.cost.currency": "USD",
        "gen_ai.usage.cost.source": "local",
        "spancost.cost.status": "priced",
        "spancost.cost.input": 0.0000018,
        "spancost.cost.output": 0.000003,
        "spancost.cost.cache_read": 0.0,
        "spancost.cost.cache_write": 0.0,
        "spancost.price.key": "openai/gpt-4o-mini",
        "spancost.price.version": default_table().version,
        "spancost.price.tier": "standard",
    }


def test_multiple_choices_record_every_finish_reason(instrumented: InMemorySpanExporter, replay) -> None:
    """n=2: 12 in × 0.15 + 24 out × 0.60 = $0.0000018 + $0.0000144 = $0.0000162."""
    client = openai_client(replay("openai-v2", "test_chat_completion_multiple_choices"))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2)
    (span,) = inference_spans(instrumented)
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop", "stop")
    assert span.attributes["gen_ai.usage.output_tokens"] == 24
    assert span.attributes["gen_ai.usage.cost.amount"] == 0.0000162


def test_tool_call_round_trip_is_two_priced_spans(instrumented: InMemorySpanExporter, replay) -> None:
    """75 in / 51 out → $0.00001125 + $0.0000306 = $0.00004185;
    then 99 / 25 → $0.00001485 + $0.000015 = $0.00002985."""
    traffic = replay("openai-v2", "test_chat_completion_tool_calls_with_content")
    client = openai_client(traffic)
    tools = [
        {"type": "function", "function": {"name": "get_current_weather", "parameters": {"type": "object"}}}
    ]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=tools)
    calls = first.choices[0].message.tool_calls
    follow_up = [*MESSAGES, first.choices[0].message.model_dump(exclude_none=True)] + [
        {"role": "tool", "tool_call_id": call.id, "content": "15 degrees"} for call in calls
    ]
    client.chat.completions.create(model="gpt-4o-mini", messages=follow_up, tools=tools)

    first_span, second_span = inference_spans(instrumented)
    assert first_span.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert first_span.attributes["gen_ai.usage.cost.amount"] == 0.00004185
    assert second_span.attributes["gen_ai.usage.cost.amount"] == 0.00002985


def test_provider_error_propagates_unchanged_and_marks_the_span(
    instrumented: InMemorySpanExporter, replay
) -> None:
    spancost.uninstrument()
    with pytest.raises(openai.NotFoundError) as plain:
        openai_client(replay("openai-v2", "test_chat_completion_404")).chat.completions.create(
            model="this-model-does-not-exist", messages=MESSAGES
        )
    spancost.instrument()
    with pytest.raises(openai.NotFoundError) as instrumented_error:
        openai_client(replay("openai-v2", "test_chat_completion_404")).chat.completions.create(
            model="this-model-does-not-exist", messages=MESSAGES
        )

    assert type(instrumented_error.value) is type(plain.value)
    assert str(instrumented_error.value) == str(plain.value)
    assert instrumented_error.value.status_code == 404
    (span,) = inference_spans(instrumented)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "NotFoundError"
    assert "gen_ai.usage.cost.amount" not in span.attributes
    assert "spancost.cost.status" not in span.attributes


def test_tags_and_system_prompt_version_land_on_the_span(instrumented: InMemorySpanExporter, replay) -> None:
    system = "You are a terse assistant."
    with spancost.tags(
        prompt="smoke-test", user_id="u-42", workspace_id="acme", feature="qa", experiment_variant="B"
    ):
        openai_client(replay("openai-v2", "test_chat_completion_with_content")).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "system", "content": system}, *MESSAGES]
        )
    (span,) = inference_spans(instrumented)
    assert span.attributes["spancost.prompt.name"] == "smoke-test"
    assert span.attributes["spancost.prompt.version"] == hashlib.sha256(system.encode()).hexdigest()[:12]
    assert span.attributes["user.id"] == "u-42"
    assert span.attributes["spancost.workspace.id"] == "acme"
    assert span.attributes["spancost.feature"] == "qa"
    assert span.attributes["spancost.experiment.variant"] == "B"


def test_explicit_prompt_version_wins_over_the_hash(instrumented: InMemorySpanExporter, replay) -> None:
    with spancost.tags(prompt="smoke-test", prompt_version="v7"):
        openai_client(replay("openai-v2", "test_chat_completion_with_content")).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "system", "content": "anything"}, *MESSAGES]
        )
    (span,) = inference_spans(instrumented)
    assert span.attributes["spancost.prompt.version"] == "v7"


def test_no_content_and_no_api_key_is_recorded(instrumented: InMemorySpanExporter, replay) -> None:
    system = "Secret system instructions 81f3"
    openai_client(replay("openai-v2", "test_chat_completion_with_content")).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "system", "content": system}, *MESSAGES]
    )
    (span,) = inference_spans(instrumented)
    recorded = " ".join(str(v) for v in span.attributes.values())
    for secret in (system, "Say this is a test", "This is a test.", "test_openai_api_key"):
        assert secret not in recorded


def test_uninstrument_restores_the_sdk_and_instrumenting_twice_wraps_once(
    spans: InMemorySpanExporter, replay
) -> None:
    original = openai.resources.chat.completions.completions.Completions.create
    spancost.instrument()
    spancost.instrument()
    try:
        openai_client(replay("openai-v2", "test_chat_completion_with_content")).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        assert len(inference_spans(spans)) == 1
    finally:
        spancost.uninstrument()
    assert openai.resources.chat.completions.completions.Completions.create is original
    openai_client(replay("openai-v2", "test_chat_completion_with_content")).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES
    )
    assert len(inference_spans(spans)) == 1
