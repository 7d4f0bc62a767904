"""Prompt and completion text on other emitters' spans: removed unless the user opted in.

spancost records no content unless OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT says so, but
other instrumentations (OpenLLMetry, OpenLIT, the OTel genai utilities) may put it on their spans.
The in-process span processor and the collector both apply this one rule to such model-call spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from spancost import attributes as attr

SPANCOST_SCOPE_PREFIX = "spancost."
"""Instrumentation scopes of spancost's own spans, which carry content only when the application opted in
(so they are left as they are)."""


def is_content(key: str) -> bool:
    """Whether an attribute carries prompt or completion text."""
    known = _KNOWN.get(key)
    if known is None:
        known = (
            key in attr.CONTENT_ATTRIBUTES
            or key in attr.OLDER_CONTENT_ATTRIBUTES
            or key.startswith(attr.CONTENT_PREFIXES)
        )
        if len(_KNOWN) >= 10_000:  # keys are few; indexed ones (gen_ai.prompt.12.content) are bounded
            _KNOWN.clear()
        _KNOWN[key] = known
    return known


_KNOWN: dict[str, bool] = {}
"""Answers of `is_content` by key: this runs for every attribute of every model-call span."""


def has_content(attributes: Iterable[str], events: Sequence[Any]) -> bool:
    """Whether a span carries prompt or completion text (in its attributes, by key, or its events)."""
    return any(is_content(key) for key in attributes) or any(
        is_content_event(event.name) for event in events or ()
    )


def without_content(attributes: dict[str, Any], events: Sequence[Any]) -> Sequence[Any] | None:
    """Remove prompt and completion text that another instrumentation put on a model-call span: the
    content attributes are deleted from `attributes` (in place) and `gen_ai.*` events are left out.
    Returns the remaining events when anything was removed, else None. `events` are any objects with
    a `name` (SDK events, the collector's OTLP events)."""
    content = [key for key in attributes if is_content(key)]
    for key in content:
        del attributes[key]
    if not events:
        return () if content else None
    kept = tuple(event for event in events if not is_content_event(event.name))
    return kept if content or len(kept) != len(events) else None


def is_content_event(name: str | bytes) -> bool:
    """Whether an event on a model-call span carries content (`gen_ai.*` events); `name` as text or, from
    the collector's protobuf, as UTF-8 bytes."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return name.startswith(attr.CONTENT_EVENT_PREFIX)
