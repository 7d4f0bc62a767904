"""The wrappers of the anthropic SDK's message methods: factories that take spancost's tracer.

Each wrapper first asks whether the client traces itself. If it does, the SDK's own span is the
call's one span, and the wrapper only puts call hints (the system prompt's hash and size) in the
context while the SDK starts it; the span processor copies them on, then tags and prices the span.
If it does not (SDK versions before built-in tracing, or `open_telemetry=False`), the wrapper makes
the span: started with the request's attributes, ended with the response's, or, for a stream, when
the stream ends. (Inside another instrumentation's span for the same call, `call_in_span` makes
none: that span counts.)

Extraction functions are looked up on the package at call time (`api.request_hints`, ...), so that
whoever replaces one there (a test injecting a fault) replaces it for every wrapper.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opentelemetry import trace

from spancost import attributes as attr
from spancost.instrumentation import anthropic as api
from spancost.instrumentation._inference import (
    InferenceCall,
    ResultHandler,
    acall_in_span,
    call_in_span,
    capture_content,
    guarded,
)
from spancost.instrumentation.anthropic.extract import request_content, response_content, sdk_traces
from spancost.instrumentation.anthropic.stream import (
    AsyncTracedStreamManager,
    MessageEvents,
    TracedStreamManager,
    trace_helper_stream,
    traced_stream,
)
from spancost.instrumentation.pipeline import pipeline_ready

_CHAT = attr.Operation.CHAT.value

Request = tuple[str, str | None, Mapping[str, Any]]
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


# --- the SDK traces itself: hints only -------------------------------------------------------------


def _attach_hints(kwargs: Mapping[str, Any]) -> object | None:
    hints = guarded("reading an anthropic request's hints", api.request_hints, kwargs)
    return guarded("passing call hints", api.attach_hints, hints) if hints else None


def _detach_hints(token: object | None) -> None:
    if token is not None:
        guarded("clearing call hints", api.detach_hints, token)


def _hinted(kwargs: Mapping[str, Any], call: Callable[[], Any]) -> Any:
    """`call()` with the request's hints in the context, where the SDK starts its span."""
    token = _attach_hints(kwargs)
    try:
        return call()
    finally:
        _detach_hints(token)


async def _ahinted(kwargs: Mapping[str, Any], call: Callable[[], Awaitable[Any]]) -> Any:
    token = _attach_hints(kwargs)
    try:
        return await call()
    finally:
        _detach_hints(token)


# --- the SDK does not trace: spancost's span -------------------------------------------------------


def _request(client: Any, kwargs: Mapping[str, Any], stream: bool) -> tuple[Request | None, bool]:
    """The span's (provider, model, start attributes), and whether content is recorded on it."""
    capture = capture_content()
    request = guarded("reading an anthropic request", api.request_attributes, client, kwargs, stream)
    if request is None:
        return None, capture
    provider, model, values = request
    values.update(guarded("reading an anthropic request's hints", api.request_hints, kwargs) or {})
    if capture:
        values.update(guarded("reading an anthropic request's content", request_content, kwargs) or {})
    return (provider, model, values), capture


def _finish(capture: bool) -> ResultHandler:
    """End the call with what a returned `Message` says."""

    def handle(call: InferenceCall, result: Any) -> Any:
        values = dict(guarded("reading an anthropic response", api.response_attributes, result) or {})
        if capture:
            values.update(guarded("reading an anthropic response's content", response_content, result) or {})
        call.end(values)
        return result

    return handle


def _stream_result(capture: bool) -> ResultHandler:
    """Hand a returned stream to a proxy that ends the call when the stream ends."""

    def handle(call: InferenceCall, result: Any) -> Any:
        proxy = traced_stream(result, call, MessageEvents(capture))
        return proxy if proxy is not None else _finish(capture)(call, result)

    return handle


def _helper_result(call: InferenceCall, message_stream: Any, capture: bool) -> Any:
    """Trace the raw events under a `messages.stream()` helper; the caller keeps the helper itself."""
    if not trace_helper_stream(message_stream, call, MessageEvents(capture)):
        call.end()
    return message_stream


def _on_result(capture: bool, stream: bool) -> ResultHandler:
    return _stream_result(capture) if stream else _finish(capture)


# --- wrapper factories --------------------------------------------------------------------------------


def messages_create(tracer: trace.Tracer) -> Wrapper:
    """The wrapper of `Messages.create` and `Messages.parse` (stable and beta)."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        pipeline_ready()
        client = getattr(instance, "_client", None)
        if sdk_traces(client):
            return _hinted(kwargs, functools.partial(wrapped, *args, **kwargs))
        stream = bool(kwargs.get("stream"))
        request, capture = _request(client, kwargs, stream)
        return call_in_span(tracer, _CHAT, request, _on_result(capture, stream), wrapped, args, kwargs)

    return wrapper


def async_messages_create(tracer: trace.Tracer) -> Wrapper:
    """The wrapper of `AsyncMessages.create` and `AsyncMessages.parse`: a coroutine, so that hints and the
    span hold while the SDK's coroutine runs, not only while it is created."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        pipeline_ready()
        client = getattr(instance, "_client", None)
        if sdk_traces(client):
            return await _ahinted(kwargs, functools.partial(wrapped, *args, **kwargs))
        stream = bool(kwargs.get("stream"))
        request, capture = _request(client, kwargs, stream)
        return await acall_in_span(tracer, _CHAT, request, _on_result(capture, stream), wrapped, args, kwargs)

    return wrapper


def messages_stream(tracer: trace.Tracer) -> Wrapper:
    """The wrapper of `Messages.stream`: the request is made when the returned manager is entered."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        pipeline_ready()
        manager = wrapped(*args, **kwargs)
        client = getattr(instance, "_client", None)
        return TracedStreamManager(manager, functools.partial(_enter, tracer, client, kwargs))

    return wrapper


def _enter(tracer: trace.Tracer, client: Any, kwargs: Mapping[str, Any], enter: Callable[[], Any]) -> Any:
    if sdk_traces(client):
        return _hinted(kwargs, enter)
    request, capture = _request(client, kwargs, True)
    return call_in_span(
        tracer, _CHAT, request, lambda call, stream: _helper_result(call, stream, capture), enter, (), {}
    )


def async_messages_stream(tracer: trace.Tracer) -> Wrapper:
    """The wrapper of `AsyncMessages.stream` (a plain method returning an async context manager)."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        pipeline_ready()
        manager = wrapped(*args, **kwargs)
        client = getattr(instance, "_client", None)
        return AsyncTracedStreamManager(manager, functools.partial(_aenter, tracer, client, kwargs))

    return wrapper


async def _aenter(
    tracer: trace.Tracer, client: Any, kwargs: Mapping[str, Any], enter: Callable[[], Awaitable[Any]]
) -> Any:
    if sdk_traces(client):
        return await _ahinted(kwargs, enter)
    request, capture = _request(client, kwargs, True)
    return await acall_in_span(
        tracer, _CHAT, request, lambda call, stream: _helper_result(call, stream, capture), enter, (), {}
    )
