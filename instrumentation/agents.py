"""Agent, workflow and tool spans: the parents that model calls nest under.

`spancost.agent("planner")`, `spancost.workflow("triage")` and `spancost.tool("search")` are context
managers and decorators (functions, coroutines, generators, async generators, methods). Each opens
an INTERNAL span named `invoke_agent {name}`, `invoke_workflow {name}` or `execute_tool {name}`
with `gen_ai.operation.name` and `gen_ai.agent.name` / `gen_ai.tool.name`; model calls made inside
nest under it, and the span processor rolls their cost and tokens up onto agent and workflow spans.
`record_eval` attaches a quality result to the agent or call span in progress.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from spancost import __version__
from spancost import attributes as attr
from spancost._log import log_once
from spancost.instrumentation import _inference
from spancost.instrumentation._inference import READING_TAGS, guarded, record_error
from spancost.instrumentation._scoped import scoped

logger = logging.getLogger("spancost.instrumentation")

F = TypeVar("F", bound=Callable[..., Any])

# A proxy until an SDK tracer provider is set, then that provider's tracer: safe to take at import.
_tracer = trace.get_tracer("spancost.agents", __version__)


class _SpanActivity:
    """A span started when the call begins, current during each step, ended when the call ends."""

    __slots__ = ("span",)

    def __init__(self, operation: str, name: str, name_key: str, attributes: Mapping[str, Any]) -> None:
        # The context's tags go in with the start attributes (after them: a tag wins), one pass.
        tags = guarded(READING_TAGS, _inference.span_tags) or {}
        self.span: Span = _tracer.start_span(
            f"{operation} {name}",
            kind=SpanKind.INTERNAL,
            attributes={
                attr.GEN_AI_OPERATION_NAME: operation,
                name_key: name,
                **attributes,
                **tags,
            },
        )

    @contextmanager
    def step(self) -> Iterator[Span]:
        with trace.use_span(
            self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            yield self.span

    def finish(self, error: BaseException | None) -> None:
        if error is not None:
            record_error(self.span, error)
        self.span.end()


class _Operation:
    """One of agent / workflow / tool: a context manager (yielding the span) and a decorator."""

    operation = ""
    name_key = ""

    def __init__(self, name: str, **attributes: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"spancost.{type(self).__name__}() needs a non-empty name, got {name!r}")
        self.name = name
        self.attributes = {key: value for key, value in attributes.items() if value is not None}
        self._open: list[tuple[_SpanActivity, Any]] = []

    def _begin(self) -> _SpanActivity:
        return _SpanActivity(self.operation, self.name, self.name_key, self.attributes)

    def __enter__(self) -> Span:
        activity = self._begin()
        step = activity.step()
        span = step.__enter__()
        self._open.append((activity, step))
        return span

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        activity, step = self._open.pop()
        step.__exit__(exc_type, exc, traceback)
        activity.finish(exc)

    def __call__(self, func: F) -> F:
        return scoped(func, self._begin)


class agent(_Operation):
    """An agent run: `invoke_agent {name}`. Model calls inside roll up onto it."""

    operation = attr.Operation.INVOKE_AGENT.value
    name_key = attr.GEN_AI_AGENT_NAME


class workflow(_Operation):
    """A workflow run: `invoke_workflow {name}`. Model calls inside roll up onto it."""

    operation = attr.Operation.INVOKE_WORKFLOW.value
    name_key = attr.GEN_AI_WORKFLOW_NAME


class tool(_Operation):
    """A tool execution: `execute_tool {name}`."""

    operation = attr.Operation.EXECUTE_TOOL.value
    name_key = attr.GEN_AI_TOOL_NAME


def record_eval(*, passed: bool | None = None, score: float | None = None, name: str | None = None) -> bool:
    """Attach a quality result to the span in progress (an agent run, a tool, or your own span).

    Used by the regression gate to weigh cost against quality. Returns False (and logs once) when
    there is no span in progress to attach it to; never raises.
    """
    try:
        span = trace.get_current_span()
        if not span.is_recording():
            log_once(
                logger,
                "record_eval.no-span",
                "spancost.record_eval(): no span in progress; call it "
                "inside spancost.agent(...) or a span of your own",
            )
            return False
        values = {
            attr.EVAL_PASSED: passed,
            attr.EVAL_SCORE: None if score is None else float(score),
            attr.EVAL_NAME: name,
        }
        span.set_attributes({key: value for key, value in values.items() if value is not None})
        return True
    except Exception:
        log_once(logger, "record_eval", "spancost.record_eval() failed", exc_info=True)
        return False
