"""Streamed messages: the hooks that read a stream's events into its span, and the proxies around them.

A `messages.create(stream=True)` call returns the SDK's `Stream`; spancost hands back a
`TracedStream` over it (shared with the other providers), which yields exactly the SDK's events and
ends the call's span when the stream ends. The `messages.stream()` helper returns a manager whose
`__enter__` makes the request and returns a `MessageStream` that reads the raw `Stream` itself
(`text_stream`, `get_final_message()` and `until_done()` never pass through an outer proxy), so
spancost wraps the raw stream inside it instead, and the helper keeps its own objects.

Anthropic's usage is split across events: `message_start` carries the input and cache counts and a
first output count, `message_delta` carries cumulative counts (the total so far, not an increment),
so the last value seen of each is the call's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import wrapt

from spancost import attributes as attr
from spancost.instrumentation._inference import InferenceCall
from spancost.instrumentation._stream import AsyncTracedStream, TracedStream
from spancost.instrumentation.anthropic.extract import field, output_content, usage_response_attributes

# Usage fields as `message_start` gives them; `message_delta` overwrites those it carries (non-null).
_START_USAGE = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "output_tokens_details",
    "service_tier",
)
_DELTA_USAGE = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens_details",
)


class MessageEvents:
    """`StreamHooks` for a stream of raw message events: usage, id, model and stop reason (and, when the
    user opted in, the output content) as the caller reads them, recorded when the stream ends."""

    __slots__ = ("_blocks", "_capture", "_id", "_model", "_stop_reason", "_usage")

    def __init__(self, capture: bool = False) -> None:
        self._capture = capture
        self._usage: dict[str, Any] = {}
        self._id: str | None = None
        self._model: str | None = None
        self._stop_reason: str | None = None
        # Content blocks by index, only when capturing: {"type", "text"/"thinking"/"id"/"name"/"json"}.
        self._blocks: dict[int, dict[str, Any]] = {}

    def on_item(self, event: Any) -> None:
        kind = field(event, "type")
        if kind == "message_start":
            self._message_start(field(event, "message"))
        elif kind == "message_delta":
            self._message_delta(event)
        elif self._capture and kind == "content_block_start":
            self._block_start(field(event, "index"), field(event, "content_block"))
        elif self._capture and kind == "content_block_delta":
            self._block_delta(field(event, "index"), field(event, "delta"))

    def _message_start(self, message: Any) -> None:
        self._id = field(message, "id")
        self._model = field(message, "model")
        usage = field(message, "usage")
        self._usage = {name: field(usage, name) for name in _START_USAGE}

    def _message_delta(self, event: Any) -> None:
        stop_reason = field(field(event, "delta"), "stop_reason")
        if stop_reason is not None:
            self._stop_reason = stop_reason
        usage = field(event, "usage")
        for name in _DELTA_USAGE:
            value = field(usage, name)
            if value is not None:
                self._usage[name] = value

    def _block_start(self, index: Any, block: Any) -> None:
        kind = field(block, "type")
        state: dict[str, Any] = {"type": kind}
        for name in ("text", "thinking", "id", "name", "input", "tool_use_id", "content", "source"):
            value = field(block, name)
            if value is not None:
                state[name] = value
        self._blocks[index] = state

    def _block_delta(self, index: Any, delta: Any) -> None:
        state = self._blocks.get(index)
        if state is None:
            return
        kind = field(delta, "type")
        if kind == "text_delta":
            state["text"] = state.get("text", "") + (field(delta, "text") or "")
        elif kind == "thinking_delta":
            state["thinking"] = state.get("thinking", "") + (field(delta, "thinking") or "")
        elif kind == "input_json_delta":
            state["json"] = state.get("json", "") + (field(delta, "partial_json") or "")

    def on_end(self) -> Mapping[str, Any]:
        values: dict[str, Any] = {}
        if isinstance(self._id, str):
            values[attr.GEN_AI_RESPONSE_ID] = self._id
        if isinstance(self._model, str):
            values[attr.GEN_AI_RESPONSE_MODEL] = self._model
        if isinstance(self._stop_reason, str):
            values[attr.GEN_AI_RESPONSE_FINISH_REASONS] = [self._stop_reason]
        if any(value is not None for value in self._usage.values()):
            values.update(usage_response_attributes(self._usage))
        if self._capture and self._id is not None:
            values.update(output_content(self._content(), self._stop_reason))
        return values

    def _content(self) -> list[dict[str, Any]]:
        blocks = []
        for _, state in sorted(self._blocks.items()):
            block = dict(state)
            partial = block.pop("json", None)
            if partial:
                try:
                    block["input"] = json.loads(partial)
                except ValueError:
                    # Cut short before the tool input was complete: keep what arrived.
                    block["input"] = partial
            blocks.append(block)
        return blocks


def traced_stream(stream: Any, call: InferenceCall, hooks: MessageEvents) -> Any:
    """The proxy for the SDK stream `stream` (sync or async), or None when it is not a stream (a raw
    response asked for with `with_raw_response`)."""
    kind = type(stream)
    if hasattr(kind, "__anext__"):
        return AsyncTracedStream(stream, call, hooks)
    if hasattr(kind, "__next__"):
        return TracedStream(stream, call, hooks)
    return None


def trace_helper_stream(message_stream: Any, call: InferenceCall, hooks: MessageEvents) -> bool:
    """Route the raw events under a `MessageStream` (sync or async) through a traced proxy.

    The helper reads `_raw_stream` lazily, on the first event asked for, so swapping it right after
    `__enter__` sees every event. False when this helper has no raw stream to swap.
    """
    raw = getattr(message_stream, "_raw_stream", None)
    proxy = traced_stream(raw, call, hooks) if raw is not None else None
    if proxy is None:
        return False
    message_stream._raw_stream = proxy
    return True


Enter = Callable[[Callable[[], Any]], Any]
AsyncEnter = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


class TracedStreamManager(wrapt.ObjectProxy):  # type: ignore[misc]
    """The `MessageStreamManager` the SDK returned, whose `__enter__` (the request) runs through `enter`."""

    def __init__(self, manager: Any, enter: Enter) -> None:
        super().__init__(manager)
        self._self_enter = enter

    def __enter__(self) -> Any:
        return self._self_enter(self.__wrapped__.__enter__)

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
        return self.__wrapped__.__exit__(exc_type, exc, traceback)


class AsyncTracedStreamManager(wrapt.ObjectProxy):  # type: ignore[misc]
    """The `AsyncMessageStreamManager` the SDK returned, whose `__aenter__` runs through `enter`."""

    def __init__(self, manager: Any, enter: AsyncEnter) -> None:
        super().__init__(manager)
        self._self_enter = enter

    async def __aenter__(self) -> Any:
        return await self._self_enter(self.__wrapped__.__aenter__)

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
        return await self.__wrapped__.__aexit__(exc_type, exc, traceback)
