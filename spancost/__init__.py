"""spancost: LLM spend made visible on OpenTelemetry.

import spancost
spancost.instrument()                       # every openai / anthropic call becomes a priced span
with spancost.tags(prompt="summarize", user_id=user.id, workspace_id=org.id):
    client.chat.completions.create(...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from spancost.instrumentation import (
        SpancostSpanProcessor,
        agent,
        instrument,
        record_eval,
        run,
        tags,
        tool,
        uninstrument,
        workflow,
    )

__all__ = [
    "SpancostSpanProcessor",
    "__version__",
    "agent",
    "instrument",
    "record_eval",
    "run",
    "tags",
    "tool",
    "uninstrument",
    "workflow",
]

# Loaded on first use, so that `import spancost` (the CLI, the pricing engine) stays light.
_LAZY = {
    "instrument",
    "uninstrument",
    "tags",
    "run",
    "agent",
    "workflow",
    "tool",
    "record_eval",
    "SpancostSpanProcessor",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from spancost import instrumentation

        return getattr(instrumentation, name)
    raise AttributeError(f"module 'spancost' has no attribute {name!r}")
