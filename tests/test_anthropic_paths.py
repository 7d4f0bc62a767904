"""Every way an app calls the anthropic SDK is exactly one priced, tagged inference span.

Each API (`messages.create`, `.parse`, `create(stream=True)`, the `messages.stream()` helper, and
`beta.messages` likewise), sync and async, on every client (`Anthropic`, `AnthropicBedrock`,
`AnthropicVertex`), both when the SDK traces itself (its span is the one, spancost tags and prices
it) and when it does not (`open_telemetry=False`, standing in for older SDKs: spancost's span).
Recorded traffic is replayed wherever it fits; the platforms and cache writes use built traffic.

Prices per million tokens, claude-sonnet-4 and claude-sonnet-4-5 alike: $3 input, $0.30 cache read,
$3.75 cache write (5 min), $6 cache write (1 h), $15 output.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from conftest import Replay, inference_spans, load_cassette
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from test_anthropic_traffic import (
    MODEL,
    SONNET_45,
    client,
    message,
    model_for,
    respond,
    respond_stream,
    stream_events,
)

import spancost
from spancost.pricing import default_table

SYSTEM = "You greet people."
MESSAGES = [{"role": "user", "content": "Say hello in one word."}]
REQUEST = {"model": MODEL, "max_tokens": 100, "system": SYSTEM, "messages": MESSAGES}
TAGS = {"prompt": "greeter", "user_id": "u-7", "workspace_id": "globex"}

STREAMING = ("create-stream", "stream-helper", "beta-create-stream", "beta-stream-helper")


def _resource(sdk: Any, api: str) -> Any:
    return sdk.beta.messages if api.startswith("beta-") else sdk.messages


def text_of(reply: Any) -> str:
    return "".join(block.text for block in reply.content if block.type == "text")


def call(api: str, sdk: Any, request: dict[str, Any], asynchronous: bool = False) -> str:
    """Make the call the way an app does, read it to the end, and return the reply's text."""
    if asynchronous:
        return asyncio.run(_acall(api, sdk, request))
    messages = _resource(sdk, api)
    method = api.removeprefix("beta-")
    if method == "create":
        return text_of(messages.create(**request))
    if method == "parse":
        return text_of(messages.parse(**request))
    if method == "create-stream":
        stream = messages.create(**request, stream=True)
        return "".join(e.delta.text for e in stream if e.type == "content_block_delta")
    with messages.stream(**request) as stream:
        return "".join(stream.text_stream)


async def _acall(api: str, sdk: Any, request: dict[str, Any]) -> str:
    messages = _resource(sdk, api)
    method = api.removeprefix("beta-")
    if method == "create":
        return text_of(await messages.create(**request))
    if method == "parse":
        return text_of(await messages.parse(**request))
    if method == "create-stream":
        stream = await messages.create(**request, stream=True)
        return "".join([e.delta.text async for e in stream if e.type == "content_block_delta"])
    async with messages.stream(**request) as stream:
        return "".join([text async for text in stream.text_stream])


def expect_one_span(exporter: InMemorySpanExporter, *, traced: bool, model: str = MODEL) -> ReadableSpan:
    """The call's one inference span: the SDK's own when it traces, else spancost's."""
    (span,) = inference_spans(exporter)
    assert span.kind is SpanKind.CLIENT
    if traced:
        assert span.name == "anthropic.messages.create"
        assert span.instrumentation_scope.name.startswith("com.anthropic.sdk.python")
    else:
        assert span.name == f"chat {model}"
        assert span.instrumentation_scope.name == "spancost.instrumentation.anthropic"
    assert span.attributes["spancost.price.version"] == default_table().version
    assert span.attributes["spancost.cost.status"] == "priced"
    assert span.attributes["gen_ai.usage.cost.currency"] == "USD"
    return span


def expect(span: ReadableSpan, attributes: dict[str, Any]) -> None:
    for key, value in attributes.items():
        assert span.attributes.get(key) == value, key


def _cases(apis: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(api, asynchronous, traced, id=f"{api}-{'async' if asynchronous else 'sync'}-{mode}")
        for api in apis
        for asynchronous in (False, True)
        for traced, mode in ((True, "sdk-span"), (False, "spancost-span"))
    ]


# --- recorded traffic ------------------------------------------------------------------------------------

# API → (cassette, response id, reply text)
RECORDED = {
    "create": ("test_sync_messages_create_basic", "msg_0176GK1qFwwpVM59jDYiKPjN", "Hello!"),
    "parse": ("test_sync_messages_create_basic", "msg_0176GK1qFwwpVM59jDYiKPjN", "Hello!"),
    "create-stream": ("test_sync_messages_create_streaming", "msg_01VY8H3oPFs4WWVnJXFDxNhU", "Hello."),
    "stream-helper": ("test_sync_messages_stream", "msg_01FpWuSsvRgJp3eYbdHBinNp", "Hello!"),
    "beta-create": ("test_sync_messages_create_basic", "msg_0176GK1qFwwpVM59jDYiKPjN", "Hello!"),
    "beta-create-stream": ("test_sync_messages_create_streaming", "msg_01VY8H3oPFs4WWVnJXFDxNhU", "Hello."),
    "beta-stream-helper": ("test_sync_messages_stream", "msg_01FpWuSsvRgJp3eYbdHBinNp", "Hello!"),
}


@pytest.mark.parametrize(("api", "asynchronous", "traced"), _cases(tuple(RECORDED)))
def test_recorded_call_is_one_priced_tagged_span_on_every_path(
    instrumented: InMemorySpanExporter, api: str, asynchronous: bool, traced: bool
) -> None:
    """13 in × $3/M + 5 out × $15/M = $0.000039 + $0.000075 = $0.000114, on every path. The streamed
    recordings start with 2 output tokens and end with a cumulative 5: 5 it is, not 7."""
    cassette, response_id, text = RECORDED[api]
    replay = Replay(load_cassette("anthropic", cassette))
    sdk = client("anthropic", replay, asynchronous=asynchronous, traced=traced)
    with spancost.tags(**TAGS):
        assert call(api, sdk, REQUEST, asynchronous) == text
    assert replay.request_json()["system"] == SYSTEM

    span = expect_one_span(instrumented, traced=traced)
    expect(
        span,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": MODEL,
            "gen_ai.request.max_tokens": 100,
            "gen_ai.response.model": MODEL,
            "gen_ai.response.id": response_id,
            "gen_ai.usage.input_tokens": 13,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cost.amount": 0.000114,
            "spancost.cost.input": 0.000039,
            "spancost.cost.output": 0.000075,
            "spancost.cost.cache_read": 0.0,
            "spancost.cost.cache_write": 0.0,
            "spancost.price.key": "anthropic/claude-sonnet-4",
            "spancost.price.tier": "standard",
            "anthropic.response.service_tier": "standard",
            "server.address": "api.anthropic.com",
            "spancost.prompt.name": "greeter",
            "spancost.prompt.version": hashlib.sha256(SYSTEM.encode()).hexdigest()[:12],
            "spancost.prompt.system_tokens": 5,  # 17 characters / 4, rounded up
            "user.id": "u-7",
            "spancost.workspace.id": "globex",
        },
    )
    streamed = api in STREAMING
    assert span.attributes.get("gen_ai.request.stream") is (True if streamed else None)
    if streamed:
        assert span.attributes["gen_ai.response.time_to_first_chunk"] >= 0
    if not traced:
        assert span.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
        if streamed:
            # Measured from the request, within the span (the SDK counts from a clock read before its
            # span starts, so its value can exceed its span's duration by microseconds).
            duration = (span.end_time - span.start_time) / 1e9
            assert span.attributes["gen_ai.response.time_to_first_chunk"] <= duration


@pytest.mark.parametrize(
    ("cassette", "arguments", "tokens", "costs"),
    [
        pytest.param(
            "test_sync_messages_create_captures_tool_use_content",
            {
                "tools": [
                    {"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}
                ]
            },
            (386, 34, "tool_use"),
            (0.001668, 0.001158, 0.00051),
            id="tool-use: 386×3 + 34×15 = 1158 + 510 µ$",
        ),
        pytest.param(
            "test_sync_messages_create_captures_thinking_content",
            {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048},
            (46, 417, "end_turn"),
            (0.006393, 0.000138, 0.006255),
            id="thinking: 46×3 + 417×15 = 138 + 6255 µ$",
        ),
    ],
)
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("traced", [True, False], ids=["sdk-span", "spancost-span"])
def test_recorded_tool_use_and_thinking_are_priced_exactly(
    instrumented: InMemorySpanExporter,
    cassette: str,
    arguments: dict[str, Any],
    tokens: tuple[int, int, str],
    costs: tuple[float, float, float],
    asynchronous: bool,
    traced: bool,
) -> None:
    sdk = client(
        "anthropic", Replay(load_cassette("anthropic", cassette)), asynchronous=asynchronous, traced=traced
    )
    call("create", sdk, {**REQUEST, "max_tokens": 1024, **arguments}, asynchronous)
    span = expect_one_span(instrumented, traced=traced)
    stop_key = "anthropic.message.stop_reason" if traced else "gen_ai.response.finish_reasons"
    expect(
        span,
        {
            "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1],
            stop_key: tokens[2] if traced else (tokens[2],),
            "gen_ai.usage.cost.amount": costs[0],
            "spancost.cost.input": costs[1],
            "spancost.cost.output": costs[2],
        },
    )


# --- Bedrock and Vertex ---------------------------------------------------------------------------------

PLATFORM_APIS = ("create", "create-stream", "stream-helper", "beta-create")


@pytest.mark.parametrize("kind", ["bedrock", "vertex"])
@pytest.mark.parametrize(("api", "asynchronous", "traced"), _cases(PLATFORM_APIS))
def test_platform_call_is_one_span_priced_from_the_platform_model_id(
    instrumented: InMemorySpanExporter, kind: str, api: str, asynchronous: bool, traced: bool
) -> None:
    """Claude Sonnet 4.5 on Bedrock / Vertex: 120 in × $3/M + 30 out × $15/M = $0.00036 + $0.00045 = $0.00081.

    The current SDK traces platform clients too (scope `com.anthropic.sdk.python.bedrock` / `.vertex`)."""
    body = message(model=SONNET_45, usage={"input_tokens": 120, "output_tokens": 30}, text="Hi there")
    streamed = api in STREAMING
    handler = respond_stream(kind, stream_events(body)) if streamed else respond(body)
    sdk = client(kind, handler, asynchronous=asynchronous, traced=traced)
    request = {**REQUEST, "model": model_for(kind)}
    with spancost.tags(**TAGS):
        assert call(api, sdk, request, asynchronous) == "Hi there"

    span = expect_one_span(instrumented, traced=traced, model=model_for(kind))
    if traced:
        assert span.instrumentation_scope.name == f"com.anthropic.sdk.python.{kind}"
    expect(
        span,
        {
            "gen_ai.provider.name": {"bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}[kind],
            "gen_ai.request.model": model_for(kind),
            "gen_ai.response.model": SONNET_45,
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.usage.cost.amount": 0.00081,
            "spancost.price.key": "anthropic/claude-sonnet-4-5",
            "spancost.prompt.name": "greeter",
            "spancost.prompt.version": hashlib.sha256(SYSTEM.encode()).hexdigest()[:12],
        },
    )


@pytest.mark.parametrize("kind", ["bedrock", "vertex"])
@pytest.mark.parametrize("traced", [True, False], ids=["sdk-span", "spancost-span"])
def test_platform_model_id_alone_prices_when_the_response_names_no_model(
    instrumented: InMemorySpanExporter, kind: str, traced: bool
) -> None:
    """No `model` in the body: the request's platform id (`us.anthropic.…-v1:0`, `…@20250929`) is
    normalised by the price table: 120 × 3 + 30 × 15 = $0.00081."""
    body = message(model=SONNET_45, usage={"input_tokens": 120, "output_tokens": 30})
    del body["model"]
    call("create", client(kind, respond(body), traced=traced), {**REQUEST, "model": model_for(kind)})
    span = expect_one_span(instrumented, traced=traced, model=model_for(kind))
    assert "gen_ai.response.model" not in span.attributes
    expect(span, {"gen_ai.usage.cost.amount": 0.00081, "spancost.price.key": "anthropic/claude-sonnet-4-5"})


# --- cache reads and writes, cumulative stream usage -----------------------------------------------------

CACHED_USAGE = {
    "input_tokens": 100,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 1500,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 500},
    "output_tokens": 200,
    "service_tier": "standard",
}
CACHED_COST = {
    "gen_ai.usage.input_tokens": 3600,  # 100 uncached + 2000 read + 1500 written
    "gen_ai.usage.output_tokens": 200,
    "gen_ai.usage.cache_read.input_tokens": 2000,
    "gen_ai.usage.cache_write.input_tokens": 1500,
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 500,
    "spancost.cost.input": 0.0003,  # 100 × 3
    "spancost.cost.cache_read": 0.0006,  # 2000 × 0.30
    "spancost.cost.cache_write": 0.00675,  # 1000 × 3.75 + 500 × 6 = 3750 + 3000
    "spancost.cost.output": 0.003,  # 200 × 15
    "gen_ai.usage.cost.amount": 0.01065,  # 300 + 600 + 6750 + 3000 µ$
}
# Server-tool calls bring a second message_delta; each one repeats the counts so far (cumulative).
CUMULATIVE_DELTAS = [
    {"output_tokens": 50},
    {
        "input_tokens": 100,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 1500,
        "output_tokens": 200,
    },
]


@pytest.mark.parametrize(
    ("api", "deltas"),
    [
        pytest.param("create", None, id="create"),
        pytest.param("create-stream", None, id="create-stream"),
        pytest.param("stream-helper", None, id="stream-helper"),
        pytest.param("create-stream", CUMULATIVE_DELTAS, id="create-stream-two-cumulative-deltas"),
        pytest.param("stream-helper", CUMULATIVE_DELTAS, id="stream-helper-two-cumulative-deltas"),
    ],
)
@pytest.mark.parametrize("traced", [True, False], ids=["sdk-span", "spancost-span"])
def test_cache_reads_and_writes_are_priced_at_their_rates(
    instrumented: InMemorySpanExporter, api: str, deltas: list[dict[str, int]] | None, traced: bool
) -> None:
    """Anthropic's input_tokens exclude the cache: 100 uncached + 2000 read + 1500 written (1000 for
    5 min, 500 for 1 h) = 3600 in, 200 out. Streamed, the last cumulative count is the call's."""
    body = message(usage=CACHED_USAGE)
    handler = (
        respond_stream("anthropic", stream_events(body, deltas=deltas)) if api in STREAMING else respond(body)
    )
    call(api, client("anthropic", handler, traced=traced), REQUEST)
    expect(expect_one_span(instrumented, traced=traced), CACHED_COST)


# --- raw responses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("traced", [True, False], ids=["sdk-span", "spancost-span"])
def test_raw_response_call_is_priced_from_its_body(
    instrumented: InMemorySpanExporter, asynchronous: bool, traced: bool
) -> None:
    """`with_raw_response` returns the HTTP response; its body was read, so 13 × 3 + 5 × 15 = $0.000114."""
    replay = Replay(load_cassette("anthropic", "test_sync_messages_create_basic"))
    sdk = client("anthropic", replay, asynchronous=asynchronous, traced=traced)

    async def raw_async() -> tuple[Any, Any]:
        raw = await sdk.messages.with_raw_response.create(**REQUEST)
        return raw, await raw.parse()

    if asynchronous:
        raw, reply = asyncio.run(raw_async())
    else:
        raw = sdk.messages.with_raw_response.create(**REQUEST)
        reply = raw.parse()
    assert raw.headers["request-id"] == "req_011CYfQM6TP1iFTVWNrJQJcn"
    assert reply.id == "msg_0176GK1qFwwpVM59jDYiKPjN"
    span = expect_one_span(instrumented, traced=traced)
    expect(span, {"gen_ai.usage.input_tokens": 13, "gen_ai.usage.cost.amount": 0.000114})
