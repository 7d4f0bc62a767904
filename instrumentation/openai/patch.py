"""Wrapper factories for the openai SDK's methods, sync and async.

Each wrapper reads the request, starts the call's span (`call_in_span` / `acall_in_span`), calls
the SDK, and hands the result to `_Call`: a stream goes back inside a proxy that ends the call
when the stream ends, anything else is read and the call ends at once. Extractors are looked up
on the `spancost.instrumentation.openai` package at call time, so replacing one there (a test
injecting a fault, a user adding attributes) takes effect on the next call.

A chat stream whose caller did not ask for usage is sent with `stream_options.include_usage` when
the host accepts it; the copy of the arguments that asks is made only inside the call's own span,
where the stream is sure to be proxied and the extra usage-only chunk hidden from the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from spancost import attributes as attr
from spancost.instrumentation import openai as package
from spancost.instrumentation._inference import (
    InferenceCall,
    acall_in_span,
    call_in_span,
    capture_content,
    guarded,
)
from spancost.instrumentation._patching import WrapperFactory
from spancost.instrumentation._stream import TracedStream
from spancost.instrumentation.openai import extract
from spancost.instrumentation.openai.stream import (
    AsyncStreamManager,
    AsyncStreamWithAclose,
    ChatStreamHooks,
    ResponseStreamHooks,
    StreamManager,
    UsageChunkFilter,
)
from spancost.instrumentation.pipeline import pipeline_ready


@dataclass(frozen=True, slots=True)
class Api:
    """One API of the SDK: its operation name, its extractors (names in the package), its stream hooks."""

    name: str
    operation: str
    request: str
    response: str
    hooks: type[ChatStreamHooks] | type[ResponseStreamHooks] | None


CHAT = Api(
    "chat", attr.Operation.CHAT.value, "chat_request_attributes", "chat_response_attributes", ChatStreamHooks
)
RESPONSES = Api(
    "responses",
    attr.Operation.CHAT.value,
    "responses_request_attributes",
    "responses_response_attributes",
    ResponseStreamHooks,
)
EMBEDDINGS = Api(
    "embeddings",
    attr.Operation.EMBEDDINGS.value,
    "embeddings_request_attributes",
    "embeddings_response_attributes",
    None,
)

_stream_classes: tuple[type, type] | None = None


def _streams() -> tuple[type, type]:
    """The SDK's `Stream` and `AsyncStream`, imported on first use (this module imports without openai)."""
    global _stream_classes
    if _stream_classes is None:
        from openai import AsyncStream as SdkAsyncStream
        from openai import Stream as SdkStream

        _stream_classes = (SdkStream, SdkAsyncStream)
    return _stream_classes


class _Call:
    """One SDK call: how its arguments are sent, and what its result becomes (the `ResultHandler`)."""

    __slots__ = ("api", "capture", "injected", "outer", "wants_usage")

    def __init__(self, api: Api, wants_usage: bool, capture: bool) -> None:
        self.api = api
        self.wants_usage = wants_usage
        self.capture = capture
        self.injected = False
        self.outer: Any = None

    def send(self, wrapped: Callable[..., Any]) -> Callable[..., Any]:
        """What `call_in_span` calls: the SDK method, asking for stream usage inside the call's span."""
        if not self.wants_usage:
            return wrapped

        def send(*args: Any, **kwargs: Any) -> Any:
            # A span other than the caller's is current only when the call's span was started; then,
            # and only then, the result reaches `__call__` and the usage-only chunk can be hidden.
            if trace.get_current_span() is not self.outer:
                asking = guarded("asking for stream usage", extract.with_stream_usage, kwargs)
                if asking is not None:
                    kwargs, self.injected = asking, True
            return wrapped(*args, **kwargs)

        return send

    def __call__(self, call: InferenceCall, result: Any) -> Any:
        hooks = self.api.hooks
        if hooks is not None:
            sync_stream, async_stream = _streams()
            skip = UsageChunkFilter() if self.injected else None
            if isinstance(result, sync_stream):
                return TracedStream(result, call, hooks(self.capture), skip)
            if isinstance(result, async_stream):
                return AsyncStreamWithAclose(result, call, hooks(self.capture), skip)
        response_attributes = getattr(package, self.api.response)
        if hasattr(result, "http_response"):  # with_raw_response / with_streaming_response
            what = f"reading a raw openai {self.api.name} response"
            call.end(guarded(what, extract.raw_response_attributes, result, response_attributes))
        else:
            call.end(guarded(f"reading an openai {self.api.name} response", response_attributes, result))
        return result


def _plan(api: Api, instance: Any, kwargs: dict[str, Any]) -> tuple[Any, _Call] | None:
    client = getattr(instance, "_client", None)
    request = guarded(f"reading an openai {api.name} request", getattr(package, api.request), client, kwargs)
    if request is None:
        return None
    wants_usage = api is CHAT and guarded("checking stream usage", extract.wants_stream_usage, client, kwargs)
    # Streams decide once whether to keep content; extractors of whole responses ask themselves.
    capture = api.hooks is not None and kwargs.get("stream") is True and capture_content()
    return request, _Call(api, wants_usage is True, capture)


def sync_call(api: Api) -> WrapperFactory:
    """The wrapper of a sync method that makes one model call (`create`, `parse`)."""

    def factory(tracer: trace.Tracer) -> Callable[..., Any]:
        def wrapper(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            pipeline_ready()
            plan = _plan(api, instance, kwargs)
            if plan is None:
                return wrapped(*args, **kwargs)
            request, call = plan
            call.outer = trace.get_current_span()
            return call_in_span(tracer, api.operation, request, call, call.send(wrapped), args, kwargs)

        return wrapper

    return factory


def async_call(api: Api) -> WrapperFactory:
    """The wrapper of an async method that makes one model call: returns the coroutine to await."""

    def factory(tracer: trace.Tracer) -> Callable[..., Any]:
        def wrapper(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            pipeline_ready()
            plan = _plan(api, instance, kwargs)
            if plan is None:
                return wrapped(*args, **kwargs)
            request, call = plan
            return _traced(tracer, api, request, call, wrapped, args, kwargs)

        return wrapper

    return factory


async def _traced(
    tracer: trace.Tracer,
    api: Api,
    request: Any,
    call: _Call,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    # The caller's span is read when the coroutine runs: the async stream helpers call `create`
    # in `.stream()` and await it later, in `__aenter__`, perhaps under another span.
    call.outer = trace.get_current_span()
    return await acall_in_span(tracer, api.operation, request, call, call.send(wrapped), args, kwargs)


def stream_helper(tracer: trace.Tracer) -> Callable[..., Any]:
    """The wrapper of `.stream()`: the call itself is traced in `create`; this ends it with the block."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        manager = wrapped(*args, **kwargs)
        proxy = guarded("wrapping an openai stream helper", _managed, manager)
        return manager if proxy is None else proxy

    return wrapper


def _managed(manager: Any) -> Any:
    return AsyncStreamManager(manager) if hasattr(manager, "__aenter__") else StreamManager(manager)
