"""Hypothesis against the OTLP decoder and converter: arbitrary bytes never raise anything but
`DecodeError`; arbitrary well-formed requests convert without error, the same from protobuf and JSON,
and every row that comes out is one the table accepts."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from spancost.collector.otlp import DecodeError, key_value, parse_protobuf, to_rows
from spancost.collector.pricing import IngestStage
from spancost.collector.receivers.bodies import decompress, parse_json
from spancost.collector.rows import COLUMNS, attribute_string

STAGE = IngestStage()
# Keys that make the pricing stage do its work on generated spans, among arbitrary ones.
KEYS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "service.name",
            "gen_ai.operation.name",
            "gen_ai.request.model",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "gen_ai.usage.cost",
            "llm.request.type",
            "gen_ai.prompt.0.content",
        ]
    ),
)
SCALARS = st.one_of(
    st.text(max_size=16).map(lambda v: AnyValue(string_value=v)),
    st.sampled_from(["gpt-4o-mini", "chat", "1000", "0.5"]).map(lambda v: AnyValue(string_value=v)),
    st.booleans().map(lambda v: AnyValue(bool_value=v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: AnyValue(int_value=v)),
    st.floats().map(lambda v: AnyValue(double_value=v)),
    st.binary(max_size=16).map(lambda v: AnyValue(bytes_value=v)),
    st.just(AnyValue()),
)
ANY_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.builds(KeyValue, key=KEYS, value=children), max_size=3).map(
            lambda kvs: AnyValue(kvlist_value=KeyValueList(values=kvs))
        ),
    ),
    max_leaves=6,
)
ATTRIBUTES = st.lists(st.builds(KeyValue, key=KEYS, value=ANY_VALUES), max_size=6)


def _mostly(size: int) -> st.SearchStrategy[bytes]:
    """Ids of the right size four times in five (so that most spans reach the table), else any bytes."""
    return st.tuples(
        st.integers(0, 4), st.binary(min_size=size, max_size=size), st.binary(max_size=size + 4)
    ).map(lambda choice: choice[2] if choice[0] == 0 else choice[1])


IDS_16 = _mostly(16)
IDS_8 = _mostly(8)
TIMES = st.one_of(st.integers(0, 2**64 - 1), st.integers(1_500_000_000 * 10**9, 1_900_000_000 * 10**9))
INT32 = st.integers(-(2**31), 2**31 - 1)

SPANS = st.builds(
    Span,
    trace_id=IDS_16,
    span_id=IDS_8,
    parent_span_id=st.one_of(st.just(b""), IDS_8),
    trace_state=st.text(max_size=8),
    name=st.text(max_size=16),
    kind=INT32,
    start_time_unix_nano=TIMES,
    end_time_unix_nano=TIMES,
    attributes=ATTRIBUTES,
    events=st.lists(
        st.builds(Span.Event, time_unix_nano=TIMES, name=st.text(max_size=12), attributes=ATTRIBUTES),
        max_size=2,
    ),
    links=st.lists(
        st.builds(
            Span.Link, trace_id=IDS_16, span_id=IDS_8, trace_state=st.text(max_size=8), attributes=ATTRIBUTES
        ),
        max_size=2,
    ),
    status=st.builds(Status, message=st.text(max_size=8), code=INT32),
)
REQUESTS = st.builds(
    ExportTraceServiceRequest,
    resource_spans=st.lists(
        st.builds(
            ResourceSpans,
            resource=st.builds(Resource, attributes=ATTRIBUTES),
            scope_spans=st.lists(
                st.builds(
                    ScopeSpans,
                    scope=st.builds(
                        InstrumentationScope, name=st.text(max_size=12), version=st.text(max_size=6)
                    ),
                    spans=st.lists(SPANS, max_size=4),
                ),
                max_size=2,
            ),
        ),
        max_size=2,
    ),
)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_decode_error(body: bytes) -> None:
    try:
        converted = to_rows(parse_protobuf(body), stage=STAGE)
    except DecodeError:
        return
    for row in converted.rows:
        assert len(row) == len(COLUMNS)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_arbitrary_json_bodies_decode_or_raise_decode_error(body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        to_rows(parse_json(body), stage=STAGE)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_gzip_bodies_decompress_or_raise_decode_error(body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decompress(body, "gzip", 1 << 16)


def _otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """The request as OTLP/JSON: protobuf's JSON mapping with ids as hex, as the specification says."""
    document: dict[str, Any] = json_format.MessageToDict(request)
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for holder in [span, *span.get("links", [])]:
                    for name in ("traceId", "spanId", "parentSpanId"):
                        if name in holder:
                            holder[name] = base64.b64decode(holder[name]).hex().upper()
    return json.dumps(document).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(REQUESTS)
def test_well_formed_requests_convert_and_the_table_accepts_every_row(store: Any, request: Any) -> None:
    body = request.SerializeToString()
    converted = to_rows(parse_protobuf(body), stage=STAGE)
    spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    assert len(converted.rows) + converted.rejected == spans
    assert to_rows(parse_json(_otlp_json(request)), stage=STAGE).rows == converted.rows
    for row in converted.rows:
        assert len(row) == len(COLUMNS)
        # One row per insert: rows of random dates would otherwise exceed ClickHouse's partitions per block.
        store.client.insert("otel_traces", [row], column_names=COLUMNS, database=store.database)


def _reference(value: AnyValue) -> Any:
    """What pdata's AsRaw gives for a value, read with the stock protobuf classes (the oracle)."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_reference(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {item.key: _reference(item.value) for item in value.kvlist_value.values}
    return None if which is None else getattr(value, which)


@settings(max_examples=500, deadline=None)
@given(st.builds(KeyValue, key=KEYS, value=ANY_VALUES))
def test_the_attribute_reader_agrees_with_the_stock_protobuf_classes(pair: KeyValue) -> None:
    expected = _reference(pair.value)
    text = "" if expected is None else attribute_string(expected)
    assert key_value(pair.SerializeToString()) == (pair.key, text)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_arbitrary_attribute_bytes_read_or_raise_decode_error(raw: bytes) -> None:
    try:
        key, text = key_value(raw)
    except DecodeError:
        return
    assert isinstance(key, str)
    assert isinstance(text, str)
