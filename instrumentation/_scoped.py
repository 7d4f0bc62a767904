"""Run a function of any kind inside an activity: tags in force, or a span open and current.

An activity begins once per call, is entered around every run of the body (`step`) and finishes
once, with the error the call ended with, if any. Plain and coroutine functions are one step.
Generators and async generators begin at their first item, run each step inside the activity and
leave it between items, so the activity never leaks into the caller's code between two items; they
finish when exhausted, closed (also by garbage collection) or failed.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Activity(Protocol):
    def step(self) -> AbstractContextManager[Any]:
        """Entered around each run of the body."""

    def finish(self, error: BaseException | None) -> None:
        """Called once, when the call or the generator ends."""


Begin = Callable[[], Activity]


def scoped(func: F, begin: Begin) -> F:
    """`func` wrapped so that every call runs inside a new activity from `begin()`."""
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            return _steps_async(func(*args, **kwargs), begin)

        return agen_wrapper  # type: ignore[return-value]
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            return _steps(func(*args, **kwargs), begin)

        return gen_wrapper  # type: ignore[return-value]
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            activity = begin()
            try:
                with activity.step():
                    result = await func(*args, **kwargs)
            except BaseException as error:
                activity.finish(error)
                raise
            activity.finish(None)
            return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        activity = begin()
        try:
            with activity.step():
                result = func(*args, **kwargs)
        except BaseException as error:
            activity.finish(error)
            raise
        activity.finish(None)
        return result

    return wrapper  # type: ignore[return-value]


def _steps(gen: Generator[Any, Any, Any], begin: Begin) -> Generator[Any, Any, Any]:
    activity = begin()
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            with activity.step():
                try:
                    item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
                except StopIteration as stop:
                    result = stop.value
                    break
            to_throw = None
            try:
                to_send = yield item
            except GeneratorExit:
                with activity.step():
                    gen.close()
                raise
            except BaseException as exc:
                to_throw = exc
    except GeneratorExit:
        activity.finish(None)
        raise
    except BaseException as error:
        activity.finish(error)
        raise
    activity.finish(None)
    return result


async def _steps_async(agen: AsyncGenerator[Any, Any], begin: Begin) -> AsyncGenerator[Any, Any]:
    activity = begin()
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            with activity.step():
                try:
                    item = await (agen.athrow(to_throw) if to_throw is not None else agen.asend(to_send))
                except StopAsyncIteration:
                    break
            to_throw = None
            try:
                to_send = yield item
            except GeneratorExit:
                with activity.step():
                    await agen.aclose()
                raise
            except BaseException as exc:
                to_throw = exc
    except GeneratorExit:
        activity.finish(None)
        raise
    except BaseException as error:
        activity.finish(error)
        raise
    activity.finish(None)
