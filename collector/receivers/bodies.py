"""OTLP/HTTP bodies: content types, `Content-Encoding: gzip`, OTLP/JSON, and the encoded answers.

Everything becomes the protobuf request `spancost.collector.otlp` converts. gzip is undone with the
size limit applied to the output, so a small compressed body cannot expand past it (a zip bomb is a
413, not an out-of-memory). JSON follows the OTLP/JSON rules (lowerCamelCase keys, hex trace and span
ids, enums as ints, int64 as strings, unknown fields ignored): the ids are turned into bytes, protobuf's
JSON parser reads the rest, and the result is parsed again as the loose protobuf request, so JSON and
protobuf bodies end in the same rows.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from spancost.collector.otlp import DecodeError, LooseRequest, parse_protobuf

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}
"""Media types a request may declare → the encoding it is read (and answered) with."""


class TooLarge(ValueError):
    """The body, or what it decompresses to, is over the size limit (a 413)."""


class UnsupportedEncoding(ValueError):
    """A `Content-Encoding` other than gzip or identity (a 415)."""


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body without its content encoding; the decompressed size is held to `limit` too."""
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    out = bytearray()
    data = body
    while True:  # a gzip body may be several members back to back
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as err:
            raise DecodeError(f"the gzip body cannot be decompressed: {err}") from None
        if len(out) > limit:
            raise TooLarge(f"the body decompresses to more than the {limit}-byte limit")
        if not inflater.eof:
            raise DecodeError("the gzip body is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)


# Fields holding ids, in both spellings the protobuf JSON parser accepts; OTLP/JSON writes them as hex.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def parse_json(body: bytes) -> Any:
    """A `LooseRequest` from an OTLP/JSON body."""
    # Invalid UTF-8 becomes U+FFFD rather than failing the request: the spans are still worth storing.
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise DecodeError(f"the body is not valid JSON: {err}") from None
    except RecursionError:
        raise DecodeError("the body is not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise DecodeError("the JSON body must be an object (an ExportTraceServiceRequest)")
    for path, holder in _id_holders(document):
        _hex_to_base64(holder, path)
    if _SURROGATE_ESCAPE.search(text):  # "\ud800" escapes decode to lone surrogates, which are not UTF-8
        document = _without_surrogates(document)
    try:
        request = json_format.ParseDict(
            document, trace_service_pb2.ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as err:
        raise DecodeError(f"the JSON body is not an OTLP ExportTraceServiceRequest: {err}") from None
    return LooseRequest.FromString(request.SerializeToString())


def _items(holder: dict[str, Any], *names: str) -> list[tuple[int, Any]]:
    for name in names:
        value = holder.get(name)
        if isinstance(value, list):
            return list(enumerate(value))
    return []  # absent or of the wrong type: the protobuf parser reports the latter


def _id_holders(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every span and link object of the document, with its path for error messages."""
    found = []
    for r, resource in _items(document, "resourceSpans", "resource_spans"):
        if not isinstance(resource, dict):
            continue
        for s, scope in _items(resource, "scopeSpans", "scope_spans"):
            if not isinstance(scope, dict):
                continue
            for i, span in _items(scope, "spans"):
                if not isinstance(span, dict):
                    continue
                path = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                found.append((path, span))
                for k, link in _items(span, "links"):
                    if isinstance(link, dict):
                        found.append((f"{path}.links[{k}]", link))
    return found


def _hex_to_base64(holder: dict[str, Any], path: str) -> None:
    for name in _ID_FIELDS:
        value = holder.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise DecodeError(f"{path}.{name}: expected a hex string, got {type(value).__name__}")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise DecodeError(f"{path}.{name}: {value[:64]!r} is not a hex id") from None
        holder[name] = base64.b64encode(raw).decode("ascii")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


def decode(body: bytes, content_type: str) -> Any:
    """A `LooseRequest` from a decompressed body of the given media type (`PROTOBUF` or `JSON`)."""
    return parse_json(body) if content_type == JSON else parse_protobuf(body)


# --- responses --------------------------------------------------------------------------------------


def export_response(rejected: int, message: str) -> trace_service_pb2.ExportTraceServiceResponse:
    """The answer to an export: empty on full success, `partial_success` when spans were rejected."""
    response = trace_service_pb2.ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return response


def encode(message: Message, content_type: str) -> bytes:
    """A response message in the request's encoding."""
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode("utf-8")
    return message.SerializeToString()
