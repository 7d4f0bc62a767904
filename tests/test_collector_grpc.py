"""OTLP/gRPC receiver: the real SDK gRPC exporter as client (gzip or not, with a bearer token), a real
embedded store behind it, and the status codes the OTLP specification asks for.

Prices (USD per million tokens, bundled table): see test_collector_http.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult
from test_collector_http import GOOD, TOKEN, Shedding, genai_span, other_emitters_spans, spancost_span

from spancost.collector.config import ReceiverConfig
from spancost.collector.ingest import DirectPipeline, Overloaded, Unavailable
from spancost.collector.receivers import GrpcReceiver

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def pipeline(store: Any) -> DirectPipeline:
    return DirectPipeline(store.client, store.database)


@pytest.fixture
def serve(pipeline: DirectPipeline) -> Iterator[Callable[..., GrpcReceiver]]:
    started: list[GrpcReceiver] = []

    def start(pipeline: Any = pipeline, **settings: Any) -> GrpcReceiver:
        config = ReceiverConfig(host="127.0.0.1", http_port=None, grpc_port=0, **settings)
        assert config.validate() == []
        receiver = GrpcReceiver(config, pipeline)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop(1.0)


def exporter(receiver: GrpcReceiver, **kwargs: Any) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True, timeout=10, **kwargs)


def call(
    receiver: GrpcReceiver, body: bytes, *, metadata: tuple = (), compression: Any = None
) -> tuple[bytes, grpc.Call]:
    """A raw Export call with `body` as the message bytes."""
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        export = channel.unary_unary(EXPORT)  # no serializers: bytes in, bytes out
        return export.with_call(body, metadata=metadata, timeout=10, compression=compression)


def call_error(receiver: GrpcReceiver, body: bytes, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(receiver, body, **kwargs)
    return caught.value


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip], ids=["plain", "gzip"])
def test_spans_from_the_sdk_grpc_exporter_land_priced_in_the_store(
    serve: Callable, store: Any, compression: Any
) -> None:
    """The same spans and costs as over OTLP/HTTP: $0.00048, $0.001345, $0.00018, and $0.0123 kept."""
    receiver = serve()
    result = exporter(receiver, compression=compression).export([spancost_span(), *other_emitters_spans()])
    assert result is SpanExportResult.SUCCESS
    costs = store.query("SELECT CostUSD, CostStatus FROM llm_calls ORDER BY CostUSD").rows
    assert costs == [
        (Decimal("0.00018"), "priced"),
        (Decimal("0.00048"), "priced"),
        (Decimal("0.001345"), "priced"),
        (Decimal("0.0123"), "provider"),
    ]


def test_a_bearer_token_is_required_when_configured(serve: Callable, store: Any) -> None:
    receiver = serve(auth_token=TOKEN)
    for metadata in ((), (("authorization", "Bearer nope"),)):
        error = call_error(receiver, GOOD, metadata=metadata)
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert exporter(receiver).export([spancost_span()]) is SpanExportResult.FAILURE
    good = exporter(receiver, headers={"authorization": f"Bearer {TOKEN}"})
    assert good.export([spancost_span()]) is SpanExportResult.SUCCESS
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        pytest.param(b"\x0a\xff\xff\xff\x0f", grpc.StatusCode.INVALID_ARGUMENT, "truncated", id="malformed"),
        pytest.param(GOOD[: len(GOOD) // 2], grpc.StatusCode.INVALID_ARGUMENT, "truncated", id="truncated"),
        pytest.param(b"x" * 2_000_000, grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max", id="oversized"),
    ],
)
def test_bad_messages_get_a_clear_status_and_the_server_keeps_serving(
    serve: Callable, store: Any, body: bytes, code: grpc.StatusCode, message: str
) -> None:
    receiver = serve(max_body_bytes=1 << 20)
    error = call_error(receiver, body)
    assert error.code() is code
    assert message in error.details()
    response, _ = call(receiver, GOOD)
    assert response == b""
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1


def test_a_gzip_bomb_is_refused(serve: Callable, store: Any) -> None:
    """64 MiB of zeros compress to ~64 KiB; the limit applies to the decompressed message."""
    receiver = serve(max_body_bytes=1 << 20)
    bomb = bytes(64 << 20)
    assert len(gzip.compress(bomb)) < 100_000
    error = call_error(receiver, bomb, compression=grpc.Compression.Gzip)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert call(receiver, GOOD, compression=grpc.Compression.Gzip)[0] == b""


def test_spans_with_missing_ids_are_a_partial_success(serve: Callable, store: Any) -> None:
    request = ExportTraceServiceRequest.FromString(GOOD)
    request.resource_spans[0].scope_spans[0].spans.add(name="no ids")
    response, _ = call(serve(), request.SerializeToString())
    answer = ExportTraceServiceResponse.FromString(response)
    assert answer.partial_success.rejected_spans == 1
    assert "trace_id must be 16 bytes" in answer.partial_success.error_message
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1


def test_non_utf8_strings_are_stored_with_replacement_characters(serve: Callable, store: Any) -> None:
    body = encode_spans([genai_span(0x41, "tests", {"note": "MARKER"})]).SerializeToString()
    call(serve(), body.replace(b"MARKER", b"ok\xff\xfe!!"))
    assert store.query("SELECT SpanAttributes['note'] FROM otel_traces").single_value() == "ok\ufffd\ufffd!!"


@pytest.mark.parametrize(
    ("error", "code"),
    [(Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED), (Unavailable, grpc.StatusCode.UNAVAILABLE)],
)
def test_load_shedding_carries_retry_info_and_the_exporter_retries(
    serve: Callable, pipeline: DirectPipeline, store: Any, error: type[Exception], code: grpc.StatusCode
) -> None:
    shedding = Shedding(pipeline, refusals=1, error=error)
    receiver = serve(pipeline=shedding)
    refused = call_error(receiver, GOOD)
    assert refused.code() is code
    trailing = dict(refused.trailing_metadata())
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.ToNanoseconds() == 0
    assert error_details_pb2.RetryInfo.FromString(trailing["google.rpc.retryinfo-bin"]) == retry

    shedding.refusals = 3  # the exporter's attempt is refused twice, then stored
    assert exporter(receiver).export([spancost_span()]) is SpanExportResult.SUCCESS
    assert shedding.calls == 4
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1


def test_requests_over_the_concurrency_limit_are_refused(serve: Callable, pipeline: DirectPipeline) -> None:
    import threading

    entered, release = threading.Event(), threading.Event()

    class Slow(Shedding):
        def submit(self, rows: list[list[Any]], *, timeout: float) -> None:
            entered.set()
            release.wait(5)

    receiver = serve(pipeline=Slow(pipeline, 0, Overloaded), max_concurrent_requests=1)
    first = threading.Thread(target=call, args=(receiver, GOOD))
    first.start()
    try:
        assert entered.wait(5)
        assert call_error(receiver, GOOD).code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        release.set()
        first.join(10)
