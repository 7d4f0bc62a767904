"""Streams: hooks that read chat chunks and Responses events, and proxies for the stream helpers.

The shared `TracedStream` / `AsyncTracedStream` proxies yield exactly what the SDK stream yields and
end the call once; the hooks here only look. `ChatStreamHooks` keeps the last chunk's usage (the
usage-only chunk that `stream_options.include_usage` adds), the model, id and finish reasons;
`ResponseStreamHooks` keeps the response of the final event (`response.completed`, `.incomplete`
or `.failed`), which carries the usage. `UsageChunkFilter` hides the usage-only chunk spancost
asked for when the caller did not.

The `.stream()` helpers (`ChatCompletionStreamManager`, `ResponseStreamManager`) call `create`, so
their call is traced there; but on leaving their `with` block they close only the HTTP response,
not the stream object. `StreamManager` / `AsyncStreamManager` end the call right there instead of
waiting for garbage collection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import wrapt

from spancost import attributes as attr
from spancost._log import log_once
from spancost.instrumentation._stream import AsyncTracedStream, TracedStream
from spancost.instrumentation.openai import extract
from spancost.instrumentation.openai.content import ChatStreamOutput

logger = logging.getLogger("spancost.instrumentation.openai")

_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ChatStreamHooks:
    """Reads `ChatCompletionChunk`s as they pass."""

    __slots__ = ("_id", "_model", "_output", "_reasons", "_tier", "_usage")

    def __init__(self, capture: bool = False) -> None:
        self._model: Any = None
        self._id: Any = None
        self._tier: Any = None
        self._usage: Any = None
        self._reasons: dict[int, str] = {}
        self._output = ChatStreamOutput() if capture else None

    def on_item(self, chunk: Any) -> None:
        if self._model is None:
            self._model = getattr(chunk, "model", None)
            self._id = getattr(chunk, "id", None)
            self._tier = getattr(chunk, "service_tier", None)
        for choice in getattr(chunk, "choices", None) or ():
            reason = getattr(choice, "finish_reason", None)
            if reason:
                self._reasons[getattr(choice, "index", 0)] = reason
            if self._output is not None:
                self._output.add(choice)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
            # The tier that served the call is final on the chunk that carries the usage.
            self._tier = getattr(chunk, "service_tier", None) or self._tier

    def on_end(self) -> Mapping[str, Any]:
        values: dict[str, Any] = {}
        if isinstance(self._model, str) and self._model:
            values[attr.GEN_AI_RESPONSE_MODEL] = self._model
        if isinstance(self._id, str) and self._id:
            values[attr.GEN_AI_RESPONSE_ID] = self._id
        if self._reasons:
            values[attr.GEN_AI_RESPONSE_FINISH_REASONS] = [str(r) for _, r in sorted(self._reasons.items())]
        if isinstance(self._tier, str):
            values[attr.OPENAI_RESPONSE_SERVICE_TIER] = self._tier
        if self._usage is not None:
            values.update(extract.openai_usage_attributes(self._usage))
        if self._output is not None:
            values.update(self._output.attributes())
        return values


class ResponseStreamHooks:
    """Reads Responses API stream events as they pass."""

    __slots__ = ("_response",)

    def __init__(self, capture: bool = False) -> None:
        # Content capture is decided by the response extractor; the final response holds the output.
        self._response: Any = None

    def on_item(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        # response.created gives model and id to a stream that stops before its final event.
        if kind in _FINAL_EVENTS or (kind == "response.created" and self._response is None):
            self._response = getattr(event, "response", None)

    def on_end(self) -> Mapping[str, Any]:
        return extract.responses_response_attributes(self._response) if self._response is not None else {}


def is_usage_only_chunk(chunk: Any) -> bool:
    """The chunk `include_usage` adds at the end of a chat stream: no choices, usage set."""
    return not chunk.choices and chunk.usage is not None


class UsageChunkFilter:
    """The `skip` hook for a stream whose usage spancost asked for: hides the usage-only chunk.

    If the check fails, the chunk is still hidden when its fields say it is that chunk: showing
    the caller a chunk it never asked for (with no choices) could break its code.
    """

    __slots__ = ()

    def __call__(self, chunk: Any) -> bool:
        try:
            return is_usage_only_chunk(chunk)
        except Exception:
            log_once(logger, "openai.usage-filter", "spancost: could not check a chat chunk", exc_info=True)
            fields = getattr(chunk, "__dict__", None) or {}
            return not fields.get("choices") and fields.get("usage") is not None


class AsyncStreamWithAclose(AsyncTracedStream):
    """`AsyncTracedStream` that also ends the call on `aclose()`, the SDK's alias of `close()`."""

    async def aclose(self) -> None:
        await self.close()


def _traced_raw_stream(helper: Any) -> Any:
    # The helper keeps the stream `create` returned: a traced one when spancost made the call.
    raw = getattr(helper, "_raw_stream", None)
    return raw if isinstance(raw, (TracedStream, AsyncTracedStream)) else None


def _guarded_close(close: Any) -> None:
    # The helper already closed the response; this second close only ends the call. Never raises.
    try:
        close()
    except Exception:
        log_once(
            logger, "openai.helper-close", "spancost: could not end a stream helper's call", exc_info=True
        )


async def _guarded_aclose(close: Any) -> None:
    try:
        await close()
    except Exception:
        log_once(
            logger, "openai.helper-close", "spancost: could not end a stream helper's call", exc_info=True
        )


class StreamManager(wrapt.ObjectProxy):  # type: ignore[misc]
    """The SDK's `.stream()` manager, unchanged, except that leaving its block ends the call."""

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        self._self_helper: Any = None

    def __enter__(self) -> Any:
        self._self_helper = self.__wrapped__.__enter__()
        return self._self_helper

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, traceback)
        finally:
            raw = _traced_raw_stream(self._self_helper)
            if raw is not None:
                _guarded_close(raw.close)


class AsyncStreamManager(wrapt.ObjectProxy):  # type: ignore[misc]
    """The SDK's async `.stream()` manager, unchanged, except that leaving its block ends the call."""

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        self._self_helper: Any = None

    async def __aenter__(self) -> Any:
        self._self_helper = await self.__wrapped__.__aenter__()
        return self._self_helper

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, traceback)
        finally:
            raw = _traced_raw_stream(self._self_helper)
            if raw is not None:
                await _guarded_aclose(raw.close)
