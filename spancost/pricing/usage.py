"""Token usage in one shape, whatever the provider counted.

Providers disagree on what "input tokens" means: OpenAI's `prompt_tokens` already include
`cached_tokens`; Anthropic's `input_tokens` exclude cache reads and writes. Everything is
normalised here, once, to the semantic-convention meaning (all input, cached included; all output,
reasoning included) before pricing sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one model call, in the semantic-convention meaning."""

    input_tokens: int = 0
    """All input tokens, cached (read and written) included."""
    output_tokens: int = 0
    """All output tokens, reasoning included."""
    cache_read_tokens: int = 0
    """Part of the input read from the prompt cache."""
    cache_write_tokens: int = 0
    """Part of the input written to the prompt cache, every TTL."""
    cache_write_1h_tokens: int = 0
    """Part of `cache_write_tokens` written to the 1-hour cache."""
    reasoning_tokens: int = 0
    """Part of the output spent on reasoning."""
    service_tier: str | None = None
    """The provider's service tier that served the call, as the provider names it."""

    @property
    def uncached_input_tokens(self) -> int:
        return max(self.input_tokens - self.cache_read_tokens - self.cache_write_tokens, 0)


def _get(obj: Any, name: str) -> Any:
    """A field of an SDK model or of a decoded JSON body."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_usage(usage: Any, *, service_tier: str | None = None) -> Usage:
    """From an OpenAI `CompletionUsage` (chat) or `ResponseUsage` (responses API) or embeddings usage.

    OpenAI's prompt tokens include the cached ones (read and written), and completion tokens
    include reasoning.
    """
    input_tokens = _int(_get(usage, "prompt_tokens")) or _int(_get(usage, "input_tokens"))
    output_tokens = _int(_get(usage, "completion_tokens")) or _int(_get(usage, "output_tokens"))
    input_details = _get(usage, "prompt_tokens_details") or _get(usage, "input_tokens_details")
    output_details = _get(usage, "completion_tokens_details") or _get(usage, "output_tokens_details")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=_int(_get(input_details, "cached_tokens")),
        # Newer models bill cache writes (one rate whatever the retention); they are part of the input.
        cache_write_tokens=_int(_get(input_details, "cache_write_tokens")),
        reasoning_tokens=_int(_get(output_details, "reasoning_tokens")),
        service_tier=service_tier,
    )


def anthropic_usage(usage: Any) -> Usage:
    """From an Anthropic `Usage`: its `input_tokens` exclude cache reads and writes, so add them."""
    uncached = _int(_get(usage, "input_tokens"))
    cache_read = _int(_get(usage, "cache_read_input_tokens"))
    cache_write = _int(_get(usage, "cache_creation_input_tokens"))
    breakdown = _get(usage, "cache_creation")
    write_1h = min(_int(_get(breakdown, "ephemeral_1h_input_tokens")), cache_write)
    details = _get(usage, "output_tokens_details")
    tier = _get(usage, "service_tier")
    return Usage(
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=_int(_get(usage, "output_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=write_1h,
        reasoning_tokens=_int(_get(details, "thinking_tokens")),
        service_tier=tier if isinstance(tier, str) else None,
    )
