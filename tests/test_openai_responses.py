"""The Responses API (operation `chat`): create, parse, streams, the stream helper, raw responses; sync and
async, replayed from recorded traffic. Each call is one priced span; the caller gets what the SDK gives."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx2
import openai
import pytest
from conftest import inference_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel
from test_openai_traffic import (
    Cassette,
    ResponsesServer,
    client_for,
    json_response,
    one_span,
    run,
    streamed_attributes,
    uninstrumented,
)

from spancost.pricing import default_table

MODES = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]
BASIC = "test_responses_create_basic[content_mode0]"
STREAMING = "test_responses_create_streaming[content_mode0]"
REASONING = "test_responses_create_reports_reasoning_tokens[content_mode0]"
TOOL_CALL = "test_responses_create_captures_tool_call_content[content_mode0]"
API_ERROR = "test_responses_create_api_error[content_mode0]"
INSTRUCTIONS = "You are a helpful assistant."


def call(mode: str, client: Any, method: str, /, **kwargs: Any) -> Any:
    target = client.responses
    for name in method.split("."):
        target = getattr(target, name)
    if mode == "sync":
        return target(**kwargs)

    async def awaited() -> Any:
        return await target(**kwargs)

    return run(awaited())


def stream_events(mode: str, client: Any, **kwargs: Any) -> list[Any]:
    if mode == "sync":
        return list(client.responses.create(stream=True, **kwargs))

    async def collect() -> list[Any]:
        return [event async for event in await client.responses.create(stream=True, **kwargs)]

    return run(collect())


def dumps(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(warnings=False) for item in items]


def _cost(amount: float, input_cost: float, output_cost: float, key: str) -> dict[str, Any]:
    return {
        "gen_ai.usage.cost.amount": amount,
        "gen_ai.usage.cost.currency": "USD",
        "gen_ai.usage.cost.source": "local",
        "spancost.cost.status": "priced",
        "spancost.cost.input": input_cost,
        "spancost.cost.output": output_cost,
        "spancost.cost.cache_read": 0.0,
        "spancost.cost.cache_write": 0.0,
        "spancost.price.key": key,
        "spancost.price.version": default_table().version,
        "spancost.price.tier": "standard",
    }


BASIC_ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "server.address": "api.openai.com",
    "server.port": 443,
    "spancost.prompt.version": hashlib.sha256(INSTRUCTIONS.encode()).hexdigest()[:12],
    "spancost.prompt.system_tokens": 7,
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.finish_reasons": ("stop",),
    "openai.response.service_tier": "default",
    "gen_ai.usage.input_tokens": 22,
    "gen_ai.usage.output_tokens": 6,
    # 22 in × $0.15/M + 6 out × $0.60/M = $0.0000033 + $0.0000036 = $0.0000069
    **_cost(0.0000069, 0.0000033, 0.0000036, "openai/gpt-4o-mini"),
}


@pytest.mark.parametrize("mode", MODES)
def test_response_is_one_priced_chat_span(mode: str, instrumented: InMemorySpanExporter) -> None:
    """Recorded gpt-4o-mini response, $0.0000069 (see BASIC_ATTRIBUTES)."""
    traffic = Cassette(BASIC)
    response = call(mode, client_for(mode, traffic), "create", **traffic.recorded_request())

    assert response.output_text == "This is a test."
    span = one_span(instrumented)
    assert (span.name, span.kind, span.status.status_code) == (
        "chat gpt-4o-mini",
        SpanKind.CLIENT,
        StatusCode.UNSET,
    )
    assert dict(span.attributes) == {
        **BASIC_ATTRIBUTES,
        "gen_ai.response.id": "resp_0f4faba17dcd0f1e0069e2f3e4907881909179832ba1237025",
    }


@pytest.mark.parametrize("mode", MODES)
def test_reasoning_tokens_are_recorded_and_priced_as_output(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """Recorded gpt-5.4 response, priced as its snapshot gpt-5.4-2026-03-05: 44 in × $2.50/M + 288 out
    (9 of them reasoning, billed as output) × $15/M = $0.00011 + $0.00432 = $0.00443."""
    traffic = Cassette(REASONING)
    call(mode, client_for(mode, traffic), "create", **traffic.recorded_request())

    attributes = one_span(instrumented).attributes
    assert attributes["gen_ai.request.max_tokens"] == 300
    assert attributes["gen_ai.response.model"] == "gpt-5.4-2026-03-05"
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 9
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (44, 288)
    assert attributes["spancost.price.key"] == "openai/gpt-5.4"
    assert attributes["gen_ai.usage.cost.amount"] == 0.00443


@pytest.mark.parametrize("mode", MODES)
def test_function_call_response_finishes_with_a_tool_call(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """Recorded forced tool call: 72 in × $0.15/M + 8 out × $0.60/M = $0.0000108 + $0.0000048 = $0.0000156."""
    traffic = Cassette(TOOL_CALL)
    response = call(mode, client_for(mode, traffic), "create", **traffic.recorded_request())

    assert response.output[0].type == "function_call"
    attributes = one_span(instrumented).attributes
    assert attributes["gen_ai.response.finish_reasons"] == ("tool_call",)
    assert attributes["gen_ai.usage.cost.amount"] == 0.0000156


@pytest.mark.parametrize(
    ("status", "details", "finish_reason"),
    [
        pytest.param("incomplete", {"reason": "max_output_tokens"}, "length", id="max-output-tokens"),
        pytest.param("incomplete", {"reason": "content_filter"}, "content_filter", id="content-filter"),
        pytest.param("failed", None, "error", id="failed"),
        pytest.param("queued", None, None, id="background-queued"),
    ],
)
def test_response_status_becomes_the_finish_reason(
    status: str, details: Any, finish_reason: str | None, instrumented: InMemorySpanExporter
) -> None:
    """The Responses API reports a status, not a finish reason: the conventions' reason is derived."""
    body = {**ResponsesServer().response(status), "incomplete_details": details}
    client_for("sync", lambda request: json_response(body)).responses.create(model="gpt-4o-mini", input="hi")
    reasons = one_span(instrumented).attributes.get("gen_ai.response.finish_reasons")
    assert reasons == ((finish_reason,) if finish_reason else None)


@pytest.mark.parametrize("mode", MODES)
def test_response_error_propagates_unchanged_and_marks_the_span(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    with uninstrumented(), pytest.raises(openai.BadRequestError) as plain:
        call(
            mode,
            client_for(mode, Cassette(API_ERROR)),
            "create",
            model="this-model-does-not-exist",
            input="Hello",
        )
    with pytest.raises(openai.BadRequestError) as traced:
        call(
            mode,
            client_for(mode, Cassette(API_ERROR)),
            "create",
            model="this-model-does-not-exist",
            input="Hello",
        )

    assert type(traced.value) is type(plain.value)
    assert str(traced.value) == str(plain.value)
    span = one_span(instrumented)
    assert span.name == "chat this-model-does-not-exist"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "BadRequestError (HTTP 400)"
    assert span.attributes["error.type"] == "BadRequestError"
    assert not any(key.startswith(("gen_ai.usage", "spancost.cost")) for key in span.attributes)


@pytest.mark.parametrize("mode", MODES)
def test_response_stream_is_priced_from_response_completed(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """Recorded stream, usage in `response.completed`: $0.0000069 as the non-streaming call."""
    with uninstrumented():
        traffic = Cassette(STREAMING)
        expected = stream_events(
            mode, client_for(mode, traffic), **traffic.recorded_request(leave_out=("stream",))
        )
    traffic = Cassette(STREAMING)
    events = stream_events(mode, client_for(mode, traffic), **traffic.recorded_request(leave_out=("stream",)))

    assert dumps(events) == dumps(expected)
    assert "stream_options" not in traffic.body(), "the Responses API always reports usage: nothing to ask"
    assert streamed_attributes(one_span(instrumented)) == {
        **BASIC_ATTRIBUTES,
        "gen_ai.request.stream": True,
        "openai.request.service_tier": "default",
        "gen_ai.response.id": "resp_0415a3de5d3015560069e2f3f4b3088192949253e91aff1eb3",
    }


def test_response_stream_closed_early_keeps_model_and_id_from_response_created(
    instrumented: InMemorySpanExporter,
) -> None:
    traffic = Cassette(STREAMING)
    stream = client_for("sync", traffic).responses.create(
        model="gpt-4o-mini", input="Say this is a test", stream=True
    )
    assert next(stream).type == "response.created"
    stream.close()

    attributes = streamed_attributes(one_span(instrumented))
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["gen_ai.response.id"].startswith("resp_0415")
    assert "gen_ai.response.finish_reasons" not in attributes, "still in progress when it was left"
    assert "gen_ai.usage.input_tokens" not in attributes


class Verdict(BaseModel):
    verdict: str


@pytest.mark.parametrize("mode", MODES)
def test_response_parse_bypasses_create_and_is_one_priced_span(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """`parse` posts by itself; the recorded response (plain text) parses with parse_as=None. $0.0000069."""
    with uninstrumented():
        expected = call(
            mode, client_for(mode, Cassette(BASIC)), "parse", input="Say this is a test", model="gpt-4o-mini"
        )
    parsed = call(
        mode, client_for(mode, Cassette(BASIC)), "parse", input="Say this is a test", model="gpt-4o-mini"
    )

    assert type(parsed) is type(expected)
    assert parsed.output_text == expected.output_text == "This is a test."
    assert one_span(instrumented).attributes["gen_ai.usage.cost.amount"] == 0.0000069


@pytest.mark.parametrize("mode", MODES)
def test_response_with_raw_response_returns_it_and_is_priced(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    raw = call(
        mode, client_for(mode, Cassette(BASIC)), "with_raw_response.create", model="gpt-4o-mini", input="x"
    )

    assert isinstance(raw, openai._legacy_response.LegacyAPIResponse)
    assert raw.parse() is raw.parse()
    assert raw.parse().usage.input_tokens == 22
    assert one_span(instrumented).attributes["gen_ai.usage.cost.amount"] == 0.0000069


def helper(mode: str, client: Any, **kwargs: Any) -> tuple[list[Any], Any]:
    """Every event of `responses.stream(...)` and its final response."""
    if mode == "sync":
        with client.responses.stream(**kwargs) as stream:
            return list(stream), stream.get_final_response()

    async def collect() -> tuple[list[Any], Any]:
        async with client.responses.stream(**kwargs) as stream:
            return [event async for event in stream], await stream.get_final_response()

    return run(collect())


@pytest.mark.parametrize("mode", MODES)
def test_response_stream_helper_is_one_priced_span_and_keeps_its_events(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    kwargs = {"model": "gpt-4o-mini", "input": "Say this is a test", "instructions": INSTRUCTIONS}
    with uninstrumented():
        expected_events, expected_final = helper(mode, client_for(mode, Cassette(STREAMING)), **kwargs)
    events, final = helper(mode, client_for(mode, Cassette(STREAMING)), **kwargs)

    assert dumps(events) == dumps(expected_events)
    assert final.model_dump(warnings=False) == expected_final.model_dump(warnings=False)
    assert final.output_text == "This is a test."
    (span,) = inference_spans(instrumented)
    assert streamed_attributes(span)["gen_ai.usage.cost.amount"] == 0.0000069


@pytest.mark.parametrize("mode", MODES)
def test_response_stream_helper_left_early_ends_span_with_its_block(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    client = client_for(mode, Cassette(STREAMING))
    if mode == "sync":
        with client.responses.stream(model="gpt-4o-mini", input="Say this is a test") as stream:
            next(iter(stream))
    else:

        async def first() -> Any:
            async with client.responses.stream(model="gpt-4o-mini", input="Say this is a test") as stream:
                await stream.__anext__()
            return stream

        stream = run(first())
    assert stream is not None, "still referenced: leaving the block, not garbage collection, ended the call"
    assert one_span(instrumented).attributes["gen_ai.response.id"].startswith("resp_0415")


def test_streaming_an_existing_response_adds_no_span(instrumented: InMemorySpanExporter) -> None:
    """`responses.stream(response_id=...)` re-reads a response made earlier (priced then): no new call."""
    traffic = Cassette(STREAMING)

    def retrieve(request: Any) -> Any:
        assert (request.method, request.url.path) == ("GET", "/v1/responses/resp_1")
        recorded = traffic.replay.interactions[0]["response"]
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=recorded["body"]["string"].encode()
        )

    with client_for("sync", retrieve).responses.stream(response_id="resp_1") as stream:
        assert stream.get_final_response().usage.input_tokens == 22
    assert inference_spans(instrumented) == []
