"""What every provider patch does to its inference span: start it, record usage, end it.

Provider modules extract values from their SDK's objects; these helpers turn the values into the
semantic-convention attributes, so that every patch writes the same names the same way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from spancost import attributes as attr
from spancost._log import log_once
from spancost.instrumentation.tags import current_tags
from spancost.pricing.usage import Usage

logger = logging.getLogger("spancost.instrumentation")

T = TypeVar("T")

_PROMPT_HASH_CHARS = 12

READING_TAGS = "reading the context's tags"
"""What a failure to read the tags is logged as: one message wherever spans read them."""

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = {"true", "1", "yes", "span_only", "span_and_event"}


def capture_content() -> bool:
    """Whether the user opted in to recording prompt and completion text on spans.

    The standard switch, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: `true` (older
    instrumentations) or `SPAN_ONLY` / `SPAN_AND_EVENT` (the newer utilities). Off by default.
    """
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_ON


def system_prompt_attributes(texts: Iterable[str]) -> dict[str, Any]:
    """The default prompt version (a short hash) and a size estimate of the system prompt, never its text."""
    parts = [t for t in texts if t]
    if not parts:
        return {}
    text = parts[0] if len(parts) == 1 else "\n".join(parts)
    return {attr.PROMPT_VERSION: _hash_prompt(text), attr.PROMPT_SYSTEM_TOKENS: (len(text) + 3) // 4}


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
    """A CLIENT span named `{operation} {model}` with the request's attributes and the context's tags
    set before it starts, so that samplers and the span processor see them (and the SDK checks them
    once, in one pass)."""
    start = {attr.GEN_AI_OPERATION_NAME: operation, attr.GEN_AI_PROVIDER_NAME: provider}
    for key, value in attributes.items():
        if value is not None:
            start[key] = value
    if model:
        start[attr.GEN_AI_REQUEST_MODEL] = model
    tags = guarded(READING_TAGS, span_tags)
    if tags:
        start.update(tags)  # after the request's: an explicit prompt_version wins over the prompt's hash
    return tracer.start_span(
        f"{operation} {model}" if model else operation, kind=SpanKind.CLIENT, attributes=start
    )


def span_tags(ctx: otel_context.Context | None = None) -> Mapping[str, str]:
    """The tags a span started in `ctx` carries: where the span processor and spancost's own spans
    read them (apart from `current_tags`, so that a fault here cannot reach a `tags` block)."""
    return current_tags(ctx)


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


class InferenceCall:
    """The span of one model call from request to end, ended exactly once whichever path ends it.

    A call ends when the SDK returns (non-streaming), when its stream is exhausted, closed, left or
    garbage-collected, or when it fails. `end` never raises: it runs in `finally` blocks and
    finalisers, so it catches `BaseException` too and logs once.
    """

    __slots__ = ("_ended", "_lock", "_started_ns", "first_chunk_ns", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._lock = threading.Lock()
        self._ended = False
        self._started_ns = time.monotonic_ns()
        self.first_chunk_ns: int | None = None

    @classmethod
    def start(
        cls, tracer: Tracer, operation: str, request: tuple[str, str | None, Mapping[str, Any]] | None
    ) -> InferenceCall | None:
        """Start the call's span from `request` = (provider, model, start attributes); None if that fails."""
        if request is None:
            return None
        span = guarded("starting a span", start_inference_span, tracer, operation, *request)
        return cls(span) if span is not None else None

    @property
    def ended(self) -> bool:
        return self._ended

    def chunk(self) -> None:
        """Note a streamed chunk; the first one sets the time to first chunk."""
        if self.first_chunk_ns is None:
            self.first_chunk_ns = time.monotonic_ns()

    def end(self, attributes: Mapping[str, Any] | None = None, error: BaseException | None = None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        try:
            if attributes:
                self.span.set_attributes(attributes)
            if self.first_chunk_ns is not None:
                seconds = (self.first_chunk_ns - self._started_ns) / 1e9
                self.span.set_attribute(attr.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, seconds)
            if error is not None:
                record_error(self.span, error)
        except BaseException:
            log_once(logger, "call.end", "spancost: could not record the end of a call", exc_info=True)
        finally:
            try:
                self.span.end()
            except BaseException:
                log_once(logger, "call.span.end", "spancost: could not end a span", exc_info=True)


ResultHandler = Callable[[InferenceCall, Any], Any]
"""Given the call and what the SDK returned, end the call (or hand it to a stream proxy that will)
and return what the caller gets: the SDK's own object, or a proxy that behaves exactly like it."""


def finish_with(response_attributes: Callable[[Any], Mapping[str, Any]]) -> ResultHandler:
    """A handler for non-streaming results: record `response_attributes(result)` and end the call."""

    def handle(call: InferenceCall, result: Any) -> Any:
        call.end(guarded("reading a response", response_attributes, result))
        return result

    return handle


def call_in_span(
    tracer: Tracer,
    operation: str,
    request: tuple[str, str | None, Mapping[str, Any]] | None,
    on_result: ResultHandler,
    wrapped: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> T:
    """Call `wrapped` inside a new inference span; `on_result` records the result or wraps its stream.

    `request` is (provider, model, start attributes), or None when extracting it failed: then the
    call runs without a span. Whatever spancost's own code does, the caller gets exactly what the
    SDK returned or raised.
    """
    call = InferenceCall.start(tracer, operation, request) if not inside_inference_span() else None
    if call is None:
        return wrapped(*args, **kwargs)
    try:
        # attach/detach rather than `trace.use_span`: the same, without a generator-based context
        # manager on every call.
        token = otel_context.attach(trace.set_span_in_context(call.span))
        try:
            result = wrapped(*args, **kwargs)
        finally:
            otel_context.detach(token)
    except BaseException as error:
        call.end(error=error)
        raise
    return _handled(call, on_result, result)


async def acall_in_span(
    tracer: Tracer,
    operation: str,
    request: tuple[str, str | None, Mapping[str, Any]] | None,
    on_result: ResultHandler,
    wrapped: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> T:
    """`call_in_span` for coroutine methods (the async clients)."""
    call = InferenceCall.start(tracer, operation, request) if not inside_inference_span() else None
    if call is None:
        return await wrapped(*args, **kwargs)
    try:
        token = otel_context.attach(trace.set_span_in_context(call.span))
        try:
            result = await wrapped(*args, **kwargs)
        finally:
            otel_context.detach(token)
    except BaseException as error:
        call.end(error=error)
        raise
    return _handled(call, on_result, result)


def inside_inference_span() -> bool:
    """Whether the current span is already a model call's: another instrumentation (OpenLLMetry, the
    OTel GenAI instrumentors) wrapped this SDK method outside spancost's wrapper. Its span then counts,
    priced by the span processor, and spancost adds no second one."""
    span = trace.get_current_span()
    if not span.is_recording():
        return False
    attributes = getattr(span, "attributes", None) or {}
    return attributes.get(attr.GEN_AI_OPERATION_NAME) in attr.INFERENCE_OPERATIONS


def _handled(call: InferenceCall, on_result: ResultHandler, result: Any) -> Any:
    try:
        return on_result(call, result)
    except Exception:
        log_once(
            logger, "call.result", "spancost: could not record a result; the call goes on", exc_info=True
        )
        call.end()
        return result
