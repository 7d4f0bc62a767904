"""OTLP/HTTP receiver: the real SDK exporter as client, a real embedded store behind it, the answers the
OTLP specification asks for, and a server that keeps serving after every bad request.

Prices (USD per million tokens, bundled table): gpt-4o-mini 0.15 in / 0.075 cached / 0.60 out;
claude-haiku-4-5 1 in / 0.10 cache read / 1.25 cache write / 5 out; gpt-4.1 2 in / 8 out.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from spancost.collector.config import ReceiverConfig
from spancost.collector.ingest import DirectPipeline, Overloaded, Unavailable
from spancost.collector.receivers import HttpReceiver
from spancost.instrumentation.processor import SpancostSpanProcessor

T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z in ns
RESOURCE = Resource.create({"service.name": "support-bot", "service.version": "2.0.0"})
TOKEN = "s3cret-token"


def genai_span(span_id: int, scope: str, attributes: dict[str, Any], events: tuple = ()) -> ReadableSpan:
    return ReadableSpan(
        name=f"chat {attributes.get('gen_ai.request.model')}",
        context=SpanContext(0x5B8EFFF798038103D269B633813FC60C, span_id, False, TraceFlags(1)),
        resource=RESOURCE,
        attributes=attributes,
        events=events,
        kind=SpanKind.CLIENT,
        start_time=T0 + span_id,
        end_time=T0 + span_id + 900_000_000,
        instrumentation_scope=InstrumentationScope(scope, "1.0.0"),
    )


def spancost_span() -> ReadableSpan:
    """A call as spancost's own stage prices it in the app: gpt-4o-mini, 2000 in, 300 out."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SpancostSpanProcessor(SimpleSpanProcessor(memory)))
    tracer = provider.get_tracer("spancost.instrumentation.openai")
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 2000,
        "gen_ai.usage.output_tokens": 300,
    }
    tracer.start_span("chat gpt-4o-mini", attributes=attributes, start_time=T0).end(end_time=T0 + 10**9)
    return memory.get_finished_spans()[0]


def other_emitters_spans() -> list[ReadableSpan]:
    return [
        # OpenLLMetry 0.62 (semantic-conventions-ai 0.5): standard usage names, no cost, content on.
        genai_span(
            0x11,
            "opentelemetry.instrumentation.anthropic",
            {
                "gen_ai.provider.name": "anthropic",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "claude-haiku-4-5",
                "gen_ai.response.model": "claude-haiku-4-5-20251001",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
                "gen_ai.usage.cache_read.input_tokens": 200,
                "gen_ai.usage.cache_creation.input_tokens": 100,
                "gen_ai.usage.total_tokens": 1100,
                "gen_ai.prompt.0.content": "secret prompt",
            },
        ),
        # OpenLLMetry before semantic-conventions-ai 0.5: LLM_* names.
        genai_span(
            0x12,
            "opentelemetry.instrumentation.openai.v1",
            {
                "gen_ai.system": "openai",
                "llm.request.type": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.prompt_tokens": 1000,
                "gen_ai.usage.completion_tokens": 100,
                "gen_ai.usage.cache_read_input_tokens": 400,
                "llm.usage.total_tokens": 1100,
            },
        ),
        # OpenLIT: its own cost, content as an event.
        genai_span(
            0x13,
            "openlit.otel.tracing",
            {
                "gen_ai.system": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4.1",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
                "gen_ai.usage.cost": 0.0123,
            },
            events=(Event("gen_ai.content.prompt", {"gen_ai.prompt": "secret prompt"}, timestamp=T0),),
        ),
    ]


@pytest.fixture
def pipeline(store: Any) -> DirectPipeline:
    return DirectPipeline(store.client, store.database)


@pytest.fixture
def serve(pipeline: DirectPipeline) -> Iterator[Callable[..., HttpReceiver]]:
    """Start an OTLP/HTTP receiver on an ephemeral port: `serve(pipeline=..., **config)`."""
    started: list[HttpReceiver] = []

    def start(pipeline: Any = pipeline, **settings: Any) -> HttpReceiver:
        config = ReceiverConfig(host="127.0.0.1", http_port=0, grpc_port=None, **settings)
        assert config.validate() == []
        receiver = HttpReceiver(config, pipeline)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop(1.0)


def url(receiver: HttpReceiver, path: str = "/v1/traces") -> str:
    return f"http://127.0.0.1:{receiver.port}{path}"


def exporter(receiver: HttpReceiver, **kwargs: Any) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=url(receiver), timeout=10, **kwargs)


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"])
def test_spans_from_the_sdk_exporter_land_priced_in_the_store(
    serve: Callable, store: Any, compression
) -> None:
    """OpenLLMetry claude-haiku-4-5: 1000 input of which 200 cache read and 100 cache write, 100 output:
    700 × 1 + 200 × 0.1 + 100 × 1.25 + 100 × 5 per M = 0.0007 + 0.00002 + 0.000125 + 0.0005 = $0.001345.
    Old OpenLLMetry gpt-4o-mini: 600 × 0.15 + 400 × 0.075 + 100 × 0.6 per M = $0.00018.
    OpenLIT gpt-4.1 came with $0.0123: kept (provider). spancost gpt-4o-mini, priced in the app:
    2000 × 0.15 + 300 × 0.6 per M = $0.00048."""
    receiver = serve()
    spans = [spancost_span(), *other_emitters_spans()]
    assert exporter(receiver, compression=compression).export(spans) is SpanExportResult.SUCCESS

    calls = store.query(
        "SELECT SpanId, Provider, Model, Operation, InputTokens, OutputTokens, CacheReadTokens, CostUSD,"
        " CostStatus, CostSource, ServiceName, ServiceVersion FROM llm_calls ORDER BY SpanId"
    ).dicts()
    by_model = {call["Model"]: call for call in calls}
    assert len(calls) == 4
    assert by_model["claude-haiku-4-5-20251001"]["CostUSD"] == Decimal("0.001345")
    assert by_model["claude-haiku-4-5-20251001"]["CostSource"] == "local"
    assert by_model["gpt-4.1"]["CostUSD"] == Decimal("0.0123")
    assert by_model["gpt-4.1"]["CostStatus"] == "provider"
    old = next(c for c in calls if c["SpanId"] == f"{0x12:016x}")
    assert (old["Operation"], old["Provider"], old["InputTokens"], old["OutputTokens"]) == (
        "chat",
        "openai",
        1000,
        100,
    )
    assert (old["CacheReadTokens"], old["CostUSD"], old["CostStatus"]) == (400, Decimal("0.00018"), "priced")
    own = next(c for c in calls if c["SpanId"] not in {f"{i:016x}" for i in (0x11, 0x12, 0x13)})
    assert (own["Model"], own["CostUSD"], own["CostSource"]) == ("gpt-4o-mini", Decimal("0.00048"), "local")
    assert {(c["ServiceName"], c["ServiceVersion"]) for c in calls} == {("support-bot", "2.0.0")}

    traces = store.query("SELECT SpanAttributes, Events.Name FROM otel_traces").rows
    assert len(traces) == 4
    assert not any("secret" in json.dumps(row) for row in traces), "other emitters' content removed"


def test_a_hand_written_json_body_is_accepted(serve: Callable, store: Any) -> None:
    receiver = serve()
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "go-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "otelgenai"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "name": "chat gpt-4o-mini",
                                "kind": 3,
                                "startTimeUnixNano": str(T0),
                                "endTimeUnixNano": str(T0 + 10**9),
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 100}},
                                ],
                                "unknownFieldFromANewerSdk": [1, 2, 3],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = httpx2.post(
        url(receiver), content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    row = store.query("SELECT ServiceName, CostUSD, SpanId FROM llm_calls").first()
    assert row == ("go-svc", Decimal("0.00021"), "eee19b7ec3c1b174")  # 1000 × 0.15 + 100 × 0.6 per M


def _post(receiver: HttpReceiver, body: bytes, **headers: str) -> httpx2.Response:
    headers = {"content-type": "application/x-protobuf", **headers}
    return httpx2.post(url(receiver), content=body, headers=headers, timeout=30)


def _status(response: httpx2.Response) -> status_pb2.Status:
    if response.headers["content-type"] == "application/json":
        return status_pb2.Status(**response.json())
    return status_pb2.Status.FromString(response.content)


GOOD = encode_spans([genai_span(0x21, "tests", {"gen_ai.request.model": "x"})]).SerializeToString()
BOMB = gzip.compress(bytes(64 << 20))  # 64 MiB of zeros in ~64 KiB


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        pytest.param(b"\x0a\xff\xff\xff\x0f", {}, 400, "truncated or malformed", id="malformed-protobuf"),
        pytest.param(GOOD[: len(GOOD) // 2], {}, 400, "truncated", id="truncated-body"),
        pytest.param(
            b'{"resourceSpans": [', {"content-type": "application/json"}, 400, "not valid JSON", id="bad-json"
        ),
        pytest.param(GOOD, {"content-type": "text/plain"}, 415, "'text/plain'", id="wrong-content-type"),
        pytest.param(GOOD, {"content-encoding": "br"}, 415, "'br'", id="unsupported-encoding"),
        pytest.param(b"x" * 2_000_000, {}, 413, "over the 1048576-byte limit", id="oversized-body"),
        pytest.param(BOMB, {"content-encoding": "gzip"}, 413, "decompresses to more than", id="gzip-bomb"),
        pytest.param(
            gzip.compress(GOOD)[:-20], {"content-encoding": "gzip"}, 400, "truncated", id="cut-gzip"
        ),
    ],
)
def test_bad_requests_get_a_clear_answer_and_the_server_keeps_serving(
    serve: Callable, store: Any, body: bytes, headers: dict, status: int, message: str
) -> None:
    receiver = serve(max_body_bytes=1 << 20)
    response = _post(receiver, body, **headers)
    assert response.status_code == status
    assert message in _status(response).message
    again = _post(receiver, GOOD)
    assert again.status_code == 200
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1


def test_spans_with_missing_ids_are_a_partial_success(serve: Callable, store: Any) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest.FromString(GOOD)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans.add(name="no ids", start_time_unix_nano=T0)
    spans.add(name="zero span id", trace_id=b"\x01" * 16, span_id=bytes(8), start_time_unix_nano=T0)
    response = _post(serve(), request.SerializeToString())
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    assert "spans[1]: trace_id must be 16 bytes" in answer.partial_success.error_message
    assert store.query("SELECT SpanName FROM otel_traces").rows == [("chat x",)]


def test_non_utf8_and_oversized_values_are_stored_safely(serve: Callable, store: Any) -> None:
    span = genai_span(0x31, "tests", {"note": "MARKER", "prompt": "p" * 5000})
    body = encode_spans([span]).SerializeToString().replace(b"MARKER", b"ok\xff\xfe!!")
    response = _post(serve(max_attribute_bytes=1024), body)
    assert response.status_code == 200
    note, prompt, cut = store.query(
        "SELECT SpanAttributes['note'], SpanAttributes['prompt'], SpanAttributes['spancost.truncated']"
        " FROM otel_traces"
    ).first()
    assert note == "ok\ufffd\ufffd!!"
    assert prompt == "p" * 1024
    assert json.loads(cut) == ["prompt"]


def test_a_bearer_token_is_required_when_configured(serve: Callable, store: Any) -> None:
    receiver = serve(auth_token=TOKEN)
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"}):
        response = _post(receiver, GOOD, **headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert exporter(receiver).export([spancost_span()]) is SpanExportResult.FAILURE
    good = exporter(receiver, headers={"authorization": f"Bearer {TOKEN}"})
    assert good.export([spancost_span()]) is SpanExportResult.SUCCESS
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1


def test_other_paths_and_methods(serve: Callable) -> None:
    receiver = serve()
    assert httpx2.get(url(receiver)).status_code == 405
    assert httpx2.get(url(receiver)).headers["allow"] == "POST"
    assert httpx2.post(url(receiver, "/v1/metrics"), content=b"").status_code == 404
    assert httpx2.post(url(receiver, "/health")).status_code == 405


def test_health_and_metrics(serve: Callable, pipeline: DirectPipeline) -> None:
    receiver = serve()
    assert _post(receiver, GOOD).status_code == 200
    assert _post(receiver, b"junk").status_code == 400
    health = httpx2.get(url(receiver, "/health"))
    assert (health.status_code, health.json()) == (200, {"status": "ok", "pipeline": True})
    metrics = httpx2.get(url(receiver, "/metrics"))
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(metrics.text.splitlines())
    assert 'spancost_receiver_requests_total{protocol="http",code="200"} 1' in lines
    assert 'spancost_receiver_requests_total{protocol="http",code="400"} 1' in lines
    assert 'spancost_receiver_spans_received_total{protocol="http"} 1' in lines
    assert "spancost_pipeline_stored_total 1" in lines
    assert "# TYPE spancost_pipeline_stored_total counter" in lines
    assert "spancost_pipeline_queue_depth 0" in lines
    assert "# TYPE spancost_pipeline_queue_depth gauge" in lines
    assert "spancost_up 1" in lines
    pipeline._healthy = False
    assert httpx2.get(url(receiver, "/health")).status_code == 503


class Shedding:
    """A pipeline that refuses the first `refusals` submissions, then stores them through `inner`."""

    def __init__(self, inner: DirectPipeline, refusals: int, error: type[Exception]) -> None:
        self.inner, self.refusals, self.error = inner, refusals, error
        self.calls = 0
        self._lock = threading.Lock()

    def submit(self, rows: list[list[Any]], *, timeout: float) -> None:
        with self._lock:
            self.calls += 1
            refuse = self.calls <= self.refusals
        if refuse:
            raise self.error("shedding load", 0.0)
        self.inner.submit(rows, timeout=timeout)

    async def submit_async(self, rows: list[list[Any]], *, timeout: float) -> None:
        self.submit(rows, timeout=timeout)

    def stats(self) -> dict[str, int]:
        return dict(self.inner.stats())

    def healthy(self) -> bool:
        return True

    def has_room(self) -> bool:
        return True


@pytest.mark.parametrize(("error", "status"), [(Overloaded, 429), (Unavailable, 503)])
def test_load_shedding_answers_retry_after_and_the_exporter_retries(
    serve: Callable, pipeline: DirectPipeline, store: Any, error: type[Exception], status: int
) -> None:
    shedding = Shedding(pipeline, refusals=1, error=error)
    receiver = serve(pipeline=shedding)
    response = _post(receiver, GOOD)
    assert response.status_code == status
    assert response.headers["retry-after"] == "0"
    assert "shedding load" in _status(response).message

    shedding.refusals = 3  # the exporter's own attempt is refused twice, then stored
    assert exporter(receiver).export([spancost_span()]) is SpanExportResult.SUCCESS
    assert shedding.calls == 4
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1


def test_a_store_that_is_down_is_unavailable(serve: Callable, store: Any) -> None:
    class DownClient:
        def insert(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionRefusedError("connection refused")

    receiver = serve(pipeline=DirectPipeline(DownClient(), store.database, retry_after_s=7))
    response = _post(receiver, GOOD)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert "the store did not take the spans" in _status(response).message
    assert httpx2.get(url(receiver, "/health")).status_code == 503


def test_stop_lets_a_request_in_flight_finish(serve: Callable, pipeline: DirectPipeline, store: Any) -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow(Shedding):
        def submit(self, rows: list[list[Any]], *, timeout: float) -> None:
            entered.set()
            release.wait(5)
            self.inner.submit(rows, timeout=timeout)

    receiver = HttpReceiver(ReceiverConfig(http_port=0, grpc_port=None), Slow(pipeline, 0, Overloaded))
    receiver.start()
    answers: list[int] = []
    client = threading.Thread(target=lambda: answers.append(_post(receiver, GOOD).status_code))
    client.start()
    assert entered.wait(5)
    stopping = threading.Thread(target=receiver.stop, args=(5.0,))
    stopping.start()
    release.set()
    client.join(10)
    stopping.join(10)
    assert answers == [200]
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1
    with pytest.raises(httpx2.ConnectError):
        httpx2.post(url(receiver), content=GOOD, timeout=2)
