"""Run a function of any kind inside a scope (a context manager entered per call).

Plain and coroutine functions hold the scope for the whole call. Generators and async generators
hold it only while their body runs: each step enters and leaves it, so that the scope never leaks
into the caller's code between two items.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
Scope = Callable[[], AbstractContextManager[Any]]


def scoped(func: F, scope: Scope) -> F:
    """`func` wrapped so that every call (or every step, for generators) runs inside `scope()`."""
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            return _step_async(func(*args, **kwargs), scope)

        return agen_wrapper  # type: ignore[return-value]
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            return _step(func(*args, **kwargs), scope)

        return gen_wrapper  # type: ignore[return-value]
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with scope():
                return await func(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with scope():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _step(gen: Generator[Any, Any, Any], scope: Scope) -> Generator[Any, Any, Any]:
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        with scope():
            try:
                item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
            except StopIteration as stop:
                return stop.value
        to_throw = None
        try:
            to_send = yield item
        except GeneratorExit:
            with scope():
                gen.close()
            raise
        except BaseException as exc:
            to_throw = exc


async def _step_async(agen: AsyncGenerator[Any, Any], scope: Scope) -> AsyncGenerator[Any, Any]:
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        with scope():
            try:
                item = await (agen.athrow(to_throw) if to_throw is not None else agen.asend(to_send))
            except StopAsyncIteration:
                return
        to_throw = None
        try:
            to_send = yield item
        except GeneratorExit:
            with scope():
                await agen.aclose()
            raise
        except BaseException as exc:
            to_throw = exc
