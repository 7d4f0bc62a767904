"""What every provider patch does to its inference span: start it, record usage, end it.

Provider modules extract values from their SDK's objects; these helpers turn the values into the
semantic-convention attributes, so that every patch writes the same names the same way.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from spancost import attributes as attr
from spancost._log import log_once
from spancost.pricing.usage import Usage

logger = logging.getLogger("spancost.instrumentation")

T = TypeVar("T")

_PROMPT_HASH_CHARS = 12


def prompt_version(texts: Iterable[str]) -> str | None:
    """A short, stable hash of the system prompt: the default `spancost.prompt.version`.

    A prompt edit changes it, so the edit shows as a step in cost per call; the text itself is
    never recorded.
    """
    parts = [t for t in texts if t]
    if not parts:
        return None
    return _hash_prompt(parts[0] if len(parts) == 1 else "\n".join(parts))


@lru_cache(maxsize=512)
def _hash_prompt(text: str) -> str:
    # Cached: an application sends the same few system prompts over and over, and a str caches its
    # own hash, so a repeat costs a dict lookup instead of hashing a long prompt again.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_PROMPT_HASH_CHARS]


def server_attributes(base_url: Any) -> Mapping[str, Any]:
    """`server.address` and `server.port` of the endpoint a client talks to."""
    return _server_attributes(str(base_url))


@lru_cache(maxsize=256)
def _server_attributes(base_url: str) -> Mapping[str, Any]:
    try:
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return MappingProxyType({})
    if not parts.hostname:
        return MappingProxyType({})
    return MappingProxyType({attr.SERVER_ADDRESS: parts.hostname, attr.SERVER_PORT: port})


def start_inference_span(
    tracer: Tracer, operation: str, provider: str, model: str | None, attributes: Mapping[str, Any]
) -> Span:
    """A CLIENT span named `{operation} {model}` with the request's attributes set before it starts,
    so that samplers and the span processor see them."""
    start = {
        attr.GEN_AI_OPERATION_NAME: operation,
        attr.GEN_AI_PROVIDER_NAME: provider,
        **{k: v for k, v in attributes.items() if v is not None},
    }
    if model:
        start[attr.GEN_AI_REQUEST_MODEL] = model
    name = f"{operation} {model}" if model else operation
    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=start)


def usage_attributes(usage: Usage) -> dict[str, Any]:
    """Semantic-convention usage attributes; cache and reasoning counts only when the provider gave them."""
    values: dict[str, Any] = {
        attr.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
        attr.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
    }
    optional = (
        (attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_tokens),
        (attr.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, usage.cache_write_tokens),
        (attr.ANTHROPIC_CACHE_WRITE_1H_TOKENS, usage.cache_write_1h_tokens),
        (attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning_tokens),
    )
    values.update({name: count for name, count in optional if count})
    return values


def record_error(span: Span, error: BaseException) -> None:
    """Mark the span failed with the error's type; the caller re-raises the error unchanged.

    Cancellation (a BaseException that is not an Exception) is the application stopping the call,
    not the call failing, so it leaves the status unset.
    """
    if not isinstance(error, Exception):
        return
    error_type = type(error).__qualname__
    span.set_attribute(attr.ERROR_TYPE, error_type)
    # The message is left out: a provider's error text can quote the request, which is content.
    status_code = getattr(error, "status_code", None)
    description = f"{error_type} (HTTP {status_code})" if isinstance(status_code, int) else error_type
    span.set_status(Status(StatusCode.ERROR, description))


def guarded(what: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Run spancost's own work; an error in it is logged once and swallowed, never raised at the caller."""
    try:
        return func(*args, **kwargs)
    except Exception:
        log_once(
            logger, f"guarded:{what}", "spancost: %s failed; the call goes on without it", what, exc_info=True
        )
        return None


def number(value: Any) -> float | None:
    """A numeric request parameter as a double attribute (bools are not numbers here)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def call_in_span(
    tracer: Tracer,
    operation: str,
    request: tuple[str, str | None, Mapping[str, Any]] | None,
    response_attributes: Callable[[Any], Mapping[str, Any]],
    wrapped: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> T:
    """Call `wrapped` inside a new inference span; the span records the response or the error.

    `request` is (provider, model, start attributes), or None when extracting it failed: then the
    call runs without a span. Whatever spancost's own code does, the caller gets exactly what the
    SDK returned or raised.
    """
    span = guarded("starting a span", start_inference_span, tracer, operation, *request) if request else None
    if span is None:
        return wrapped(*args, **kwargs)
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            result = wrapped(*args, **kwargs)
    except BaseException as error:
        guarded("recording an error", _end_failed, span, error)
        raise
    guarded("recording a response", _end_ok, span, response_attributes, result)
    return result


def _end_ok(span: Span, response_attributes: Callable[[Any], Mapping[str, Any]], result: Any) -> None:
    try:
        span.set_attributes(response_attributes(result))
    finally:
        span.end()


def _end_failed(span: Span, error: BaseException) -> None:
    try:
        record_error(span, error)
    finally:
        span.end()
