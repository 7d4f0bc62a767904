"""Anthropic API traffic for what no cassette records: async clients, Bedrock, Vertex, cache writes, errors.

The other anthropic test modules import these builders. The tests here check the builders against
the recorded traffic: a message built here, streamed as server-sent events or as Bedrock's AWS event
stream, reaches the real SDK as the same events and the same final `Message` as the recorded one.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import anthropic
import httpx2
import pytest
from conftest import load_cassette

MODEL = "claude-sonnet-4-20250514"
BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"
SONNET_45 = "claude-sonnet-4-5-20250929"

# Credentials each kind of client is built with; no attribute may ever carry one.
SECRETS = ("test_anthropic_api_key", "test-bedrock-bearer-token", "test-vertex-access-token")

CLIENT_KINDS = ("anthropic", "bedrock", "vertex")

Handler = Callable[[httpx2.Request], Any]


# --- bodies ---------------------------------------------------------------------------------------------


def message(
    *,
    usage: dict[str, Any],
    model: str = MODEL,
    message_id: str = "msg_01SynthesizedMessage00",
    text: str = "Hello!",
    stop_reason: str = "end_turn",
) -> dict[str, Any]:
    """A `Message` body as the API returns it."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def stream_events(
    body: dict[str, Any], *, first_output_tokens: int = 1, deltas: Iterable[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The events the API streams for `body`: `message_start` with the input usage and a first output
    count, one text block, then `message_delta`s whose usage is cumulative (by default one, with the
    final output count), then `message_stop`."""
    start_usage = {**body["usage"], "output_tokens": first_output_tokens}
    start = {**body, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    text = body["content"][0]["text"]
    if deltas is None:
        deltas = [{"output_tokens": body["usage"]["output_tokens"]}]
    return [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[:3]}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[3:]}},
        {"type": "content_block_stop", "index": 0},
        *(
            {
                "type": "message_delta",
                "delta": {"stop_reason": body["stop_reason"], "stop_sequence": None},
                "usage": usage,
            }
            for usage in deltas
        ),
        {"type": "message_stop"},
    ]


def sse(events: Iterable[dict[str, Any]]) -> bytes:
    """Server-sent events, as the Anthropic API and Vertex's streamRawPredict send them."""
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def _frame(payload: bytes, headers: dict[str, str]) -> bytes:
    """One AWS event-stream message: prelude (lengths + CRC), string headers, payload, message CRC."""
    encoded = b"".join(
        struct.pack("!B", len(name)) + name.encode() + struct.pack("!BH", 7, len(value)) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack("!II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message_bytes = prelude + encoded + payload
    return message_bytes + struct.pack("!I", zlib.crc32(message_bytes))


def event_stream(events: Iterable[dict[str, Any]]) -> bytes:
    """Bedrock's invoke-with-response-stream body: each event base64-encoded in a `chunk` frame."""
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return b"".join(
        _frame(json.dumps({"bytes": base64.b64encode(json.dumps(e).encode()).decode()}).encode(), headers)
        for e in events
    )


# --- handlers and clients ------------------------------------------------------------------------------


def respond(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    """Answer every request with `body` as JSON."""
    return lambda request: httpx2.Response(
        status, json=body, headers={"request-id": "req_01", **(headers or {})}
    )


def respond_stream(kind: str, events: list[dict[str, Any]]) -> Handler:
    """Answer every request with `events` streamed the way `kind`'s endpoint streams them."""
    if kind == "bedrock":
        content, media_type = event_stream(events), "application/vnd.amazon.eventstream"
    else:
        content, media_type = sse(events), "text/event-stream; charset=utf-8"
    return lambda request: httpx2.Response(200, content=content, headers={"content-type": media_type})


def client(
    kind: str, handler: Handler, *, asynchronous: bool = False, traced: bool = True, **options: Any
) -> Any:
    """A real SDK client of `kind` (anthropic, bedrock, vertex) whose HTTP is answered by `handler`.

    `traced=False` turns the SDK's own tracing off, which stands in for SDK versions without it.
    """
    transport = httpx2.MockTransport(handler)
    http_client = (
        httpx2.AsyncClient(transport=transport) if asynchronous else httpx2.Client(transport=transport)
    )
    options = {"max_retries": 0, "http_client": http_client, **options}
    if not traced:
        options["open_telemetry"] = False
    if kind == "bedrock":
        cls = anthropic.AsyncAnthropicBedrock if asynchronous else anthropic.AnthropicBedrock
        return cls(api_key=SECRETS[1], aws_region="us-east-1", **options)
    if kind == "vertex":
        cls = anthropic.AsyncAnthropicVertex if asynchronous else anthropic.AnthropicVertex
        return cls(region="us-east5", project_id="test-project", access_token=SECRETS[2], **options)
    cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    return cls(api_key=SECRETS[0], **options)


def model_for(kind: str) -> str:
    return {"bedrock": BEDROCK_MODEL, "vertex": VERTEX_MODEL}.get(kind, MODEL)


def recorded_body(name: str) -> dict[str, Any]:
    """The JSON body of a cassette's (first) response."""
    return json.loads(load_cassette("anthropic", name)[0]["response"]["body"]["string"])


def recorded_events(name: str) -> list[dict[str, Any]]:
    """The data of every server-sent event of a cassette's (first) response, pings left out."""
    text = load_cassette("anthropic", name)[0]["response"]["body"]["string"]
    events = [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")]
    return [event for event in events if event["type"] != "ping"]


# --- the builders against the recorded traffic ------------------------------------------------------------


def _read_stream(kind: str, events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    sdk = client(kind, respond_stream(kind, events), traced=False)
    request = {"model": model_for(kind), "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    raw = [event.model_dump(exclude_none=True) for event in sdk.messages.create(**request, stream=True)]
    with client(kind, respond_stream(kind, events), traced=False).messages.stream(**request) as helper:
        final = helper.get_final_message()
    return raw, final


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_built_stream_of_the_recorded_message_reads_back_as_that_message(kind: str) -> None:
    """The recorded non-streamed message, streamed by `stream_events` over each platform's wire
    format, accumulates in the SDK's helper to the same content, stop reason and usage."""
    body = recorded_body("test_sync_messages_create_basic")
    recorded = anthropic.types.Message.model_validate(body)
    _, final = _read_stream(kind, stream_events(body))
    assert [block.text for block in final.content] == [block.text for block in recorded.content]
    assert final.stop_reason == recorded.stop_reason
    assert final.usage.input_tokens == recorded.usage.input_tokens == 13
    assert final.usage.output_tokens == recorded.usage.output_tokens == 5


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_recorded_events_rebuilt_reach_the_sdk_unchanged(kind: str) -> None:
    """The recorded stream's own events, re-encoded, are parsed by the SDK into the same events."""
    events = recorded_events("test_sync_messages_create_streaming")
    raw, final = _read_stream(kind, events)
    assert [event["type"] for event in raw] == [event["type"] for event in events]
    assert raw[-2]["usage"]["output_tokens"] == 5
    assert final.content[0].text == "Hello."
