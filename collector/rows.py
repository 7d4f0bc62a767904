"""A finished span as a row of `otel_traces`, written the way the upstream collector writes it.

Attribute values become strings as the upstream exporter renders them (pdata's `AsString`):
integers in decimal, doubles in plain positional notation (never `1e-05`), booleans as
`true`/`false`, bytes as base64, arrays and maps as the JSON Go's encoding/json writes (`pdata_json`).
Span kind and status code use pdata's names (`Client`, `Ok`). The OTLP receivers (`otlp.py`) render
decoded OTLP values with the same functions.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from spancost.attributes import SERVICE_NAME

COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)
"""The columns of `otel_traces` that an insert fills, in row order."""

SPAN_KINDS = {
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}
STATUS_CODES = {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}


def format_double(value: float) -> str:
    """A double as Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, no exponent."""
    text = repr(value)
    if "e" not in text and "n" not in text:  # the usual case: repr is already positional
        return text[:-2] if text.endswith(".0") else text
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(text), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class _NotJson(ValueError):
    """A value Go's encoding/json refuses (NaN, infinities): pdata then renders the whole value as ""."""


# Go's encoding/json escapes these beyond what Python's json does (HTML-safe output by default).
_GO_ESCAPES = re.compile("[<>&\u2028\u2029]")
_GO_ESCAPE_TABLE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C-accelerated


def _json_string(text: str) -> str:
    encoded = _encode_string(text)
    return encoded.translate(_GO_ESCAPE_TABLE) if _GO_ESCAPES.search(encoded) else encoded


def _json_double(value: float) -> str:
    """A float64 as encoding/json writes it: positional between 1e-6 and 1e21, else exponent form."""
    if math.isnan(value) or math.isinf(value):
        raise _NotJson(value)
    size = abs(value)
    if size != 0 and (size < 1e-6 or size >= 1e21):
        text = repr(value)  # same shortest digits; Go then writes e-7 where Python writes e-07
        return re.sub(r"e([-+])0(\d)$", r"e\g<1>\g<2>", text)
    return format_double(value)


def _json(value: Any) -> str:
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_double(value)
    if value is None:
        return "null"
    if isinstance(value, (bytes, bytearray)):
        return '"' + base64.b64encode(value).decode("ascii") + '"'
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_json_string(str(k))}:{_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(map(_json, value)) + "]"
    return _json_string(str(value))


def pdata_json(value: Any) -> str:
    """An array or map as pdata's AsString writes it: Go's json.Marshal of its raw value (compact, map keys
    sorted, `<>&` escaped, bytes as base64), or "" when Go cannot encode it (NaN, infinities)."""
    try:
        return _json(value)
    except _NotJson:
        return ""


def attribute_string(value: Any) -> str:
    """One attribute value as the text the ClickHouse Map holds."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (Sequence, Mapping)):
        return pdata_json(value)
    return str(value)


def attribute_map(attributes: Mapping[str, Any] | None) -> dict[str, str]:
    return {key: attribute_string(value) for key, value in (attributes or {}).items()}


def _hex_trace(trace_id: int) -> str:
    return format(trace_id, "032x") if trace_id else ""


def _hex_span(span_id: int) -> str:
    return format(span_id, "016x") if span_id else ""


def span_row(span: ReadableSpan) -> list[Any]:
    """The `otel_traces` row of `span`, in `COLUMNS` order."""
    context = span.context
    resource = span.resource.attributes if span.resource is not None else {}
    scope = span.instrumentation_scope
    start = span.start_time or 0
    end = span.end_time or start
    events = span.events or ()
    links = span.links or ()
    return [
        start,
        _hex_trace(context.trace_id) if context else "",
        _hex_span(context.span_id) if context else "",
        _hex_span(span.parent.span_id) if span.parent else "",
        context.trace_state.to_header() if context and context.trace_state else "",
        span.name,
        SPAN_KINDS.get(span.kind, "Unspecified"),
        attribute_string(resource.get(SERVICE_NAME, "")),
        attribute_map(resource),
        scope.name if scope else "",
        (scope.version or "") if scope else "",
        attribute_map(span.attributes),
        max(end - start, 0),
        STATUS_CODES.get(span.status.status_code, "Unset"),
        span.status.description or "",
        [event.timestamp for event in events],
        [event.name for event in events],
        [attribute_map(event.attributes) for event in events],
        [_hex_trace(link.context.trace_id) for link in links],
        [_hex_span(link.context.span_id) for link in links],
        [link.context.trace_state.to_header() if link.context.trace_state else "" for link in links],
        [attribute_map(link.attributes) for link in links],
    ]


def sanitised(row: list[Any]) -> list[Any]:
    """The row with every string made valid UTF-8 (lone surrogates replaced), for a second attempt."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.encode("utf-8", "replace").decode("utf-8")
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return [clean(value) for value in row]
