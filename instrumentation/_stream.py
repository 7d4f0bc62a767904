"""Stream proxies: the SDK's own stream object, seen through, ending the call's span exactly once.

`TracedStream` and `AsyncTracedStream` are `wrapt.ObjectProxy` subclasses, so `isinstance`, every
attribute and method of the SDK stream (`response`, `get_final_message()`, ...) keep working. They
yield exactly the items the stream yields, in order, and raise exactly what it raises. Three hooks
do spancost's work: `on_item` sees each item, `on_end` returns the attributes to record when the
stream ends (usage, finish reasons), and `skip` can hide an item spancost itself asked for (the
usage-only chunk of an OpenAI stream whose caller did not ask for usage). A hook that raises is
logged once and ignored. The call ends when the stream is exhausted, fails, is closed, its `with`
block is left, or the proxy is garbage-collected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import wrapt

from spancost._log import log_once
from spancost.instrumentation._inference import InferenceCall

logger = logging.getLogger("spancost.instrumentation")


class StreamHooks(Protocol):
    def on_item(self, item: Any) -> None:
        """Called with every item the stream yields (before `skip`)."""

    def on_end(self) -> Mapping[str, Any]:
        """The attributes to record when the stream ends, however it ends (partial on early exit)."""


def _safely(what: str, func: Callable[..., Any], *args: Any) -> Any:
    try:
        return func(*args)
    except Exception:
        log_once(
            logger,
            f"stream:{what}",
            "spancost: %s failed in a stream; the stream goes on",
            what,
            exc_info=True,
        )
        return None


class _Finisher:
    """The shared end-of-stream logic of the sync and async proxies."""

    @staticmethod
    def finish(proxy: Any, error: BaseException | None = None) -> None:
        call: InferenceCall | None = getattr(proxy, "_self_call", None)
        if call is None or call.ended:
            return
        attributes = _safely("reading the stream's end", proxy._self_hooks.on_end)
        call.end(attributes, error)


class TracedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """A sync SDK stream that ends its call's span when it ends."""

    def __init__(
        self, stream: Any, call: InferenceCall, hooks: StreamHooks, skip: Callable[[Any], bool] | None = None
    ) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_hooks = hooks
        self._self_skip = skip

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                item = self.__wrapped__.__next__()
            except StopIteration:
                _Finisher.finish(self)
                raise
            except BaseException as error:
                _Finisher.finish(self, error)
                raise
            self._self_call.chunk()
            _safely("reading a chunk", self._self_hooks.on_item, item)
            if self._self_skip is None or not _safely("filtering a chunk", self._self_skip, item):
                return item

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            _Finisher.finish(self)

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
        # An exception in the caller's block is the caller leaving early, not the call failing.
        try:
            return self.__wrapped__.__exit__(exc_type, exc, traceback)
        finally:
            _Finisher.finish(self)

    def __del__(self) -> None:
        # Dropped without being read to the end or closed: the call still ends, with what it saw.
        _Finisher.finish(self)


class AsyncTracedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """An async SDK stream that ends its call's span when it ends."""

    def __init__(
        self, stream: Any, call: InferenceCall, hooks: StreamHooks, skip: Callable[[Any], bool] | None = None
    ) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_hooks = hooks
        self._self_skip = skip

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                item = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                _Finisher.finish(self)
                raise
            except BaseException as error:
                _Finisher.finish(self, error)
                raise
            self._self_call.chunk()
            _safely("reading a chunk", self._self_hooks.on_item, item)
            if self._self_skip is None or not _safely("filtering a chunk", self._self_skip, item):
                return item

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            _Finisher.finish(self)

    async def aclose(self) -> None:
        # The SDK's own aclose() calls close() on the unwrapped stream, which would bypass the proxy.
        await self.close()

    async def __aenter__(self) -> AsyncTracedStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, traceback)
        finally:
            _Finisher.finish(self)

    def __del__(self) -> None:
        _Finisher.finish(self)
