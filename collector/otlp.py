"""OTLP trace requests → `otel_traces` rows, as the upstream collector's clickhouse exporter writes them.

Protobuf is parsed with a private copy of the OTLP schema in which every `string` is `bytes` and every
list of `KeyValue` is a list of raw `bytes` (the wire format is the same, so any valid OTLP body parses
identically):

- a string that is not UTF-8 (another language's SDK can send one) does not fail the whole request,
  as the stock classes do ("String field had bad UTF-8"); it is stored with U+FFFD in its place;
- an attribute stays one `bytes` object until conversion, which decodes the usual shapes (a string, an
  int, a double, a bool) directly, and caches the short ones (attributes repeat across spans), instead
  of building three protobuf objects per attribute: this is most of a span's conversion time.

A span that cannot be stored (missing or invalid ids, a time past 2262) is left out alone and counted
for the response's partial success; values longer than the size limit are shortened and listed in
`spancost.truncated`. HTTP bodies (JSON, gzip) become protobuf in `receivers/bodies.py`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from spancost.attributes import SERVICE_NAME, TRUNCATED_ATTRIBUTES
from spancost.collector.rows import attribute_string, format_double, pdata_json


class DecodeError(ValueError):
    """The body is not an OTLP trace export request; the message says what was wrong (a 400)."""


# --- the loose schema -----------------------------------------------------------------------------

_KEY_VALUE = ".opentelemetry.proto.common.v1.KeyValue"
_REQUEST = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"


def _loosen(messages: Any) -> None:
    for message in messages:
        for one in message.field:
            if one.type == one.TYPE_STRING:
                one.type = one.TYPE_BYTES
            elif one.type_name == _KEY_VALUE and one.label == one.LABEL_REPEATED:
                one.type = one.TYPE_BYTES
                one.ClearField("type_name")
        _loosen(message.nested_type)


def _loose_classes() -> tuple[Any, Any]:
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2, trace_pb2, trace_service_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        _loosen(proto.message_type)
        pool.Add(proto)

    def cls(name: str) -> Any:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))

    return cls(_REQUEST), cls(_KEY_VALUE[1:])


LooseRequest, LooseKeyValue = _loose_classes()
"""The OTLP classes with `bytes` for every string and raw `bytes` for every `KeyValue` in a list."""


# --- protobuf ---------------------------------------------------------------------------------------


def parse_protobuf(body: bytes) -> Any:
    """A `LooseRequest` from an `application/x-protobuf` body."""
    try:
        return LooseRequest.FromString(body)
    except ProtobufDecodeError as err:
        raise DecodeError(
            f"the body is not a protobuf ExportTraceServiceRequest (truncated or malformed): {err}"
        ) from None
    except (RecursionError, ValueError) as err:
        raise DecodeError(f"the body is not a protobuf ExportTraceServiceRequest: {err}") from None


# --- attributes -------------------------------------------------------------------------------------

_DOUBLE = struct.Struct("<d")
_KV_CACHE: dict[bytes, tuple[str, str]] = {}
_KV_CACHE_LIMIT = 50_000
_KV_CACHE_CHARS = 255
"""Attributes repeat across spans (operation, provider, model, prompt, service...): a raw KeyValue →
(key, text) cache saves decoding them again. Only pairs of short texts are kept, so the cache stays a
few MB and a cached pair never needs cutting to size. Shared by all requests and threads: dict reads
and writes are atomic, and a clear only costs some decoding."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _scalar(raw: bytes, pos: int) -> str | None:
    """The text of the AnyValue that fills `raw` from `pos`, for the usual one-field shapes; None for
    anything else (arrays, maps, bytes, unusual encodings), which the protobuf parser then reads."""
    if pos == len(raw):
        return ""  # an empty AnyValue: pdata renders it as ""
    tag = raw[pos]
    if tag == 0x0A:  # string_value
        length, start = _varint(raw, pos + 1)
        if start + length == len(raw):
            return raw[start:].decode("utf-8", "replace")
    elif tag == 0x18:  # int_value
        value, end = _varint(raw, pos + 1)
        if end == len(raw):
            value &= 0xFFFFFFFFFFFFFFFF
            return str(value - (1 << 64) if value >> 63 else value)
    elif tag == 0x21 and pos + 9 == len(raw):  # double_value
        return format_double(_DOUBLE.unpack_from(raw, pos + 1)[0])
    elif tag == 0x10:  # bool_value
        value, end = _varint(raw, pos + 1)
        if end == len(raw):
            return "true" if value else "false"
    return None


def key_value(raw: bytes) -> tuple[str, str]:
    """One OTLP `KeyValue`, still in wire form, as (key, value rendered like pdata's AsString)."""
    size = len(raw)
    # The usual shape, read inline: key and value each under 128 bytes (one-byte lengths), and the
    # value a string, an int, a double or a bool. This runs for every attribute not in the cache.
    if size > 3 and raw[0] == 0x0A and raw[1] < 0x80:
        end = 2 + raw[1]
        if end + 2 <= size and raw[end] == 0x12 and raw[end + 1] == size - end - 2 and raw[end + 1] < 0x80:
            key = raw[2:end].decode("utf-8", "replace")
            at = end + 2
            if at == size:
                return key, ""  # an empty AnyValue: pdata renders it as ""
            tag = raw[at]
            if tag == 0x0A:  # string_value
                if raw[at + 1] == size - at - 2 and raw[at + 1] < 0x80:
                    return key, raw[at + 2 :].decode("utf-8", "replace")
            elif tag == 0x18:  # int_value: a varint to the end (small counts inline, the rest in _varint)
                if size == at + 2 and raw[at + 1] < 0x80:
                    return key, str(raw[at + 1])
                if size == at + 3 and raw[at + 1] >= 0x80 and raw[at + 2] < 0x80:
                    return key, str((raw[at + 1] & 0x7F) | raw[at + 2] << 7)
                if size == at + 4 and raw[at + 1] >= 0x80 and raw[at + 2] >= 0x80 and raw[at + 3] < 0x80:
                    return key, str((raw[at + 1] & 0x7F) | (raw[at + 2] & 0x7F) << 7 | raw[at + 3] << 14)
            elif tag == 0x21:  # double_value
                if size == at + 9:
                    text = repr(_DOUBLE.unpack_from(raw, at + 1)[0])
                    if "e" in text or "n" in text:  # exponent, nan, inf: the full rendering
                        return key, format_double(float(text))
                    return key, text[:-2] if text.endswith(".0") else text
            elif tag == 0x10 and size == at + 2 and raw[at + 1] < 0x80:  # bool_value
                return key, "true" if raw[at + 1] else "false"
    try:
        if raw[0] == 0x0A:
            length, start = _varint(raw, 1)
            end = start + length
            if end == size:
                return raw[start:end].decode("utf-8", "replace"), ""
            if end < size and raw[end] == 0x12:
                length, value_start = _varint(raw, end + 1)
                if value_start + length == size:
                    text = _scalar(raw, value_start)
                    if text is not None:
                        return raw[start:end].decode("utf-8", "replace"), text
    except (IndexError, ValueError):
        pass
    return _parsed_key_value(raw)


def _parsed_key_value(raw: bytes) -> tuple[str, str]:
    try:
        parsed = LooseKeyValue.FromString(raw)
    except (ProtobufDecodeError, RecursionError) as err:
        raise DecodeError(f"an attribute is not a valid KeyValue: {err}") from None
    value = parsed.value
    if value.WhichOneof("value") == "string_value":
        text = value.string_value.decode("utf-8", "replace")
    else:
        text = "" if value.WhichOneof("value") is None else attribute_string(_raw_value(value))
    return parsed.key.decode("utf-8", "replace"), text


def _raw_value(value: Any) -> Any:
    """An AnyValue as the plain value pdata's AsRaw gives (what its JSON rendering is made from)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return value.string_value.decode("utf-8", "replace")
    if which == "array_value":
        return [_raw_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        entries = {}
        for raw in value.kvlist_value.values:
            try:
                parsed = LooseKeyValue.FromString(raw)
            except (ProtobufDecodeError, RecursionError) as err:
                raise DecodeError(f"an attribute map entry is not a valid KeyValue: {err}") from None
            entries[parsed.key.decode("utf-8", "replace")] = _raw_value(parsed.value)
        return entries
    return getattr(value, which)  # bool, int, double, bytes


# --- rows -------------------------------------------------------------------------------------------

_KINDS = {0: "Unspecified", 1: "Internal", 2: "Server", 3: "Client", 4: "Producer", 5: "Consumer"}
_STATUS_CODES = {0: "Unset", 1: "Ok", 2: "Error"}
"""pdata's names (`SpanKind.String()`, `StatusCode.String()`); a value they do not know is ""."""
_NO_TRACE = bytes(16)
_NO_SPAN = bytes(8)
_MAX_TIME = (1 << 63) - 1  # DateTime64(9) holds nanoseconds in an Int64: up to 2262-04-11
_TEXT_CACHE: dict[bytes, str] = {}


class SpanStage(Protocol):
    """Work done on a span's attributes between decoding and storing (pricing, content removal)."""

    def apply(
        self, attributes: dict[str, str], events: Sequence[Any], scope_name: str, start_ns: int
    ) -> Sequence[Any] | None:
        """Update `attributes` in place; return the events to keep when some are dropped, else None."""


@dataclass
class Converted:
    """The rows of one request, and what could not be stored."""

    rows: list[list[Any]] = field(default_factory=list)
    rejected: int = 0
    """Spans left out (missing or invalid ids, times out of range)."""
    problems: list[str] = field(default_factory=list)
    """Why, for the first few of them."""
    truncated: int = 0
    """Values shortened to the attribute size limit."""

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.problems)
        return "; ".join(self.problems) + (f"; and {more} more" if more > 0 else "")


class _Rejected(Exception):
    """This span cannot be stored; the rest of the request can."""


def _text(raw: bytes) -> str:
    text = _TEXT_CACHE.get(raw)
    if text is None:
        text = raw.decode("utf-8", "replace")
        if len(raw) <= 128:
            if len(_TEXT_CACHE) >= _KV_CACHE_LIMIT:
                _TEXT_CACHE.clear()
            _TEXT_CACHE[raw] = text
    return text


class _Converter:
    def __init__(self, max_value_bytes: int, stage: SpanStage | None) -> None:
        self.limit = max_value_bytes
        if max_value_bytes < 4 * (_KV_CACHE_CHARS + 1):  # a cached pair must never need cutting
            raise ValueError(f"max_value_bytes {max_value_bytes}: must be at least 1024")
        self.quick_limit = max_value_bytes // 4  # a str this short cannot exceed the limit in UTF-8
        self.stage = stage
        self.out = Converted()
        self.cut: list[str] = []

    def _cut(self, text: str, label: str) -> str:
        data = text.encode("utf-8", "replace")
        if len(data) <= self.limit:
            return text
        self.cut.append(label)
        return data[: self.limit].decode("utf-8", "ignore")  # "ignore" drops a character cut in two

    def _attributes(self, raws: Sequence[bytes], prefix: str) -> dict[str, str]:
        # One pass over the raw attributes through the cache (C speed); only misses are decoded.
        raws = list(raws)  # each raw made once, its hash computed once
        cache = _KV_CACHE
        pairs = list(map(cache.get, raws))
        index = -1
        while None in pairs:
            index = pairs.index(None, index + 1)
            raw = raws[index]
            key, text = key_value(raw)
            if len(text) <= _KV_CACHE_CHARS and len(key) <= _KV_CACHE_CHARS:
                if len(cache) >= _KV_CACHE_LIMIT:
                    cache.clear()
                cache[raw] = (key, text)
            elif len(text) > self.quick_limit or len(key) > self.quick_limit:
                key = self._cut(key, f"{prefix}{key[:64]}")
                text = self._cut(text, f"{prefix}{key}")
            pairs[index] = (key, text)
        return dict(pairs)

    def request(self, request: Any) -> Converted:
        out = self.out
        for r, resource_spans in enumerate(request.resource_spans):
            self.cut = []
            resource = self._attributes(resource_spans.resource.attributes, "resource.")
            resource_cut, self.cut = self.cut, []
            service = resource.get(SERVICE_NAME, "")
            for s, scope_spans in enumerate(resource_spans.scope_spans):
                scope = scope_spans.scope
                scope_name, scope_version = _text(scope.name), _text(scope.version)
                for i, span in enumerate(scope_spans.spans):
                    try:
                        row = self._row(span, scope_name, start=span.start_time_unix_nano)
                    except _Rejected as err:
                        out.rejected += 1
                        if len(out.problems) < 3:
                            out.problems.append(f"resource_spans[{r}].scope_spans[{s}].spans[{i}]: {err}")
                        self.cut = []
                        continue
                    if self.cut or resource_cut:
                        cut, self.cut = resource_cut + self.cut, []
                        out.truncated += len(cut)
                        row[11][TRUNCATED_ATTRIBUTES] = pdata_json(cut)
                    row[7:11] = service, resource, scope_name, scope_version
                    out.rows.append(row)
        return out

    def _row(self, span: Any, scope_name: str, start: int) -> list[Any]:
        """The row of `span`, without its service, resource and scope (the caller's: shared by many)."""
        trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
        if len(trace_id) != 16 or trace_id == _NO_TRACE:
            raise _Rejected(f"trace_id must be 16 bytes, not all zero (got {trace_id.hex() or 'none'})")
        if len(span_id) != 8 or span_id == _NO_SPAN:
            raise _Rejected(f"span_id must be 8 bytes, not all zero (got {span_id.hex() or 'none'})")
        if parent_id and len(parent_id) != 8:
            raise _Rejected(f"parent_span_id must be 8 bytes or empty (got {parent_id.hex()})")
        if start > _MAX_TIME:
            raise _Rejected(f"start_time_unix_nano {start} is past 2262, beyond what the table holds")
        end = span.end_time_unix_nano
        attributes = self._attributes(span.attributes, "")
        events: Sequence[Any] = span.events
        if self.stage is not None:
            kept = self.stage.apply(attributes, events, scope_name, start)
            if kept is not None:
                events = kept
        name = _text(span.name)
        if len(name) > self.quick_limit:
            name = self._cut(name, "name")
        status = span.status
        message = status.message
        if message:
            message = message.decode("utf-8", "replace")
            if len(message) > self.quick_limit:
                message = self._cut(message, "status.message")
        trace_state = span.trace_state
        row = [
            start,
            trace_id.hex(),
            span_id.hex(),
            parent_id.hex() if parent_id and parent_id != _NO_SPAN else "",
            trace_state.decode("utf-8", "replace") if trace_state else "",
            name,
            _KINDS.get(span.kind, ""),
            None,  # ServiceName, ResourceAttributes, ScopeName, ScopeVersion: set by the caller
            None,
            None,
            None,
            attributes,
            end - start if end > start else 0,
            _STATUS_CODES.get(status.code, ""),
            message or "",
            [],
            [],
            [],
            [],
            [],
            [],
            [],
        ]
        if events:
            self._events(events, row)
        links = span.links
        if links:
            self._links(links, row)
        return row

    def _events(self, events: Sequence[Any], row: list[Any]) -> None:
        times, names, attributes = row[15:18]
        for k, event in enumerate(events):
            if event.time_unix_nano > _MAX_TIME:
                raise _Rejected(f"events[{k}].time_unix_nano {event.time_unix_nano} is past 2262")
            times.append(event.time_unix_nano)
            names.append(_text(event.name))
            attributes.append(self._attributes(event.attributes, f"events.{k}."))

    def _links(self, links: Sequence[Any], row: list[Any]) -> None:
        traces, spans, states, attributes = row[18:22]
        for k, link in enumerate(links):
            # A link is context, not the span: an id of the wrong size is stored empty rather than
            # costing the span.
            traces.append(link.trace_id.hex() if len(link.trace_id) == 16 else "")
            spans.append(link.span_id.hex() if len(link.span_id) == 8 else "")
            states.append(_text(link.trace_state))
            attributes.append(self._attributes(link.attributes, f"links.{k}."))


def to_rows(request: Any, *, max_value_bytes: int = 64 * 1024, stage: SpanStage | None = None) -> Converted:
    """The `otel_traces` rows (in `COLUMNS` order) of a decoded request, as the upstream exporter writes
    them. Rows of one resource share its ResourceAttributes dict: treat rows as read-only."""
    return _Converter(max_value_bytes, stage).request(request)
