"""spancost instrumentation: priced, tagged spans for every model call.

`spancost.instrument()` is the one call an application makes at start-up; under
`opentelemetry-instrument` the `spancost_openai` and `spancost_anthropic` entry points do the same.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from spancost.instrumentation.agents import agent, record_eval, tool, workflow
from spancost.instrumentation.pipeline import (
    add_exporter,
    new_tracer_provider,
    otlp_exporter_from_env,
    otlp_meter_provider_from_env,
    reset_pipeline_state,
)
from spancost.instrumentation.processor import SpancostSpanProcessor, install, uninstall
from spancost.instrumentation.tags import current_tags, run, tags

logger = logging.getLogger("spancost.instrumentation")

PROVIDERS = ("openai", "anthropic")

__all__ = [
    "PROVIDERS",
    "SpancostSpanProcessor",
    "agent",
    "current_tags",
    "instrument",
    "record_eval",
    "run",
    "tags",
    "tool",
    "uninstrument",
    "workflow",
]

_instrumented: dict[str, Any] = {}
_providers: list[Any] = []


def _instrumentor(name: str) -> Any:
    if name == "openai":
        from spancost.instrumentation.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()
    from spancost.instrumentation.anthropic import AnthropicInstrumentor

    return AnthropicInstrumentor()


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    exporter: SpanExporter | None = None,
    store: str | None = None,
    prices: str | Path | None = None,
    providers: Iterable[str] = PROVIDERS,
    meter_provider: MeterProvider | None = None,
) -> TracerProvider | None:
    """Record a priced, tagged span for every model call this process makes.

    - `tracer_provider`: where spans go; default the global one. When no SDK provider is set up
      yet, one is created (resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES) and made
      global, exporting over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    - `exporter`: an extra span exporter (batched), e.g. to a test or a vendor.
    - `store`: a ClickHouse DSN (`chdb:///path` or `http://host:8123`) to write spans to directly,
      without a collector (needs the `collector` extra).
    - `prices`: a price file that overrides or extends the bundled table; a bad file raises here.
    - `providers`: which SDKs to instrument (those not installed are skipped quietly).
    - `meter_provider`: where the GenAI client metrics and the cost counter go; default the global
      one (set up from OTLP variables too when spancost creates the tracer provider).

    Returns the tracer provider in use (None if it is not the SDK's, which cannot be priced in process).
    Opens no network connection.
    """
    providers = tuple(providers)
    unknown = sorted(set(providers) - set(PROVIDERS))
    if unknown:
        raise ValueError(
            f"unknown provider(s) {', '.join(unknown)}; spancost instruments {', '.join(PROVIDERS)}"
        )
    if prices is not None:
        from spancost.pricing.table import build_table, set_default_table

        set_default_table(build_table([Path(prices)]))
    provider: Any = tracer_provider or trace.get_tracer_provider()
    created = False
    if tracer_provider is None and isinstance(provider, trace.ProxyTracerProvider):
        provider = new_tracer_provider()
        trace.set_tracer_provider(provider)
        provider = trace.get_tracer_provider()
        created = True
        if meter_provider is None and (otlp_meters := otlp_meter_provider_from_env()) is not None:
            otel_metrics.set_meter_provider(otlp_meters)
    for target in (provider, trace.get_tracer_provider()):
        # The global provider too: the anthropic SDK sends its own spans there, whatever `provider` is.
        if isinstance(target, trace.ProxyTracerProvider) or target in _providers:
            continue
        if install(target, meter_provider) is not None:
            _providers.append(target)
    if store is not None:
        from spancost.collector.exporter import ClickHouseSpanExporter

        add_exporter(provider, ClickHouseSpanExporter(store))
    if exporter is not None:
        add_exporter(provider, exporter)
    if created and store is None and exporter is None:
        otlp = otlp_exporter_from_env()
        if otlp is not None:
            add_exporter(provider, otlp)
        else:
            logger.warning(
                "spancost: no exporter configured (set OTEL_EXPORTER_OTLP_ENDPOINT, or pass store= "
                "or exporter= to spancost.instrument()); spans are priced but not sent anywhere"
            )
    providers = tuple(providers)
    unknown = sorted(set(providers) - set(PROVIDERS))
    if unknown:
        raise ValueError(
            f"unknown provider(s) {', '.join(unknown)}; spancost instruments {', '.join(PROVIDERS)}"
        )
    for name in providers:
        if importlib.util.find_spec(name) is None:
            logger.debug("spancost: %s is not installed; not instrumented", name)
            continue
        instrumentor = _instrumentor(name)
        instrumentor.instrument(tracer_provider=provider)
        if instrumentor.is_instrumented_by_opentelemetry:
            _instrumented[name] = instrumentor
    return provider if isinstance(provider, TracerProvider) else None


def uninstrument() -> None:
    """Undo `instrument()`: the SDKs are restored and the stage leaves the tracer provider."""
    for name in list(_instrumented):
        _instrumented.pop(name).uninstrument()
    while _providers:
        uninstall(_providers.pop())
    reset_pipeline_state()
