"""Message content is recorded only when the user opts in, in the GenAI semantic conventions' shape.

By default no prompt, system prompt, completion or credential appears in any attribute of any span,
on any path. With OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT on, spancost's own span carries
`gen_ai.system_instructions`, `gen_ai.input.messages` and `gen_ai.output.messages` as JSON. The
SDK's own span follows the SDK's own switch, which spancost leaves as the user set it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import Replay, inference_spans, load_cassette
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_anthropic_paths import call
from test_anthropic_traffic import (
    MODEL,
    SECRETS,
    SONNET_45,
    client,
    message,
    model_for,
    recorded_body,
    respond,
    respond_stream,
    stream_events,
)

from spancost.instrumentation._inference import CAPTURE_CONTENT_ENV
from spancost.instrumentation.anthropic import patch as patch_module
from spancost.instrumentation.anthropic import stream as stream_module

SYSTEM = "Private preamble 5d1c"
QUESTION = "Question text 7a41"
ANSWER = "Completion text 9e2a"
REQUEST = {
    "model": MODEL,
    "max_tokens": 100,
    "system": SYSTEM,
    "messages": [{"role": "user", "content": QUESTION}],
}
BODY = message(usage={"input_tokens": 20, "output_tokens": 6}, text=ANSWER)

APIS = ("create", "parse", "create-stream", "stream-helper", "beta-create", "beta-stream-helper")
STREAMING = ("create-stream", "stream-helper", "beta-stream-helper")


@pytest.fixture
def content_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    monkeypatch.delenv("ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE", raising=False)


@pytest.fixture
def content_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    monkeypatch.delenv("ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE", raising=False)


def _handler(kind: str, api: str, body: dict[str, Any] = BODY) -> Any:
    return respond_stream(kind, stream_events(body)) if api in STREAMING else respond(body)


@pytest.mark.parametrize("kind", ["anthropic", "bedrock", "vertex"])
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("traced", [True, False], ids=["sdk-span", "spancost-span"])
def test_no_content_and_no_credential_in_any_attribute_by_default(
    content_off, instrumented: InMemorySpanExporter, kind: str, api: str, asynchronous: bool, traced: bool
) -> None:
    sdk = client(kind, _handler(kind, api), asynchronous=asynchronous, traced=traced)
    assert call(api, sdk, {**REQUEST, "model": model_for(kind)}, asynchronous) == ANSWER
    finished = instrumented.get_finished_spans()
    assert len(inference_spans(instrumented)) == 1
    recorded = " ".join(f"{key}={value}" for span in finished for key, value in span.attributes.items())
    for secret in (SYSTEM, QUESTION, ANSWER, *SECRETS):
        assert secret not in recorded
    for name in ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages"):
        assert name not in recorded


def _content(span: Any) -> dict[str, Any]:
    return {
        key.removeprefix("gen_ai."): json.loads(span.attributes[key])
        for key in ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages")
        if key in span.attributes
    }


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_opted_in_content_is_on_spancosts_span_in_the_conventions_shape(
    content_on, instrumented: InMemorySpanExporter, api: str, asynchronous: bool
) -> None:
    sdk = client("anthropic", _handler("anthropic", api), asynchronous=asynchronous, traced=False)
    call(api, sdk, REQUEST, asynchronous)
    (span,) = inference_spans(instrumented)
    assert _content(span) == {
        "system_instructions": [{"type": "text", "content": SYSTEM}],
        "input.messages": [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}],
        "output.messages": [
            {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
        ],
    }


@pytest.mark.parametrize(
    ("cassette", "question", "output"),
    [
        pytest.param(
            "test_sync_messages_create_captures_tool_use_content",
            "What is the weather in SF?",
            [
                {
                    "type": "tool_call",
                    "id": "toolu_01UAcA2APHENDob6qJ8kmoaC",
                    "name": "get_weather",
                    "arguments": {"city": "San Francisco"},
                }
            ],
            id="tool-use",
        ),
        pytest.param(
            "test_sync_messages_create_captures_thinking_content",
            "What is 17*19? Think first.",
            None,  # read from the recording below: a reasoning part, then the answer
            id="thinking",
        ),
    ],
)
def test_recorded_tool_call_and_thinking_become_their_parts(
    content_on, instrumented: InMemorySpanExporter, cassette: str, question: str, output: list[Any] | None
) -> None:
    body = recorded_body(cassette)
    if output is None:
        thinking, answer = body["content"]
        output = [
            {"type": "reasoning", "content": thinking["thinking"]},
            {"type": "text", "content": answer["text"]},
        ]
    sdk = client("anthropic", Replay(load_cassette("anthropic", cassette)), traced=False)
    sdk.messages.create(model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": question}])
    (span,) = inference_spans(instrumented)
    finish = "tool_call" if body["stop_reason"] == "tool_use" else "stop"
    assert _content(span)["output.messages"] == [
        {"role": "assistant", "parts": output, "finish_reason": finish}
    ]


def test_streamed_tool_call_is_assembled_from_its_json_deltas(
    content_on, instrumented: InMemorySpanExporter
) -> None:
    start = message(usage={"input_tokens": 50, "output_tokens": 1}, stop_reason="tool_use")
    start.update(content=[], stop_reason=None)
    events = [
        {"type": "message_start", "message": start},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"ci'},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": 'ty": "SF"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 12},
        },
        {"type": "message_stop"},
    ]
    sdk = client("anthropic", respond_stream("anthropic", events), traced=False)
    with sdk.messages.stream(**REQUEST) as stream:
        assert stream.get_final_message().content[0].input == {"city": "SF"}
    (span,) = inference_spans(instrumented)
    tool_call = {"type": "tool_call", "id": "toolu_01", "name": "get_weather", "arguments": {"city": "SF"}}
    assert _content(span)["output.messages"] == [
        {"role": "assistant", "parts": [tool_call], "finish_reason": "tool_call"}
    ]


def test_input_blocks_become_parts_and_inline_data_is_left_out(
    content_on, instrumented: InMemorySpanExporter
) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": QUESTION},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {"q": 1}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "42"}]},
    ]
    system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    sdk = client("anthropic", respond(BODY), traced=False)
    sdk.messages.create(model=MODEL, max_tokens=100, system=system, messages=messages)
    (span,) = inference_spans(instrumented)
    content = _content(span)
    assert content["system_instructions"] == [{"type": "text", "content": SYSTEM}]
    assert content["input.messages"] == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": QUESTION},
                {"type": "image", "mime_type": "image/png"},
                {"type": "uri", "modality": "image", "mime_type": None, "uri": "https://example.com/cat.png"},
            ],
        },
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "toolu_9", "name": "lookup", "arguments": {"q": 1}}],
        },
        {"role": "user", "parts": [{"type": "tool_call_response", "id": "toolu_9", "response": "42"}]},
    ]
    assert png not in span.attributes["gen_ai.input.messages"]


@pytest.mark.parametrize("api", ["create", "create-stream", "stream-helper"])
def test_sdk_span_keeps_the_sdks_own_content_setting(
    content_on, instrumented: InMemorySpanExporter, api: str
) -> None:
    """Opting in to spancost's content does not switch the SDK's span to content: the SDK resolves its
    content mode per client, from its own option or ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE."""
    call(api, client("anthropic", _handler("anthropic", api)), REQUEST)
    metadata_only = inference_spans(instrumented)[0]
    assert _content(metadata_only) == {}
    instrumented.clear()

    options = {"open_telemetry": {"traces": {"content_mode": "content"}}}
    call(api, client("anthropic", _handler("anthropic", api), **options), REQUEST)
    (with_content,) = inference_spans(instrumented)
    assert _content(with_content)["input.messages"][0]["parts"] == [{"type": "text", "content": QUESTION}]
    assert with_content.attributes["gen_ai.usage.cost.amount"] > 0


def test_opt_in_is_read_per_call(content_off, instrumented: InMemorySpanExporter, monkeypatch) -> None:
    sdk = client("anthropic", respond(BODY), traced=False)
    sdk.messages.create(**REQUEST)
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "SPAN_ONLY")
    sdk.messages.create(**REQUEST)
    first, second = inference_spans(instrumented)
    assert _content(first) == {}
    assert set(_content(second)) == {"system_instructions", "input.messages", "output.messages"}


def test_async_platform_stream_content(content_on, instrumented: InMemorySpanExporter) -> None:
    """Bedrock's event stream, read by the async helper, gives the same output message."""
    body = message(model=SONNET_45, usage={"input_tokens": 20, "output_tokens": 6}, text=ANSWER)
    sdk = client("bedrock", respond_stream("bedrock", stream_events(body)), asynchronous=True, traced=False)

    async def run() -> None:
        async with sdk.messages.stream(**{**REQUEST, "model": model_for("bedrock")}) as stream:
            await stream.until_done()

    asyncio.run(run())
    (span,) = inference_spans(instrumented)
    assert _content(span)["output.messages"][0]["parts"] == [{"type": "text", "content": ANSWER}]


@pytest.mark.parametrize("api", ["create", "create-stream", "stream-helper"])
def test_content_is_not_even_read_unless_opted_in(
    content_off, instrumented: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    """Off, the per-call path does no content work at all (and the stream hooks keep no blocks)."""
    reads: list[str] = []
    monkeypatch.setattr(patch_module, "request_content", lambda kwargs: reads.append("request") or {})
    monkeypatch.setattr(patch_module, "response_content", lambda result: reads.append("response") or {})
    monkeypatch.setattr(stream_module, "output_content", lambda *a: reads.append("stream") or {})
    sdk = client("anthropic", _handler("anthropic", api), traced=False)
    call(api, sdk, REQUEST)
    assert reads == []
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    call(api, client("anthropic", _handler("anthropic", api), traced=False), REQUEST)
    assert reads == ["request", "response"] if api == "create" else ["request", "stream"]


def test_sdk_content_mode_alone_puts_no_content_on_the_exported_span(
    content_off, instrumented: InMemorySpanExporter
) -> None:
    """The SDK's own content switch without spancost's opt-in: the spancost stage drops the content,
    as it does any instrumentation's, since the user did not opt in to content on spans."""
    options = {"open_telemetry": {"traces": {"content_mode": "content"}}}
    call("create", client("anthropic", respond(BODY), **options), REQUEST)
    (span,) = inference_spans(instrumented)
    assert _content(span) == {}
    assert span.attributes["gen_ai.usage.cost.amount"] > 0
