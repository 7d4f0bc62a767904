"""OpenAI SDK instrumentation: one priced inference span per model call, however the app calls it.

The openai SDK emits no spans of its own, so spancost patches it (wrapt): `chat.completions`
`create` / `parse` / `stream`, `responses` `create` / `parse` / `stream` and `embeddings.create`,
on the sync and async clients, streaming or not, plain or `with_raw_response`, against OpenAI,
Azure OpenAI or any OpenAI-compatible server. Each call becomes a CLIENT span named
`{operation} {model}` carrying the request's attributes and the response's model, id, finish
reasons and usage; the span processor prices it when it ends. Patches never price.

Modules: `patch` (wrappers), `extract` (SDK objects → attribute values), `content` (messages in
the semantic-convention shape, only when content capture is on), `stream` (stream hooks and the
stream-helper proxies). The extractors are re-exported here, and the wrappers look them up here.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Sequence

from spancost.instrumentation._patching import Patch, PatchingInstrumentor
from spancost.instrumentation.openai.extract import (
    chat_request_attributes,
    chat_response_attributes,
    embeddings_request_attributes,
    embeddings_response_attributes,
    provider_for_host,
    responses_request_attributes,
    responses_response_attributes,
)
from spancost.instrumentation.openai.patch import (
    CHAT,
    EMBEDDINGS,
    RESPONSES,
    async_call,
    stream_helper,
    sync_call,
)

__all__ = [
    "PATCHES",
    "OpenAIInstrumentor",
    "chat_request_attributes",
    "chat_response_attributes",
    "embeddings_request_attributes",
    "embeddings_response_attributes",
    "provider_for_host",
    "responses_request_attributes",
    "responses_response_attributes",
]

_CHAT = "openai.resources.chat.completions.completions"
_RESPONSES = "openai.resources.responses.responses"
_EMBEDDINGS = "openai.resources.embeddings"

PATCHES: tuple[Patch, ...] = (
    Patch(_CHAT, "Completions", "create", sync_call(CHAT)),
    # `parse` posts by itself rather than through `create`; `stream` goes through `create`.
    Patch(_CHAT, "Completions", "parse", sync_call(CHAT)),
    Patch(_CHAT, "Completions", "stream", stream_helper),
    Patch(_CHAT, "AsyncCompletions", "create", async_call(CHAT)),
    Patch(_CHAT, "AsyncCompletions", "parse", async_call(CHAT)),
    Patch(_CHAT, "AsyncCompletions", "stream", stream_helper),
    Patch(_RESPONSES, "Responses", "create", sync_call(RESPONSES)),
    Patch(_RESPONSES, "Responses", "parse", sync_call(RESPONSES)),
    Patch(_RESPONSES, "Responses", "stream", stream_helper),
    Patch(_RESPONSES, "AsyncResponses", "create", async_call(RESPONSES)),
    Patch(_RESPONSES, "AsyncResponses", "parse", async_call(RESPONSES)),
    Patch(_RESPONSES, "AsyncResponses", "stream", stream_helper),
    Patch(_EMBEDDINGS, "Embeddings", "create", sync_call(EMBEDDINGS)),
    Patch(_EMBEDDINGS, "AsyncEmbeddings", "create", async_call(EMBEDDINGS)),
)
"""Every SDK method spancost wraps."""


def _present(patch: Patch) -> bool:
    """Whether the installed SDK has the method (older SDKs lack `responses`, `parse`, ...)."""
    try:
        owner = getattr(importlib.import_module(patch.module), patch.owner, None)
    except ImportError:
        return False
    return owner is not None and hasattr(owner, patch.method)


class OpenAIInstrumentor(PatchingInstrumentor):
    """Patches the openai SDK (registered as `spancost_openai` for `opentelemetry-instrument`)."""

    scope = __name__

    @property
    def patches(self) -> Sequence[Patch]:  # type: ignore[override]
        # Resolved when (un)instrumenting: a method this SDK version lacks is skipped, not an error.
        return tuple(patch for patch in PATCHES if _present(patch))

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.0",)
