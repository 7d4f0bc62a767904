"""Anthropic SDK instrumentation: exactly one priced inference span per model call, however it is made.

Covered: `messages.create` (sync and async, with and without `stream=True`), `messages.parse`, the
`messages.stream()` helper (sync and async), the same methods under `beta.messages` (which the tool
runner and message threads call), on `Anthropic`, `AnthropicBedrock`, `AnthropicVertex` and the
other clients built on the same resource classes.

Current anthropic SDKs trace themselves: every call gets the SDK's own semantic-convention span
(`anthropic.messages.create`) on the global tracer provider, with usage and cache attributes, also
for streams (ended when the stream is read, closed or dropped). A second span for the same call
would double every count, so for a client that traces itself spancost adds no span: it passes call
hints (the system-prompt hash) through the context, and the span processor tags and prices the
SDK's span. Message content on that span follows the SDK's own switch
(`ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE=content`, or the client's `open_telemetry` option):
the SDK resolves it per client when the client is built, and spancost does not change a client the
user configured. For an SDK that does not trace (versions before 1.14, or `open_telemetry=False`),
spancost makes the span itself, with the same names and the same cost, and records content only when
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT opts in.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Iterator, Sequence

from spancost.instrumentation._patching import Patch, PatchingInstrumentor
from spancost.instrumentation.anthropic.extract import (
    request_attributes,
    request_hints,
    response_attributes,
    sdk_traces,
)
from spancost.instrumentation.anthropic.patch import (
    async_messages_create,
    async_messages_stream,
    messages_create,
    messages_stream,
)
from spancost.instrumentation.tags import attach_hints, detach_hints

__all__ = [
    "AnthropicInstrumentor",
    "attach_hints",
    "detach_hints",
    "request_attributes",
    "request_hints",
    "response_attributes",
    "sdk_traces",
]

# Modules whose `Messages` / `AsyncMessages` classes define the message methods. The platform beta
# classes copy the first-party functions into their own dicts when `anthropic` is imported (before
# any patch), so they are patched in their own right.
_MESSAGE_MODULES = (
    "anthropic.resources.messages.messages",
    "anthropic.resources.beta.messages.messages",
    "anthropic.lib.bedrock._beta_messages",
    "anthropic.lib.vertex._beta_messages",
)

PATCHES: tuple[Patch, ...] = tuple(
    Patch(module, owner, method, factory)
    for module in _MESSAGE_MODULES
    for owner, method, factory in (
        ("Messages", "create", messages_create),
        ("Messages", "parse", messages_create),
        ("Messages", "stream", messages_stream),
        ("AsyncMessages", "create", async_messages_create),
        ("AsyncMessages", "parse", async_messages_create),
        ("AsyncMessages", "stream", async_messages_stream),
    )
)
"""Every method spancost wraps, where the installed SDK version defines it."""


def available_patches(patches: Sequence[Patch] = PATCHES) -> Iterator[Patch]:
    """The patches whose method the installed SDK defines (older versions lack `parse` or the beta
    resources). Only methods defined on the class itself, so that no inherited one is shadowed."""
    for patch in patches:
        try:
            module = importlib.import_module(patch.module)
        except ImportError:
            continue
        owner = getattr(module, patch.owner, None)
        if owner is not None and patch.method in vars(owner):
            yield patch


class AnthropicInstrumentor(PatchingInstrumentor):
    """Prices the anthropic SDK's spans, or makes them where the SDK does not
    (registered as `spancost_anthropic` for `opentelemetry-instrument`)."""

    scope = __name__

    @property
    def patches(self) -> Sequence[Patch]:  # type: ignore[override]
        # Read at instrument and uninstrument time only; a wrapped method is still in its class dict,
        # so both see the same list.
        return tuple(available_patches())

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 0.30",)
