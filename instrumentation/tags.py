"""Attribution tags: who and what caused a model call.

`with spancost.tags(prompt="summarize", user_id="u1", workspace_id="acme"):` puts the tags in the
OpenTelemetry context; the span processor copies them onto every span started inside. Because the
context lives in contextvars, tags follow the code into asyncio tasks and into threads that copy
the context (`contextvars.copy_context().run`, `opentelemetry.context` propagation), and nested
`tags` blocks merge, the inner value winning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, TypeVar

from opentelemetry import context as otel_context

from spancost.attributes import TAG_ATTRIBUTES
from spancost.instrumentation._scoped import scoped

_TAGS_KEY = otel_context.create_key("spancost.tags")
_HINTS_KEY = otel_context.create_key("spancost.call_hints")

F = TypeVar("F", bound=Callable[..., Any])

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _attributes(tags: Mapping[str, Any]) -> dict[str, str]:
    unknown = sorted(set(tags) - set(TAG_ATTRIBUTES))
    if unknown:
        raise TypeError(
            f"spancost.tags() got unknown tag(s) {', '.join(unknown)}; "
            f"known tags: {', '.join(TAG_ATTRIBUTES)}"
        )
    return {TAG_ATTRIBUTES[name]: str(value) for name, value in tags.items() if value is not None}


class tags:
    """Tag every span started inside: a context manager and a decorator.

    Keywords: prompt, prompt_version, user_id, workspace_id, feature, experiment_variant,
    entry_point, run_id. `None` values are ignored. Works on functions, coroutine functions,
    generators and async generators (the tags hold while the body runs, across awaits and yields).
    """

    def __init__(self, **values: Any) -> None:
        self._attributes = _attributes(values)
        self._open: list[_TagActivity] = []

    def __enter__(self) -> None:
        activity = _TagActivity(self._attributes)
        activity.enter()
        self._open.append(activity)

    def __exit__(self, *exc: Any) -> None:
        self._open.pop().leave()

    def __call__(self, func: F) -> F:
        attributes = self._attributes
        return scoped(func, lambda: _TagActivity(attributes))


def run(run_id: str) -> tags:
    """Mark everything inside as part of a golden-dataset run (`spancost.run.id`); like `tags(run_id=...)`."""
    return tags(run_id=run_id)


class _TagActivity:
    """The tags merged over those in force when the call began, attached for each step."""

    __slots__ = ("_merged", "_token")

    def __init__(self, attributes: Mapping[str, str]) -> None:
        self._merged = MappingProxyType({**current_tags(), **attributes})
        self._token: object = None

    def enter(self) -> None:
        self._token = otel_context.attach(otel_context.set_value(_TAGS_KEY, self._merged))

    def leave(self) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]

    @contextmanager
    def step(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def finish(self, error: BaseException | None) -> None:
        pass


def current_tags(ctx: otel_context.Context | None = None) -> Mapping[str, str]:
    """The tag attributes in force in `ctx` (default: the current context)."""
    value = otel_context.get_value(_TAGS_KEY, ctx)
    return value if value is not None else _EMPTY  # type: ignore[return-value]


def attach_hints(attributes: Mapping[str, Any]) -> object:
    """Put attributes in the context for the inference span that somebody else (an SDK) starts next.

    spancost's wrapper of an SDK that traces itself cannot touch that SDK's span, but it can see the
    request (the system prompt, say); the span processor applies these hints when the span starts.
    Returns the token for `detach_hints`.
    """
    return otel_context.attach(otel_context.set_value(_HINTS_KEY, attributes))


def detach_hints(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]


def current_hints(ctx: otel_context.Context | None = None) -> Mapping[str, Any]:
    value = otel_context.get_value(_HINTS_KEY, ctx)
    return value if value is not None else _EMPTY  # type: ignore[return-value]
