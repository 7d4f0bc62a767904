"""OpenAI SDK instrumentation: one priced inference span per `chat.completions.create`.

The openai SDK emits no spans of its own, so spancost patches it (wrapt). The wrapper starts a
CLIENT span with the request's attributes, calls the SDK, and records the response's model, id,
finish reasons and usage; the span processor prices it when it ends. Streaming calls are passed
through untouched for now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import lru_cache
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
from spancost.pricing.usage import openai_usage

logger = logging.getLogger("spancost.instrumentation.openai")

_CHAT_MODULE = "openai.resources.chat.completions.completions"

# Hosts of OpenAI-compatible APIs → gen_ai.provider.name.
_HOST_PROVIDERS = (
    ("openai.azure.com", "azure.ai.openai"),
    ("cognitiveservices.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.openai"),
    ("api.groq.com", "groq"),
    ("api.together.xyz", "together_ai"),
    ("api.deepseek.com", "deepseek"),
    ("openrouter.ai", "openrouter"),
    ("api.x.ai", "x_ai"),
    ("api.mistral.ai", "mistral_ai"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
)


@lru_cache(maxsize=256)
def provider_for_host(host: str | None) -> str:
    """The provider behind an OpenAI-compatible endpoint; `openai` when the host is not a known one."""
    host = (host or "").lower()
    for suffix, provider in _HOST_PROVIDERS:
        if host == suffix or host.endswith("." + suffix):
            return provider
    return "openai"


def _system_texts(messages: Any) -> Iterable[str]:
    """The text of the system and developer messages, for the prompt-version hash."""
    if not isinstance(messages, Iterable) or isinstance(messages, (str, bytes, Mapping)):
        return
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") not in ("system", "developer"):
            continue
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, Iterable):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    yield part["text"]


def chat_request_attributes(client: Any, kwargs: Mapping[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """Provider, model and start attributes of a chat request (no content)."""
    server = server_attributes(getattr(client, "base_url", None))
    provider = provider_for_host(server.get(attr.SERVER_ADDRESS))
    model = kwargs.get("model") if isinstance(kwargs.get("model"), str) else None
    max_tokens = kwargs.get("max_completion_tokens") or kwargs.get("max_tokens")
    values: dict[str, Any] = {
        **server,
        attr.GEN_AI_REQUEST_MAX_TOKENS: max_tokens if isinstance(max_tokens, int) else None,
        attr.GEN_AI_REQUEST_TEMPERATURE: number(kwargs.get("temperature")),
        attr.GEN_AI_REQUEST_TOP_P: number(kwargs.get("top_p")),
        attr.OPENAI_REQUEST_SERVICE_TIER: kwargs.get("service_tier")
        if isinstance(kwargs.get("service_tier"), str)
        else None,
        **system_prompt_attributes(_system_texts(kwargs.get("messages"))),
    }
    return provider, model, values


def chat_response_attributes(response: Any) -> dict[str, Any]:
    """Model, id, finish reasons, service tier and usage of a `ChatCompletion`."""
    values: dict[str, Any] = {}
    model = getattr(response, "model", None)
    if isinstance(model, str):
        values[attr.GEN_AI_RESPONSE_MODEL] = model
    response_id = getattr(response, "id", None)
    if isinstance(response_id, str):
        values[attr.GEN_AI_RESPONSE_ID] = response_id
    reasons = [
        c.finish_reason for c in getattr(response, "choices", None) or () if getattr(c, "finish_reason", None)
    ]
    if reasons:
        values[attr.GEN_AI_RESPONSE_FINISH_REASONS] = [str(r) for r in reasons]
    tier = getattr(response, "service_tier", None)
    if isinstance(tier, str):
        values[attr.OPENAI_RESPONSE_SERVICE_TIER] = tier
    usage = getattr(response, "usage", None)
    if usage is not None:
        values.update(usage_attributes(openai_usage(usage)))
    return values


def chat_create(tracer: trace.Tracer) -> Callable[..., Any]:
    """The wrapper of `Completions.create`."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        pipeline_ready()
        if kwargs.get("stream"):
            return wrapped(*args, **kwargs)
        request = guarded(
            "reading an openai request", chat_request_attributes, getattr(instance, "_client", None), kwargs
        )
        return call_in_span(
            tracer, "chat", request, finish_with(chat_response_attributes), wrapped, args, kwargs
        )

    return wrapper


class OpenAIInstrumentor(PatchingInstrumentor):
    """Patches the openai SDK (registered as `spancost_openai` for `opentelemetry-instrument`)."""

    scope = __name__
    patches = (Patch(_CHAT_MODULE, "Completions", "create", chat_create),)

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.0",)
