"""openai SDK objects → span attribute values: plain functions, no spans, no I/O.

Request extractors take the client and the call's keyword arguments and return `(provider, model,
start attributes)`; the parameters themselves are read by keyword-only functions that ignore what
they do not know, so a new SDK parameter never breaks them. Response extractors take what the SDK
returned. Values the SDK leaves out (`omit`, `NOT_GIVEN`, None) fail the type checks and are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from spancost import attributes as attr
from spancost.instrumentation._inference import (
    capture_content,
    number,
    server_attributes,
    system_prompt_attributes,
    usage_attributes,
)
from spancost.instrumentation.openai import content
from spancost.pricing.usage import openai_usage

Request = tuple[str, "str | None", dict[str, Any]]

# Hosts of OpenAI-compatible APIs → gen_ai.provider.name; a host matches itself and its subdomains.
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
# Cloud endpoints the SDK's own providers build: bedrock-runtime.<region>.amazonaws.com,
# bedrock-mantle.<region>.api.aws, <location>-aiplatform.googleapis.com.
_HOST_PATTERNS = (
    (re.compile(r"^bedrock-(runtime|mantle)[.-]"), "aws.bedrock"),
    (re.compile(r"(^|[.-])aiplatform\.googleapis\.com$"), "gcp.vertex_ai"),
)
# Local servers are told apart by their default port; any other local server is "openai"-compatible.
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})
_LOCAL_PORTS = {11434: "ollama", 8000: "vllm", 1234: "lm_studio"}

_OPENAI_API = "api.openai.com"
_AZURE = "azure.ai.openai"
# Azure OpenAI rejects `stream_options` before API version 2024-09-01-preview (HTTP 400).
_AZURE_STREAM_USAGE_SINCE = "2024-09-01"
_AZURE_DEPLOYMENT = re.compile(r"/deployments/([^/]+)")
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


@lru_cache(maxsize=256)
def provider_for_host(host: str | None, port: int | None = None) -> str:
    """The provider behind an OpenAI-compatible endpoint; `openai` when the host is not a known one."""
    host = (host or "").lower()
    for suffix, provider in _HOST_PROVIDERS:
        if host == suffix or host.endswith("." + suffix):
            return provider
    for pattern, provider in _HOST_PATTERNS:
        if pattern.search(host):
            return provider
    if host in _LOCAL_HOSTS or host.startswith("127.") or host.endswith(".localhost"):
        return _LOCAL_PORTS.get(port or 0, "openai")
    return "openai"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a client sends its calls, worked out once per base URL."""

    server: Mapping[str, Any]
    provider: str
    deployment: str | None
    """Azure: the deployment named in the client's base URL, which serves chat and embeddings calls."""


@lru_cache(maxsize=256)
def _endpoint(base_url: str) -> Endpoint:
    server = server_attributes(base_url)
    provider = provider_for_host(server.get(attr.SERVER_ADDRESS), server.get(attr.SERVER_PORT))
    deployment = _AZURE_DEPLOYMENT.search(base_url) if provider == _AZURE else None
    return Endpoint(server, provider, deployment.group(1) if deployment else None)


def endpoint(client: Any) -> Endpoint:
    return _endpoint(str(getattr(client, "base_url", "")))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _model(where: Endpoint, model: Any, *, deployment_path: bool) -> str | None:
    # Azure routes chat and embeddings by the deployment in the URL path, whatever the body says.
    if deployment_path and where.deployment:
        return where.deployment
    return _str(model)


# --- requests ------------------------------------------------------------------------------------


def chat_params(
    *,
    messages: Any = None,
    max_completion_tokens: Any = None,
    max_tokens: Any = None,
    temperature: Any = None,
    top_p: Any = None,
    service_tier: Any = None,
    stream: Any = None,
    **_ignored: Any,
) -> dict[str, Any]:
    """Start attributes of a chat completion request (`create`, `parse`, `stream`)."""
    values: dict[str, Any] = {
        attr.GEN_AI_REQUEST_MAX_TOKENS: _int(max_completion_tokens) or _int(max_tokens),
        attr.GEN_AI_REQUEST_TEMPERATURE: number(temperature),
        attr.GEN_AI_REQUEST_TOP_P: number(top_p),
        attr.OPENAI_REQUEST_SERVICE_TIER: _str(service_tier),
        attr.GEN_AI_REQUEST_STREAM: True if stream is True else None,
        **system_prompt_attributes(content.chat_system_texts(messages)),
    }
    if capture_content():
        values.update(content.chat_input_attributes(messages))
    return values


def chat_request_attributes(client: Any, kwargs: Mapping[str, Any]) -> Request:
    """Provider, model and start attributes of a chat completion request."""
    where = endpoint(client)
    model = _model(where, kwargs.get("model"), deployment_path=True)
    return where.provider, model, {**where.server, **chat_params(**kwargs)}


def responses_params(
    *,
    input: Any = None,
    instructions: Any = None,
    max_output_tokens: Any = None,
    temperature: Any = None,
    top_p: Any = None,
    service_tier: Any = None,
    stream: Any = None,
    **_ignored: Any,
) -> dict[str, Any]:
    """Start attributes of a Responses API request (`create`, `parse`, `stream`)."""
    values: dict[str, Any] = {
        attr.GEN_AI_REQUEST_MAX_TOKENS: _int(max_output_tokens),
        attr.GEN_AI_REQUEST_TEMPERATURE: number(temperature),
        attr.GEN_AI_REQUEST_TOP_P: number(top_p),
        attr.OPENAI_REQUEST_SERVICE_TIER: _str(service_tier),
        attr.GEN_AI_REQUEST_STREAM: True if stream is True else None,
        **system_prompt_attributes(content.responses_system_texts(instructions, input)),
    }
    if capture_content():
        values.update(content.responses_input_attributes(instructions, input))
    return values


def responses_request_attributes(client: Any, kwargs: Mapping[str, Any]) -> Request:
    """Provider, model and start attributes of a Responses API request (its operation is `chat`)."""
    where = endpoint(client)
    # /responses is not a deployment route on Azure: the body's model names the deployment.
    model = _model(where, kwargs.get("model"), deployment_path=False)
    return where.provider, model, {**where.server, **responses_params(**kwargs)}


def embeddings_params(*, dimensions: Any = None, **_ignored: Any) -> dict[str, Any]:
    return {attr.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: _int(dimensions)}


def embeddings_request_attributes(client: Any, kwargs: Mapping[str, Any]) -> Request:
    """Provider, model and start attributes of an embeddings request (the input is never recorded)."""
    where = endpoint(client)
    model = _model(where, kwargs.get("model"), deployment_path=True)
    return where.provider, model, {**where.server, **embeddings_params(**kwargs)}


def wants_stream_usage(client: Any, kwargs: Mapping[str, Any]) -> bool:
    """Whether to ask a chat stream for its usage chunk on the caller's behalf.

    Only when the caller did not ask, reads parsed chunks (a raw-response call sees the body as
    sent, so the extra chunk could not be hidden), and the host is known to accept
    `stream_options`: OpenAI, and Azure OpenAI from API version 2024-09-01-preview on.
    """
    if kwargs.get("stream") is not True:
        return False
    options = kwargs.get("stream_options")
    if isinstance(options, Mapping) and options.get("include_usage"):
        return False
    headers = kwargs.get("extra_headers")
    if isinstance(headers, Mapping) and _RAW_RESPONSE_HEADER in headers:
        return False
    where = endpoint(client)
    host = where.server.get(attr.SERVER_ADDRESS) or ""
    if where.provider == "openai":
        return host == _OPENAI_API or host.endswith("." + _OPENAI_API)
    if where.provider != _AZURE:
        return False
    version = getattr(client, "_api_version", None) or _query_version(client)
    if version is None:  # no api-version: the OpenAI-compatible /openai/v1 surface
        return "/openai/v1" in str(getattr(client, "base_url", ""))
    return version in ("v1", "latest", "preview") or version >= _AZURE_STREAM_USAGE_SINCE


def _query_version(client: Any) -> str | None:
    query = getattr(client, "default_query", None)
    return _str(query.get("api-version")) if isinstance(query, Mapping) else None


def with_stream_usage(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the call's arguments that asks for usage; the caller's objects are left untouched."""
    options = kwargs.get("stream_options")
    merged = {**options, "include_usage": True} if isinstance(options, Mapping) else {"include_usage": True}
    return {**kwargs, "stream_options": merged}


# --- responses -----------------------------------------------------------------------------------


def openai_usage_attributes(usage: Any) -> dict[str, Any]:
    """Usage attributes, normalised by `openai_usage` (cached reads and writes included in the input)."""
    return usage_attributes(openai_usage(usage))


def _common(response: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    model = _str(getattr(response, "model", None))
    if model:
        values[attr.GEN_AI_RESPONSE_MODEL] = model
    response_id = _str(getattr(response, "id", None))
    if response_id:
        values[attr.GEN_AI_RESPONSE_ID] = response_id
    tier = _str(getattr(response, "service_tier", None))
    if tier:
        values[attr.OPENAI_RESPONSE_SERVICE_TIER] = tier
    usage = getattr(response, "usage", None)
    if usage is not None:
        values.update(openai_usage_attributes(usage))
    return values


def chat_response_attributes(response: Any) -> dict[str, Any]:
    """Model, id, finish reasons, service tier and usage of a `ChatCompletion` (or `ParsedChatCompletion`)."""
    values = _common(response)
    choices = getattr(response, "choices", None) or ()
    reasons = [str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None)]
    if reasons:
        values[attr.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    if capture_content():
        values.update(content.chat_output_attributes(choices))
    return values


def responses_response_attributes(response: Any) -> dict[str, Any]:
    """Model, id, finish reason, service tier and usage of a Responses API `Response`."""
    values = _common(response)
    reason = content.responses_finish_reason(response)
    if reason:
        values[attr.GEN_AI_RESPONSE_FINISH_REASONS] = [reason]
    if capture_content() and reason:
        values.update(content.responses_output_attributes(response, reason))
    return values


def embeddings_response_attributes(response: Any) -> dict[str, Any]:
    """Model and usage of a `CreateEmbeddingResponse` (input tokens only)."""
    return _common(response)


def raw_response_attributes(raw: Any, extract: Any) -> Mapping[str, Any]:
    """What can be read from a `with_raw_response` / `with_streaming_response` result.

    A `with_raw_response` body is already in memory, and the SDK caches `parse()`: parsing it here
    hands the caller the very object it would parse itself. A `with_streaming_response` body is the
    caller's to read inside its block, and a stream is the caller's to iterate: reading either here
    would change when the caller's work happens, so those calls are recorded without usage.
    """
    request = getattr(getattr(raw, "http_response", None), "request", None)
    if (
        getattr(raw, "_stream", True)
        or request is None
        or request.headers.get(_RAW_RESPONSE_HEADER) != "true"
    ):
        return {}
    try:
        parsed = raw.parse()
    except Exception:  # the caller meets the same error when it parses; not spancost's to report
        return {}
    return extract(parsed)
