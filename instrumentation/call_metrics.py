"""GenAI client metrics, recorded from each finished model-call span.

`gen_ai.client.token.usage` and `gen_ai.client.operation.duration` as the semantic conventions define
them, and `spancost.client.cost` (USD). Attributes are low-cardinality only: provider, model,
operation, prompt name (and error type on the duration); never users, workspaces or trace ids.
Recorded in the span processor, so calls from any emitter are counted the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics

from spancost import __version__
from spancost import attributes as attr

# The bucket boundaries the GenAI semantic conventions advise.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

_DIMENSIONS = (
    attr.GEN_AI_OPERATION_NAME,
    attr.GEN_AI_PROVIDER_NAME,
    attr.GEN_AI_REQUEST_MODEL,
    attr.GEN_AI_RESPONSE_MODEL,
    attr.PROMPT_NAME,
)


_AttributeSets = tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]
"""The attributes of one call's measurements: cost, duration, input tokens, output tokens."""
_MAX_ATTRIBUTE_SETS = 4096


class CallMetrics:
    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        self._attribute_sets: dict[tuple[tuple[Any, ...], Any], _AttributeSets] = {}
        meter = metrics.get_meter("spancost", __version__, meter_provider=meter_provider)
        self._tokens = meter.create_histogram(
            attr.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Tokens used per model call",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            attr.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of model calls",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._cost = meter.create_counter(attr.METRIC_COST, unit="USD", description="Spend on model calls")

    def record(self, attributes: Mapping[str, Any], duration_s: float | None) -> None:
        """Record one finished call from its (priced) span attributes."""
        values = tuple(attributes.get(key) for key in _DIMENSIONS)
        error = attributes.get(attr.ERROR_TYPE) if duration_s is not None else None
        key = (values, error)
        try:
            sets = self._attribute_sets.get(key)
        except TypeError:  # an unhashable value from another emitter: built every time
            sets = _attribute_sets(values, error)
        else:
            if sets is None:
                # Built once per combination (low cardinality by design), the same dicts every call.
                if len(self._attribute_sets) >= _MAX_ATTRIBUTE_SETS:
                    self._attribute_sets.clear()
                sets = self._attribute_sets[key] = _attribute_sets(values, error)
        dimensions, timed, input_set, output_set = sets
        if duration_s is not None:
            self._duration.record(duration_s, timed)
        count = attributes.get(attr.GEN_AI_USAGE_INPUT_TOKENS)
        if isinstance(count, int):
            self._tokens.record(count, input_set)
        count = attributes.get(attr.GEN_AI_USAGE_OUTPUT_TOKENS)
        if isinstance(count, int):
            self._tokens.record(count, output_set)
        cost = attributes.get(attr.GEN_AI_USAGE_COST_AMOUNT)
        if isinstance(cost, (int, float)):
            self._cost.add(cost, dimensions)


def _attribute_sets(values: tuple[Any, ...], error: Any) -> _AttributeSets:
    dimensions = {key: value for key, value in zip(_DIMENSIONS, values, strict=True) if value is not None}
    return (
        dimensions,
        {**dimensions, attr.ERROR_TYPE: error} if error else dimensions,
        {**dimensions, attr.GEN_AI_TOKEN_TYPE: "input"},
        {**dimensions, attr.GEN_AI_TOKEN_TYPE: "output"},
    )
