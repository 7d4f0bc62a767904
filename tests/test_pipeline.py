"""How spancost joins an application's OpenTelemetry setup: the stage in front of existing and later
processors, a provider of its own from the OTEL_* variables, and no network I/O at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spancost.instrumentation.processor import SpancostSpanProcessor, install, installed_processor, uninstall

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 0,
}


def test_stage_goes_in_front_of_existing_and_later_processors() -> None:
    provider = TracerProvider()
    before, after = InMemorySpanExporter(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(before))
    tracer = provider.get_tracer("t")  # handed out before the stage exists: must still be priced

    stage = install(provider)
    assert install(provider) is stage, "installing twice keeps one stage"
    provider.add_span_processor(SimpleSpanProcessor(after))
    tracer.start_span("chat gpt-4o-mini", attributes=CHAT).end()

    for exporter in (before, after):
        (span,) = exporter.get_finished_spans()
        assert span.attributes["gen_ai.usage.cost.amount"] == 0.00015

    uninstall(provider)
    assert installed_processor(provider) is None
    tracer.start_span("chat gpt-4o-mini", attributes=CHAT).end()
    assert "gen_ai.usage.cost.amount" not in before.get_finished_spans()[-1].attributes
    assert len(after.get_finished_spans()) == 2, "processors added while installed stay after uninstall"


def test_stage_can_be_built_by_hand() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SpancostSpanProcessor(SimpleSpanProcessor(exporter)))
    provider.get_tracer("t").start_span("chat", attributes=CHAT).end()
    assert exporter.get_finished_spans()[0].attributes["spancost.cost.status"] == "priced"


def _priced_span(provider: TracerProvider, exporter: InMemorySpanExporter) -> tuple[Any, ReadableSpan]:
    """A chat span made and ended, and what the exporter got for it (checked to be priced)."""
    span = provider.get_tracer("t").start_span("chat gpt-4o-mini", attributes=CHAT)
    span.end()
    (exported,) = exporter.get_finished_spans()
    assert exported.attributes["gen_ai.usage.cost.amount"] == 0.00015
    assert exported.attributes["spancost.cost.status"] == "priced"
    return span, exported


def test_installed_stage_prices_the_finished_span_itself_without_a_copy() -> None:
    """In front of every processor, the stage adds the cost to the span the SDK finished (no other
    processor has seen it): the exporter gets that very span, its limits' counts intact."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install(provider)
    span, exported = _priced_span(provider, exporter)
    assert type(exported) is ReadableSpan, "the SDK's own finished span, not a copy"
    assert span.attributes["spancost.price.key"] == "openai/gpt-4o-mini"
    assert exported.dropped_attributes == 0


def test_stage_behind_another_processor_copies_instead() -> None:
    """Built by hand and added after a processor that has already received the span (and may be
    exporting it on another thread), the stage must not touch that span: it forwards a priced copy."""
    first, behind = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(first))
    provider.add_span_processor(SpancostSpanProcessor(SimpleSpanProcessor(behind)))
    _priced_span(provider, behind)
    (seen_first,) = first.get_finished_spans()
    assert "gen_ai.usage.cost.amount" not in seen_first.attributes, "the other processor's span is left alone"


def test_content_is_removed_from_a_copy_never_from_the_finished_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another emitter's prompt text is left out of what the stage forwards; the span the other
    processor already holds keeps what it had (the stage never edits a span it does not own)."""
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    first, behind = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(first))
    provider.add_span_processor(SpancostSpanProcessor(SimpleSpanProcessor(behind)))
    with_text = {**CHAT, "gen_ai.prompt.0.content": "a secret prompt"}
    provider.get_tracer("other.instrumentation").start_span("chat gpt-4o-mini", attributes=with_text).end()
    (forwarded,) = behind.get_finished_spans()
    assert "gen_ai.prompt.0.content" not in forwarded.attributes
    assert forwarded.attributes["gen_ai.usage.cost.amount"] == 0.00015
    (seen_first,) = first.get_finished_spans()
    assert seen_first.attributes["gen_ai.prompt.0.content"] == "a secret prompt"


@pytest.mark.parametrize(
    ("limits", "why"),
    [
        (SpanLimits(max_span_attributes=len(CHAT) + 2), "the attribute limit would drop the cost"),
        (SpanLimits(max_attribute_length=15), "the value length limit would cut the price key"),
    ],
)
def test_limits_that_would_drop_or_cut_a_cost_attribute_make_a_copy(limits: SpanLimits, why: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install(provider)
    _, exported = _priced_span(provider, exporter)
    assert type(exported) is not ReadableSpan, why
    assert exported.attributes["spancost.price.key"] == "openai/gpt-4o-mini"


class _Collector(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        self.bodies.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def otlp_endpoint() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    _Collector.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Collector.bodies
    server.shutdown()


APP = textwrap.dedent("""
    import socket
    connects = []
    real_connect = socket.socket.connect
    def spy(self, address):
        connects.append(address)
        return real_connect(self, address)
    socket.socket.connect = spy

    import spancost
    spancost.instrument()
    assert connects == [], f"network I/O at start-up: {connects}"

    import httpx2, openai
    def handler(request):
        return httpx2.Response(200, json={
            "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 0, "total_tokens": 1000}})
    client = openai.OpenAI(api_key="k", http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    with spancost.tags(prompt="otlp-check"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    from opentelemetry import trace
    trace.get_tracer_provider().force_flush()
    print("connects after the call:", len(connects))
""")


def test_instrument_creates_a_provider_from_otel_variables_and_exports_otlp(otlp_endpoint) -> None:
    endpoint, bodies = otlp_endpoint
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "otlp-app",
        "OTEL_RESOURCE_ATTRIBUTES": "service.version=3.1.0,deployment.environment=test",
    }
    done = subprocess.run([sys.executable, "-c", APP], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "connects after the call: 1" in done.stdout  # the span exporter's connection, made only on flush

    request = ExportTraceServiceRequest()
    request.ParseFromString(b"".join(body for path, body in bodies if path == "/v1/traces"))
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert (resource["service.name"], resource["service.version"]) == ("otlp-app", "3.1.0")
    (span,) = [s for scope in resource_spans.scope_spans for s in scope.spans]
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["gen_ai.usage.cost.amount"].double_value == 0.00015
    assert attributes["spancost.prompt.name"].string_value == "otlp-check"

    exported = ExportMetricsServiceRequest()
    exported.ParseFromString(b"".join(body for path, body in bodies if path == "/v1/metrics"))
    names = {m.name for rm in exported.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert names >= {"gen_ai.client.token.usage", "gen_ai.client.operation.duration", "spancost.client.cost"}


def test_unknown_provider_name_is_refused() -> None:
    import spancost

    with pytest.raises(
        ValueError, match="unknown provider\\(s\\) cohere; spancost instruments openai, anthropic"
    ):
        spancost.instrument(providers=["openai", "cohere"])
