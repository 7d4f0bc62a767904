"""An instrumentor is a list of patches: `_instrument` wraps each, `_uninstrument` unwraps the same list."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from spancost import __version__
from spancost.instrumentation.pipeline import ensure_pipeline

WrapperFactory = Callable[[trace.Tracer], Callable[..., Any]]


@dataclass(frozen=True)
class Patch:
    """`module.owner.method` is replaced by the wrapper that `factory(tracer)` makes."""

    module: str
    owner: str
    method: str
    factory: WrapperFactory


class PatchingInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Installs the spancost stage, then wraps every patch in `patches` with a tracer of its own scope."""

    patches: ClassVar[Sequence[Patch]] = ()
    scope: ClassVar[str] = "spancost.instrumentation"

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider = kwargs.get("tracer_provider")
        ensure_pipeline(tracer_provider)
        tracer = trace.get_tracer(self.scope, __version__, tracer_provider=tracer_provider)
        for patch in self.patches:
            wrap_function_wrapper(patch.module, f"{patch.owner}.{patch.method}", patch.factory(tracer))

    def _uninstrument(self, **kwargs: Any) -> None:
        for patch in self.patches:
            unwrap(getattr(importlib.import_module(patch.module), patch.owner), patch.method)
