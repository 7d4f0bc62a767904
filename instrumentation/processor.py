"""The in-process stage: tags on start, cost on end, then the export processors.

An OpenTelemetry Python span is read-only once it ends, so the pricing stage cannot add attributes
to it through the API; `SpancostSpanProcessor` sits in front of the export processors and forwards
the span with its cost. `install` puts it in front of whatever processors a tracer provider already
has, and in front of those added later, without replacing the provider (tracers already handed out
keep working). Installed so, it is the first to see every finished span and adds the cost to the
span itself (`_enrich_in_place`); built by hand behind other processors, or where a span limit would
drop or cut a value, it forwards an enriched copy instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from spancost import attributes as attr
from spancost._log import log_once
from spancost.content import has_content, without_content
from spancost.costing import cost_attributes, span_usage
from spancost.instrumentation import _inference
from spancost.instrumentation._inference import READING_TAGS, capture_content, guarded
from spancost.instrumentation.call_metrics import CallMetrics
from spancost.instrumentation.tags import current_hints
from spancost.instrumentation.tracking import EndedCalls, OpenCalls, Rollups
from spancost.pricing.table import PriceTable

logger = logging.getLogger("spancost.instrumentation")

_OWN_SCOPE = "spancost."


class _EnrichedSpan(ReadableSpan):
    """A copy of a finished span with other attributes; keeps the original's dropped counts."""

    def __init__(self, span: ReadableSpan, attributes: Mapping[str, Any], events: Any = None) -> None:
        super().__init__(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=span.events if events is None else events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )
        self._original = span

    @property
    def dropped_attributes(self) -> int:
        return self._original.dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._original.dropped_events

    @property
    def dropped_links(self) -> int:
        return self._original.dropped_links


class SpancostSpanProcessor(SpanProcessor):
    """The in-process stage, in front of the export processors (`downstream`).

    On start: the context's tags (and call hints) go on the span; an agent or workflow span opens
    a roll-up; a model-call span started inside another one for the same call is marked a duplicate.
    On end: a model-call span is priced (unless it is a duplicate or already carries a cost), its
    cost, tokens and call count are added to its open agent/workflow ancestors, its metrics are
    recorded; an agent or workflow span gets its roll-up. The enriched copy goes downstream.

    Use it directly when building a pipeline by hand::

        provider.add_span_processor(SpancostSpanProcessor(BatchSpanProcessor(exporter)))

    or let `spancost.instrument()` put it in front of the provider's processors.
    """

    def __init__(
        self,
        *downstream: SpanProcessor,
        table: PriceTable | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._downstream: tuple[SpanProcessor, ...] = downstream
        self._table = table
        self._lock = threading.Lock()
        self._rollups = Rollups()
        self._open_calls = OpenCalls()
        self._ended_calls = EndedCalls()
        self._metrics = CallMetrics(meter_provider)
        # Whether finished spans may be enriched in place (`_enrich_in_place`): only once `install`
        # has made this stage the provider's only top-level processor, so that no other has seen them.
        self._in_place = False

    @property
    def downstream(self) -> tuple[SpanProcessor, ...]:
        return self._downstream

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Add an export processor behind the pricing stage."""
        with self._lock:
            self._downstream += (processor,)

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        try:
            self._started(span, parent_context)
        except Exception:
            log_once(logger, "processor.on_start", "spancost: could not tag a span", exc_info=True)
        for processor in self._downstream:
            processor.on_start(span, parent_context=parent_context)

    def _started(self, span: Span, parent_context: otel_context.Context | None) -> None:
        operation = span.attributes.get(attr.GEN_AI_OPERATION_NAME)
        inference = operation in attr.INFERENCE_OPERATIONS
        # spancost's own spans start with the context's tags among their attributes already.
        if not span.instrumentation_scope.name.startswith(_OWN_SCOPE):
            tags = guarded(READING_TAGS, _inference.span_tags, parent_context)
            hints = current_hints(parent_context) if inference else None
            if hints:
                tags = {**hints, **tags}  # an explicit tag (prompt_version) wins over a hint
            if tags and not _enrich_in_place(span, tags):
                span.set_attributes(tags)
        context, parent = span.context, span.parent
        parent_id = parent.span_id if parent is not None and not parent.is_remote else None
        self._rollups.started(
            context.span_id, parent_id, context.trace_id, operation in attr.ROLLUP_OPERATIONS
        )
        if inference:
            if parent_id is not None and parent_id in self._open_calls:
                span.set_attribute(attr.DUPLICATE_OF, format(parent_id, "016x"))
            else:
                self._open_calls.add(context.span_id)

    def _on_ending(self, span: Span) -> None:
        for processor in self._downstream:
            processor._on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        forwarded = span
        try:
            forwarded = self._ended(span)
        except Exception:
            log_once(
                logger,
                "processor.on_end",
                "spancost: could not price a span; it is exported unpriced",
                exc_info=True,
            )
        for processor in self._downstream:
            processor.on_end(forwarded)

    def _ended(self, span: ReadableSpan) -> ReadableSpan:
        span_id = span.context.span_id
        attributes = _attribute_view(span)  # read only: what changes goes into `extra`
        inference = attributes.get(attr.GEN_AI_OPERATION_NAME) in attr.INFERENCE_OPERATIONS
        duplicate_of = attributes.get(attr.DUPLICATE_OF)
        if inference and duplicate_of is None:
            # Two instrumentations that saw the same call without nesting: the same response id at
            # overlapping times. The span that ended first counts.
            first = self._ended_calls.seen(span, attributes.get(attr.GEN_AI_RESPONSE_ID))
            if first is not None:
                duplicate_of = format(first, "016x")
        if duplicate_of is not None:
            self._open_calls.discard(span_id)
            self._rollups.ended(span_id)
            return _EnrichedSpan(span, _demoted({**attributes, attr.DUPLICATE_OF: duplicate_of}))
        usage = span_usage(attributes)
        extra = cost_attributes(attributes, span.start_time, table=self._table, usage=usage)
        events = None
        if inference:
            self._open_calls.discard(span_id)
            # spancost's own spans carry content only when the user opted in; others are checked.
            if (
                not span.instrumentation_scope.name.startswith(_OWN_SCOPE)
                and has_content(attributes, span.events)
                and not capture_content()
            ):
                attributes = dict(attributes)  # the span's own dict stays as the SDK left it
                events = without_content(attributes, span.events)
            if usage is not None:  # a failed call bills nothing: nothing to roll up
                amount = extra.get(
                    attr.GEN_AI_USAGE_COST_AMOUNT, attributes.get(attr.GEN_AI_USAGE_COST_AMOUNT)
                )
                cost = Decimal(repr(amount)) if isinstance(amount, (int, float)) else None
                self._rollups.add_call(span_id, cost, usage.input_tokens, usage.output_tokens)
        totals = self._rollups.ended(span_id)
        if totals is not None:
            extra.update(totals.attributes())
        forwarded = span
        if events is not None or (extra and not (self._in_place and _enrich_in_place(span, extra))):
            forwarded = _EnrichedSpan(span, {**attributes, **extra}, events)
        if inference:
            end, start = span.end_time, span.start_time
            duration = (end - start) / 1e9 if end and start else None
            self._metrics.record(_attribute_view(forwarded), duration)
        return forwarded

    def shutdown(self) -> None:
        for processor in self._downstream:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in self._downstream)


def _attribute_view(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attributes, read directly from the dict inside the SDK's `BoundedAttributes` when
    there is one: ~25x cheaper than going through the locked mapping, and this runs for every span."""
    held = getattr(span, "_attributes", None)
    inner = held if isinstance(held, dict) else getattr(held, "_dict", None)
    if isinstance(inner, dict):
        return inner
    return dict(span.attributes or {})


def _enrich_in_place(span: ReadableSpan | Span, extra: Mapping[str, Any]) -> bool:
    """Add `extra` to a span's own attributes without the SDK's per-value checks, where that is
    safe; False where it is not (the caller then takes the API's way).

    On a started span this is what `set_attributes` does, minus checking values that are spancost's
    own (tags and hints as strings, numbers, short strings: valid as they are). On a finished span:
    the SDK freezes its attributes when it ends, before any processor sees it; the stage sits in front
    of every other processor (see `install`), so nobody has read the span yet, and adding to it is
    what the specification's OnEnding callback allows; it saves copying the span on every call.
    Refused when the attributes are not the SDK's `BoundedAttributes`, or when a limit would drop or
    truncate anything.
    """
    bounded = getattr(span, "_attributes", None)
    if type(bounded) is not BoundedAttributes:
        return False
    inner = bounded._dict
    if bounded.maxlen is not None and len(inner) + len(extra) > bounded.maxlen:
        return False
    limit = bounded.max_value_len
    if limit is not None and any(isinstance(v, str) and len(v) > limit for v in extra.values()):
        return False
    with bounded._lock:
        inner.update(extra)
    return True


def _demoted(attributes: dict[str, Any]) -> dict[str, Any]:
    """A duplicate call span stays in the trace (its children keep their parent) but stops being a
    model call: without an operation name and usage, no consumer counts the call twice."""
    return {
        key: value
        for key, value in attributes.items()
        if key != attr.GEN_AI_OPERATION_NAME and not key.startswith(attr.GEN_AI_USAGE_PREFIX)
    }


def installed_processor(tracer_provider: Any) -> SpancostSpanProcessor | None:
    """The spancost stage already in `tracer_provider`, if any."""
    multi = getattr(tracer_provider, "_active_span_processor", None)
    for processor in getattr(multi, "_span_processors", ()):
        if isinstance(processor, SpancostSpanProcessor):
            return processor
    return None


def install(
    tracer_provider: Any, meter_provider: MeterProvider | None = None
) -> SpancostSpanProcessor | None:
    """Put the spancost stage in front of `tracer_provider`'s processors (idempotent).

    Processors added to the provider later are added behind the stage, so they too receive priced
    spans. Returns None (and logs why) for a provider that is not the OpenTelemetry SDK's.
    """
    existing = installed_processor(tracer_provider)
    if existing is not None:
        multi = tracer_provider._active_span_processor
        existing._in_place = tuple(multi._span_processors) == (existing,)
        return existing
    multi = getattr(tracer_provider, "_active_span_processor", None)
    if multi is None or not hasattr(multi, "_span_processors") or not hasattr(multi, "_lock"):
        log_once(
            logger,
            "install.unsupported",
            "spancost: tracer provider %r is not the OpenTelemetry SDK's; "
            "spans will not be tagged or priced in process (the collector can still price them)",
            tracer_provider,
        )
        return None
    with multi._lock:
        stage = SpancostSpanProcessor(*multi._span_processors, meter_provider=meter_provider)
        multi._span_processors = (stage,)
        stage._in_place = True
    # An instance attribute shadows the method, so provider.add_span_processor() now adds behind us.
    multi.add_span_processor = stage.add_span_processor
    return stage


def uninstall(tracer_provider: Any) -> None:
    """Take the spancost stage out again, leaving the provider's processors as they are."""
    stage = installed_processor(tracer_provider)
    if stage is None:
        return
    multi = tracer_provider._active_span_processor
    with multi._lock:
        multi._span_processors = stage.downstream
    if "add_span_processor" in vars(multi):
        del multi.add_span_processor
