"""OTLP requests → otel_traces rows: the same rows the in-process exporter writes, values rendered like
pdata's AsString, bad input refused with a message or stored safely."""

from __future__ import annotations

import gzip
import json
import struct

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace import Status as SdkStatus
from opentelemetry.trace import StatusCode as SdkStatusCode

from spancost.collector.otlp import DecodeError, key_value, parse_protobuf, to_rows
from spancost.collector.receivers.bodies import (
    JSON,
    PROTOBUF,
    TooLarge,
    UnsupportedEncoding,
    decode,
    decompress,
    encode,
    export_response,
    parse_json,
)
from spancost.collector.rows import COLUMNS, span_row

T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z in ns
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN = bytes.fromhex("b7ad6b7169203331")
PARENT = bytes.fromhex("00f067aa0ba902b7")


def sdk_span(span_id: int = 0x1111, **overrides: object) -> ReadableSpan:
    context = SpanContext(trace_id=0xABC, span_id=span_id, is_remote=False, trace_flags=TraceFlags(1))
    fields: dict[str, object] = {
        "name": "chat gpt-4o",
        "context": context,
        "parent": SpanContext(trace_id=0xABC, span_id=0x2222, is_remote=False),
        "resource": Resource.create({"service.name": "checkout", "service.version": "1.2.3"}),
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 12,
            "ratio": 0.00001,
            "big": 1e22,
            "flag": True,
            "reasons": ("stop", "length"),
            "scores": (1.0, 2.5),
            "negative": -7,
        },
        "kind": SpanKind.CLIENT,
        "status": SdkStatus(SdkStatusCode.ERROR, "boom"),
        "start_time": T0,
        "end_time": T0 + 1_500_000,
        "instrumentation_scope": InstrumentationScope("tests", "0.1"),
        "events": (Event("retry", {"attempt": 2}, timestamp=T0 + 5),),
        "links": (Link(SpanContext(0xDEF, 0x3333, False), {"why": "batch"}),),
    }
    fields.update(overrides)
    return ReadableSpan(**fields)  # type: ignore[arg-type]


def rows_of(request: ExportTraceServiceRequest, **kwargs: object) -> list[list[object]]:
    converted = to_rows(parse_protobuf(request.SerializeToString()), **kwargs)  # type: ignore[arg-type]
    assert converted.rejected == 0, converted.error_message
    return converted.rows


def one_span_request(span: Span, resource: list[KeyValue] | None = None) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(resource or [kv("service.name", "svc")])
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "scope"
    scope_spans.spans.append(span)
    return request


def kv(key: str, value: object) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


def any_value(value: object) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[kv(k, v) for k, v in value.items()]))
    return AnyValue(string_value=str(value))


def span(**fields: object) -> Span:
    defaults: dict[str, object] = {
        "trace_id": TRACE,
        "span_id": SPAN,
        "name": "op",
        "start_time_unix_nano": T0,
        "end_time_unix_nano": T0 + 10,
    }
    defaults.update(fields)
    return Span(**defaults)  # type: ignore[arg-type]


# --- the same rows as the in-process exporter ---------------------------------------------------------


def test_sdk_spans_become_the_rows_the_in_process_exporter_writes() -> None:
    spans = [sdk_span(), sdk_span(span_id=0x1112, parent=None, events=(), links=())]
    rows = rows_of(encode_spans(spans))
    assert rows == [span_row(s) for s in spans]
    assert len(rows[0]) == len(COLUMNS)
    assert rows[0][11]["scores"] == "[1,2.5]"  # Go's JSON: 1.0 is 1
    assert rows[0][11]["big"] == "10000000000000000000000"  # AsString: positional, never 1e+22


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param({"b": 1, "a": [True, None, 1.5e-7]}, '{"a":[true,null,1.5e-7],"b":1}', id="kvlist"),
        pytest.param(["<x>", "a&b"], '["\\u003cx\\u003e","a\\u0026b"]', id="array-html-escaped"),
        pytest.param(b"\x00\xff", "AP8=", id="bytes-base64"),
        pytest.param([b"\x01"], '["AQ=="]', id="bytes-in-array"),
        pytest.param(None, "", id="empty"),
        pytest.param([float("nan")], "", id="nan-in-array"),
        pytest.param(-(2**63), "-9223372036854775808", id="int64-min"),
        pytest.param(2.5e-07, "0.00000025", id="tiny-double"),
        pytest.param("x" * 300, "x" * 300, id="long-string"),
        pytest.param(123_456_789, "123456789", id="four-byte-varint"),
    ],
)
def test_any_values_are_rendered_like_pdata_as_string(value: object, text: str) -> None:
    [row] = rows_of(one_span_request(span(attributes=[kv("v", value)])))
    assert row[11] == {"v": text}


def test_resource_scope_kind_and_status_as_the_upstream_exporter_names_them() -> None:
    request = one_span_request(
        span(kind=Span.SPAN_KIND_PRODUCER, status=Status(code=Status.STATUS_CODE_OK), parent_span_id=PARENT),
        resource=[kv("service.name", "billing"), kv("host.name", "h1")],
    )
    [row] = rows_of(request)
    named = dict(zip(COLUMNS, row, strict=True))
    assert named["ServiceName"] == "billing"
    assert named["ResourceAttributes"] == {"service.name": "billing", "host.name": "h1"}
    assert named["SpanKind"] == "Producer"
    assert named["StatusCode"] == "Ok"
    assert named["ParentSpanId"] == PARENT.hex()
    assert named["ScopeName"] == "scope"
    assert named["Duration"] == 10


# --- spans the table cannot take are left out alone --------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        pytest.param({"trace_id": b""}, "trace_id must be 16 bytes", id="no-trace-id"),
        pytest.param({"trace_id": bytes(16)}, "trace_id must be 16 bytes, not all zero", id="zero-trace-id"),
        pytest.param({"span_id": b"\x01\x02"}, "span_id must be 8 bytes", id="short-span-id"),
        pytest.param({"parent_span_id": b"\x01"}, "parent_span_id must be 8 bytes", id="short-parent"),
        pytest.param({"start_time_unix_nano": 2**64 - 1}, "past 2262", id="time-out-of-range"),
    ],
)
def test_a_span_with_bad_ids_or_times_is_rejected_alone(fields: dict, why: str) -> None:
    request = one_span_request(span(name="good"))
    request.resource_spans[0].scope_spans[0].spans.append(span(name="bad", **fields))
    converted = to_rows(parse_protobuf(request.SerializeToString()))
    assert [row[5] for row in converted.rows] == ["good"]
    assert converted.rejected == 1
    assert "resource_spans[0].scope_spans[0].spans[1]" in converted.error_message
    assert why in converted.error_message


def test_many_rejections_are_summarised() -> None:
    request = one_span_request(span(span_id=b""))
    for _ in range(5):
        request.resource_spans[0].scope_spans[0].spans.append(span(span_id=b""))
    converted = to_rows(parse_protobuf(request.SerializeToString()))
    assert converted.rejected == 6
    assert converted.error_message.endswith("; and 3 more")


# --- stored safely ---------------------------------------------------------------------------------


def _with_bad_utf8(request: ExportTraceServiceRequest, text: str) -> bytes:
    body = request.SerializeToString()
    bad = b"bad\xff\xfeutf8!"
    assert body.count(text.encode()) == 1
    assert len(bad) == len(text)  # the same length: the framing stays valid
    return body.replace(text.encode(), bad)


@pytest.mark.parametrize("where", ["name", "key", "value", "resource", "scope"])
def test_strings_that_are_not_utf8_are_stored_with_replacement_characters(where: str) -> None:
    marker = "MARKER!!!!"  # as long as the bytes that replace it
    request = one_span_request(
        span(
            name=marker if where == "name" else "op",
            attributes=[kv(marker if where == "key" else "k", marker if where == "value" else "v")],
        ),
        resource=[kv("service.name", marker if where == "resource" else "svc")],
    )
    if where == "scope":
        request.resource_spans[0].scope_spans[0].scope.name = marker
    with pytest.raises(Exception, match="UTF-8"):  # what the stock classes do with such a body
        ExportTraceServiceRequest.FromString(_with_bad_utf8(request, marker))
    converted = to_rows(parse_protobuf(_with_bad_utf8(request, marker)))
    [row] = converted.rows
    text = json.dumps(row, default=str)
    assert "bad\\ufffd\\ufffdutf8!" in text
    assert "MARKER" not in text


def test_values_over_the_limit_are_cut_on_a_character_boundary_and_listed() -> None:
    long_value = "é" * 3000  # 6000 bytes of UTF-8
    request = one_span_request(
        span(name="n" * 5000, attributes=[kv("prompt", long_value), kv("short", "ok")]),
        resource=[kv("service.name", "svc"), kv("big", "r" * 2000)],
    )
    converted = to_rows(parse_protobuf(request.SerializeToString()), max_value_bytes=1025)
    [row] = converted.rows
    attributes = row[11]
    assert attributes["prompt"] == "é" * 512  # 1024 bytes: the 513th character would be cut in two
    assert attributes["short"] == "ok"
    assert row[5] == "n" * 1025
    assert row[8]["big"] == "r" * 1025
    assert json.loads(attributes["spancost.truncated"]) == ["resource.big", "prompt", "name"]
    assert converted.truncated == 3


def test_a_malformed_attribute_inside_a_valid_message_is_a_decode_error() -> None:
    # Field 9 (attributes) holding bytes that are not a KeyValue (a key longer than its bytes): the
    # stock parser refuses such a body too.
    body = _reframe(span().SerializeToString() + b"\x4a\x03\x0a\x05x")
    with pytest.raises(Exception, match="parsing"):
        ExportTraceServiceRequest.FromString(body)
    with pytest.raises(DecodeError, match="not a valid KeyValue"):
        to_rows(parse_protobuf(body))


def _reframe(span_bytes: bytes) -> bytes:
    """A request holding one span given as raw bytes."""

    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2]) + _varint(len(payload)) + payload

    return field(1, field(2, field(2, span_bytes)))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_the_fast_attribute_reader_agrees_with_protobuf_on_unusual_encodings() -> None:
    # A KeyValue whose value comes first, and one with the value field repeated (last one wins).
    value_first = b"\x12\x03\x18\xac\x02" + b"\x0a\x01k"
    repeated = b"\x0a\x01k" + b"\x12\x02\x18\x01" + b"\x12\x02\x18\x02"
    wide_int = b"\x0a\x01k" + b"\x12\x0b\x18" + b"\xff" * 9 + b"\x01"
    double = b"\x0a\x01k\x12\x09\x21" + struct.pack("<d", 0.1)
    assert key_value(value_first) == ("k", "300")
    assert key_value(repeated) == ("k", str(KeyValue.FromString(repeated).value.int_value))
    assert key_value(wide_int) == ("k", "-1")
    assert key_value(double) == ("k", "0.1")


def test_unknown_protobuf_fields_are_ignored() -> None:
    """A newer SDK's fields (here 99 on the span, 98 on the request) are skipped, as protobuf does."""
    known = one_span_request(span(attributes=[kv("k", "v")]))
    span_bytes = known.resource_spans[0].scope_spans[0].spans[0].SerializeToString()
    body = _reframe(span_bytes + b"\x9a\x06\x03abc") + b"\x92\x06\x01x"
    [row] = to_rows(parse_protobuf(body)).rows
    assert row[11] == {"k": "v"}
    assert row[1] == TRACE.hex()


# --- bodies -------------------------------------------------------------------------------------------


def test_gzip_bodies_are_decompressed_and_a_bomb_is_too_large() -> None:
    body = encode_spans([sdk_span()]).SerializeToString()
    assert decompress(gzip.compress(body), "gzip", 1 << 20) == body
    assert decompress(gzip.compress(body[:10]) + gzip.compress(body[10:]), "GZIP", 1 << 20) == body
    assert decompress(body, None, 1 << 20) == body
    bomb = gzip.compress(bytes(50 << 20))  # 50 MiB of zeros in ~50 KiB
    assert len(bomb) < 100_000
    with pytest.raises(TooLarge, match="decompresses to more than"):
        decompress(bomb, "gzip", 16 << 20)
    with pytest.raises(DecodeError, match="truncated"):
        decompress(gzip.compress(body)[:-12], "gzip", 1 << 20)
    with pytest.raises(DecodeError, match="cannot be decompressed"):
        decompress(b"not gzip at all", "gzip", 1 << 20)
    with pytest.raises(UnsupportedEncoding, match="'br'"):
        decompress(body, "br", 1 << 20)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        pytest.param(b"\x0a\xff\xff\xff\xff\x0f", "truncated or malformed", id="length-past-the-end"),
        pytest.param(encode_spans([sdk_span()]).SerializeToString()[:-3], "truncated", id="truncated"),
        pytest.param(b"\x0f\x0f\x0f", "malformed", id="bad-wire-type"),
    ],
)
def test_malformed_protobuf_is_a_decode_error(body: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        parse_protobuf(body)


SPEC_JSON = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "my.library", "version": "1.0.0"},
                    "spans": [
                        {
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "spanId": "EEE19B7EC3C1B174",
                            "parentSpanId": "EEE19B7EC3C1B173",
                            "name": "I'm a server span",
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "kind": 2,
                            "attributes": [
                                {"key": "my.span.attr", "value": {"stringValue": "some value"}},
                                {"key": "count", "value": {"intValue": "42"}},
                                {"key": "list", "value": {"arrayValue": {"values": [{"boolValue": True}]}}},
                            ],
                            "status": {"code": 2, "message": "broke"},
                            "events": [{"timeUnixNano": "1544712660500000000", "name": "ev"}],
                            "someFieldFromTheFuture": {"ignored": True},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_otlp_json_as_the_specification_writes_it() -> None:
    converted = to_rows(parse_json(json.dumps(SPEC_JSON).encode()))
    [row] = converted.rows
    named = dict(zip(COLUMNS, row, strict=True))
    assert named["TraceId"] == "5b8efff798038103d269b633813fc60c"
    assert named["SpanId"] == "eee19b7ec3c1b174"
    assert named["ParentSpanId"] == "eee19b7ec3c1b173"
    assert named["Timestamp"] == 1544712660000000000
    assert named["Duration"] == 1_000_000_000
    assert named["SpanKind"] == "Server"
    assert named["StatusCode"] == "Error"
    assert named["SpanAttributes"] == {"my.span.attr": "some value", "count": "42", "list": "[true]"}
    assert named["ServiceName"] == "my.service"
    assert named["Events.Name"] == ["ev"]


def test_json_and_protobuf_bodies_give_the_same_rows() -> None:
    request = encode_spans([sdk_span()])
    from google.protobuf import json_format

    document = json_format.MessageToDict(request)
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for item in scope["spans"]:
                for holder in [item, *item.get("links", [])]:
                    for name in ("traceId", "spanId", "parentSpanId"):
                        if name in holder:  # protobuf's JSON writes base64; OTLP/JSON writes hex
                            import base64

                            holder[name] = base64.b64decode(holder[name]).hex()
    from_json = to_rows(decode(json.dumps(document).encode(), JSON)).rows
    from_protobuf = to_rows(decode(request.SerializeToString(), PROTOBUF)).rows
    assert from_json == from_protobuf


@pytest.mark.parametrize(
    ("body", "why"),
    [
        pytest.param(b'{"resourceSpans": [', "not valid JSON", id="invalid-json"),
        pytest.param(b"[1, 2]", "must be an object", id="not-an-object"),
        pytest.param(
            json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}).encode(),
            r"resourceSpans\[0\].scopeSpans\[0\].spans\[0\].traceId: 'xyz' is not a hex id",
            id="bad-hex-id",
        ),
        pytest.param(
            json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": 7}]}]}]}).encode(),
            "expected a hex string, got int",
            id="id-of-wrong-type",
        ),
        pytest.param(
            json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": ["x"]}]}]}]}).encode(),
            "not an OTLP ExportTraceServiceRequest",
            id="field-of-wrong-type",
        ),
        pytest.param(
            json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": "all of them"}]}]}).encode(),
            "not an OTLP ExportTraceServiceRequest",
            id="list-of-wrong-type",
        ),
    ],
)
def test_bad_json_is_a_decode_error_naming_what_was_wrong(body: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        parse_json(body)


def test_json_with_lone_surrogates_and_bad_utf8_is_stored_with_replacement_characters() -> None:
    document = json.loads(json.dumps(SPEC_JSON))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] = "PLACEHOLDER"
    body = json.dumps(document).encode().replace(b"PLACEHOLDER", b"a\\ud800b\xffc")
    [row] = to_rows(parse_json(body)).rows
    assert row[5] == "a\ufffdb\ufffdc"


def test_responses_are_encoded_like_the_request() -> None:
    assert encode(export_response(0, ""), JSON) == b"{}"
    partial = json.loads(encode(export_response(2, "two bad spans"), JSON))
    assert partial == {"partialSuccess": {"rejectedSpans": "2", "errorMessage": "two bad spans"}}
    assert encode(export_response(0, ""), PROTOBUF) == b""
