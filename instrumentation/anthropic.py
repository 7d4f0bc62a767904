"""Anthropic SDK instrumentation: exactly one priced inference span per `messages.create`.

Current anthropic SDKs trace themselves: every call gets the SDK's own semantic-convention span
(`anthropic.messages.create`) on the global tracer provider, with usage and cache attributes. A
second span for the same call would double every count, so for a client that traces itself the
wrapper adds no span: it only passes call hints (the system-prompt hash) into the context, and the
span processor tags and prices the SDK's span. For an SDK that does not trace (older versions, or
tracing turned off for the client), the wrapper makes the span itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from opentelemetry import trace

from spancost import attributes as attr
from spancost.instrumentation._inference import (
    call_in_span,
    finish_with,
    guarded,
    number,
    server_attributes,
    system_prompt_attributes,
    usage_attributes,
)
from spancost.instrumentation._patching import Patch, PatchingInstrumentor
from spancost.instrumentation.pipeline import pipeline_ready
from spancost.instrumentation.tags import attach_hints, detach_hints
from spancost.pricing.usage import anthropic_usage

logger = logging.getLogger("spancost.instrumentation.anthropic")

_MESSAGES_MODULE = "anthropic.resources.messages.messages"

# Client classes of the cloud platforms → gen_ai.provider.name.
_PLATFORM_PROVIDERS = {
    "AnthropicBedrock": "aws.bedrock",
    "AsyncAnthropicBedrock": "aws.bedrock",
    "AnthropicVertex": "gcp.vertex_ai",
    "AsyncAnthropicVertex": "gcp.vertex_ai",
}


def sdk_traces(client: Any) -> bool:
    """Whether this client emits its own span per call (anthropic SDKs with built-in tracing, enabled)."""
    if not hasattr(type(client), "_tracer"):
        return False
    try:
        return client._tracer is not None
    except Exception:
        return False


def _system_texts(system: Any) -> Iterable[str]:
    if isinstance(system, str):
        yield system
    elif isinstance(system, Iterable) and not isinstance(system, (bytes, Mapping)):
        for block in system:
            if isinstance(block, Mapping) and isinstance(block.get("text"), str):
                yield block["text"]


def request_hints(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What spancost adds to any span of this call, the SDK's own included."""
    return system_prompt_attributes(_system_texts(kwargs.get("system")))


def request_attributes(client: Any, kwargs: Mapping[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    provider = _PLATFORM_PROVIDERS.get(type(client).__name__, "anthropic")
    model = kwargs.get("model") if isinstance(kwargs.get("model"), str) else None
    max_tokens = kwargs.get("max_tokens")
    values: dict[str, Any] = {
        **server_attributes(getattr(client, "base_url", None)),
        attr.GEN_AI_REQUEST_MAX_TOKENS: max_tokens if isinstance(max_tokens, int) else None,
        attr.GEN_AI_REQUEST_TEMPERATURE: number(kwargs.get("temperature")),
        attr.GEN_AI_REQUEST_TOP_P: number(kwargs.get("top_p")),
        **request_hints(kwargs),
    }
    return provider, model, values


def response_attributes(message: Any) -> dict[str, Any]:
    """Model, id, stop reason, service tier and usage of a `Message`."""
    values: dict[str, Any] = {}
    for name, key in (("model", attr.GEN_AI_RESPONSE_MODEL), ("id", attr.GEN_AI_RESPONSE_ID)):
        value = getattr(message, name, None)
        if isinstance(value, str):
            values[key] = value
    stop_reason = getattr(message, "stop_reason", None)
    if isinstance(stop_reason, str):
        values[attr.GEN_AI_RESPONSE_FINISH_REASONS] = [stop_reason]
    usage = getattr(message, "usage", None)
    if usage is not None:
        normalised = anthropic_usage(usage)
        values.update(usage_attributes(normalised))
        if normalised.service_tier:
            values[attr.ANTHROPIC_RESPONSE_SERVICE_TIER] = normalised.service_tier
    return values


def messages_create(tracer: trace.Tracer) -> Callable[..., Any]:
    """The wrapper of `Messages.create`."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        pipeline_ready()
        client = getattr(instance, "_client", None)
        if sdk_traces(client):
            hints = guarded("reading an anthropic request", request_hints, kwargs)
            token = guarded("passing call hints", attach_hints, hints) if hints else None
            if token is None:
                return wrapped(*args, **kwargs)
            try:
                return wrapped(*args, **kwargs)
            finally:
                guarded("clearing call hints", detach_hints, token)
        if kwargs.get("stream"):
            return wrapped(*args, **kwargs)
        request = guarded("reading an anthropic request", request_attributes, client, kwargs)
        return call_in_span(tracer, "chat", request, finish_with(response_attributes), wrapped, args, kwargs)

    return wrapper


class AnthropicInstrumentor(PatchingInstrumentor):
    """Prices the anthropic SDK's spans, or makes them where the SDK does not
    (registered as `spancost_anthropic` for `opentelemetry-instrument`)."""

    scope = __name__
    patches = (Patch(_MESSAGES_MODULE, "Messages", "create", messages_create),)

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 0.30",)
