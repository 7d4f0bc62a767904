"""Set up the in-process pipeline: a tracer provider with the spancost stage in front of its exporters."""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from spancost.instrumentation.processor import SpancostSpanProcessor, install

logger = logging.getLogger("spancost.instrumentation")

_ready = False


def ensure_pipeline(tracer_provider: Any = None) -> SpancostSpanProcessor | None:
    """Install the spancost stage in `tracer_provider` (default: the global one) if it is not there.

    When no SDK tracer provider is configured yet (the global one is still the API's proxy), nothing
    is installed; the patches call this again on each call until one is, which costs one check.
    """
    global _ready
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        return None
    stage = install(provider)
    if stage is not None:
        _ready = True
    return stage


def pipeline_ready() -> None:
    """Called by the patches on every call: a no-op once a provider has the stage."""
    if not _ready:
        ensure_pipeline()


def reset_pipeline_state() -> None:
    global _ready
    _ready = False


def _otlp_protocol(signal: str) -> str | None:
    """The OTLP protocol for `signal` (TRACES, METRICS) when the OTEL_* variables name an endpoint for
    it, else None: OTEL_EXPORTER_OTLP_{signal}_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, then
    http/protobuf, the specification's default."""
    if not (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        return None
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )


def otlp_exporter_from_env() -> SpanExporter | None:
    """An OTLP span exporter when the standard OTEL_* variables name an endpoint, else None.

    Endpoint and headers are read by the exporter itself. Creating it opens no connection.
    """
    protocol = _otlp_protocol("TRACES")
    if protocol is None:
        return None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def otlp_meter_provider_from_env() -> MeterProvider | None:
    """A meter provider exporting over OTLP when the OTEL_* variables name an endpoint (and metrics are
    not turned off with OTEL_METRICS_EXPORTER=none), else None. Its reader exports on an interval; it
    opens no connection now."""
    protocol = _otlp_protocol("METRICS")
    if protocol is None or os.environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "none":
        return None
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
    return SdkMeterProvider(
        resource=Resource.create(), metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]
    )


def new_tracer_provider() -> TracerProvider:
    """A tracer provider whose resource comes from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES."""
    return TracerProvider(resource=Resource.create())


def add_exporter(provider: Any, exporter: SpanExporter) -> None:
    provider.add_span_processor(BatchSpanProcessor(exporter))
