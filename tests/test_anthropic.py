"""anthropic SDK: exactly one priced inference span per call, whether the SDK traces itself or not.

The current SDK emits its own `anthropic.messages.create` span; spancost tags and prices that span
instead of adding a second. A client with the SDK's tracing turned off stands in for SDK versions
without it: spancost then makes the span itself, with the same names and the same cost.
"""

from __future__ import annotations

import hashlib

import anthropic
import pytest
from conftest import anthropic_client, inference_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import spancost
from spancost.pricing import default_table

MESSAGES = [{"role": "user", "content": "Say hello in one word."}]
MODEL = "claude-sonnet-4-20250514"

# What every priced call to claude-sonnet-4 carries, whoever emitted the span.
PRICE_PROVENANCE = {
    "gen_ai.usage.cost.currency": "USD",
    "gen_ai.usage.cost.source": "local",
    "spancost.cost.status": "priced",
    "spancost.price.key": "anthropic/claude-sonnet-4",
    "spancost.price.tier": "standard",
}


def _expect(span, attributes: dict) -> None:
    for key, value in {**PRICE_PROVENANCE, **attributes}.items():
        assert span.attributes.get(key) == value, key
    assert span.attributes["spancost.price.version"] == default_table().version


def test_sdk_span_is_priced_and_no_second_span_is_made(instrumented: InMemorySpanExporter, replay) -> None:
    """Recorded call: 13 in × $3/M + 5 out × $15/M = $0.000039 + $0.000075 = $0.000114."""
    message = anthropic_client(replay("anthropic", "test_sync_messages_create_basic")).messages.create(
        model=MODEL, max_tokens=100, messages=MESSAGES
    )
    assert message.content[0].text == "Hello!"
    (span,) = inference_spans(instrumented)
    assert span.name == "anthropic.messages.create"
    assert span.instrumentation_scope.name == "com.anthropic.sdk.python"
    assert span.kind is SpanKind.CLIENT
    _expect(
        span,
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": MODEL,
            "gen_ai.response.model": MODEL,
            "gen_ai.response.id": "msg_0176GK1qFwwpVM59jDYiKPjN",
            "gen_ai.usage.input_tokens": 13,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cost.amount": 0.000114,
            "spancost.cost.input": 0.000039,
            "spancost.cost.output": 0.000075,
        },
    )


@pytest.mark.parametrize(
    ("cassette", "kwargs", "tokens", "cost"),
    [
        pytest.param(
            "test_sync_messages_create_captures_tool_use_content",
            {
                "tools": [
                    {"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}
                ]
            },
            (386, 34),
            0.001668,
            id="tool-use: 386×3 + 34×15",
        ),
        pytest.param(
            "test_sync_messages_create_captures_thinking_content",
            {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048},
            (46, 417),
            0.006393,
            id="thinking: 46×3 + 417×15",
        ),
    ],
)
def test_recorded_calls_are_priced_exactly(
    instrumented: InMemorySpanExporter,
    replay,
    cassette: str,
    kwargs: dict,
    tokens: tuple[int, int],
    cost: float,
) -> None:
    arguments = {"model": MODEL, "max_tokens": 1024, "messages": MESSAGES, **kwargs}
    anthropic_client(replay("anthropic", cassette)).messages.create(**arguments)
    (span,) = inference_spans(instrumented)
    _expect(
        span,
        {
            "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1],
            "gen_ai.usage.cost.amount": cost,
        },
    )


def test_client_without_sdk_tracing_gets_spancost_span_with_the_same_cost(
    instrumented: InMemorySpanExporter, replay
) -> None:
    client = anthropic_client(replay("anthropic", "test_sync_messages_create_basic"), open_telemetry=False)
    client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    (span,) = inference_spans(instrumented)
    assert span.name == f"chat {MODEL}"
    assert span.instrumentation_scope.name == "spancost.instrumentation.anthropic"
    _expect(
        span,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": MODEL,
            "gen_ai.request.max_tokens": 100,
            "gen_ai.response.model": MODEL,
            "gen_ai.response.id": "msg_0176GK1qFwwpVM59jDYiKPjN",
            "gen_ai.response.finish_reasons": ("end_turn",),
            "anthropic.response.service_tier": "standard",
            "gen_ai.usage.input_tokens": 13,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cost.amount": 0.000114,
            "server.address": "api.anthropic.com",
        },
    )


@pytest.mark.parametrize("sdk_traces", [True, False], ids=["sdk-span", "spancost-span"])
def test_tags_and_system_prompt_hash_reach_either_span(
    instrumented: InMemorySpanExporter, replay, sdk_traces: bool
) -> None:
    system = "You greet people."
    options = {} if sdk_traces else {"open_telemetry": False}
    client = anthropic_client(replay("anthropic", "test_sync_messages_create_basic"), **options)
    with spancost.tags(prompt="greeter", user_id="u-7", workspace_id="globex", feature="hello"):
        client.messages.create(model=MODEL, max_tokens=100, system=system, messages=MESSAGES)
    (span,) = inference_spans(instrumented)
    assert span.attributes["spancost.prompt.name"] == "greeter"
    assert span.attributes["spancost.prompt.version"] == hashlib.sha256(system.encode()).hexdigest()[:12]
    assert span.attributes["user.id"] == "u-7"
    assert span.attributes["spancost.workspace.id"] == "globex"
    assert span.attributes["spancost.feature"] == "hello"


@pytest.mark.parametrize("sdk_traces", [True, False], ids=["sdk-span", "spancost-span"])
def test_provider_error_propagates_unchanged(
    instrumented: InMemorySpanExporter, replay, sdk_traces: bool
) -> None:
    options = {} if sdk_traces else {"open_telemetry": False}
    client = anthropic_client(replay("anthropic", "test_sync_messages_create_api_error"), **options)
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(model="invalid-model-name", max_tokens=100, messages=MESSAGES)
    assert raised.value.status_code == 404
    (span,) = inference_spans(instrumented)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"]
    assert "gen_ai.usage.cost.amount" not in span.attributes


def test_no_content_and_no_api_key_is_recorded(instrumented: InMemorySpanExporter, replay) -> None:
    client = anthropic_client(replay("anthropic", "test_sync_messages_create_basic"), open_telemetry=False)
    client.messages.create(model=MODEL, max_tokens=100, system="Private preamble 5d1c", messages=MESSAGES)
    (span,) = inference_spans(instrumented)
    recorded = " ".join(str(v) for v in span.attributes.values())
    for secret in ("Private preamble 5d1c", "Say hello in one word.", "Hello!", "test_anthropic_api_key"):
        assert secret not in recorded
