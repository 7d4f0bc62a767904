"""anthropic SDK objects → attribute values: plain functions that mirror the SDK's shapes.

They read request keywords, `Message` models, decoded JSON bodies and raw responses alike (every
field is read through `field`, which takes a model or a mapping), and ignore what they do not know,
so one set of functions serves every SDK version. The patch layer guards each call: an error here
costs an attribute, never the caller's result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from spancost import attributes as attr
from spancost.instrumentation._inference import (
    number,
    server_attributes,
    system_prompt_attributes,
    usage_attributes,
)
from spancost.pricing.usage import anthropic_usage

# Client classes of the cloud platforms → gen_ai.provider.name, for SDK versions that do not say it
# themselves (newer ones carry `_gen_ai_provider_name`, which their own span uses).
_PLATFORM_PROVIDERS = {
    "AnthropicBedrock": "aws.bedrock",
    "AsyncAnthropicBedrock": "aws.bedrock",
    "AnthropicVertex": "gcp.vertex_ai",
    "AsyncAnthropicVertex": "gcp.vertex_ai",
}

# Anthropic's stop reasons → the semantic conventions' finish reasons, for output messages (whose
# schema enumerates them); `gen_ai.response.finish_reasons` keeps Anthropic's own word.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}

_TOOL_CALLS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


def field(value: Any, name: str) -> Any:
    """`value[name]` of a mapping, `value.name` of anything else; None when absent."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def sdk_traces(client: Any) -> bool:
    """Whether this client emits its own span per call (anthropic SDKs with built-in tracing, enabled)."""
    if not hasattr(type(client), "_tracer"):
        return False
    try:
        return client._tracer is not None
    except Exception:
        return False


def provider_name(client: Any) -> str:
    own = getattr(type(client), "_gen_ai_provider_name", None)
    if isinstance(own, str) and own:
        return own
    return _PLATFORM_PROVIDERS.get(type(client).__name__, "anthropic")


def _system_texts(system: Any) -> Iterable[str]:
    if isinstance(system, str):
        yield system
    elif _is_list(system):
        for block in system:
            text = field(block, "text")
            if isinstance(text, str):
                yield text


def request_hints(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What spancost adds to any span of this call, the SDK's own included: the system prompt's hash
    and size."""
    return system_prompt_attributes(_system_texts(kwargs.get("system")))


def request_attributes(
    client: Any, kwargs: Mapping[str, Any], stream: bool = False
) -> tuple[str, str | None, dict[str, Any]]:
    """Provider, model and start attributes of a `messages.create` request (no hints, no content)."""
    model = kwargs.get("model") if isinstance(kwargs.get("model"), str) else None
    max_tokens = kwargs.get("max_tokens")
    values: dict[str, Any] = {
        **server_attributes(getattr(client, "base_url", None)),
        attr.GEN_AI_REQUEST_MAX_TOKENS: max_tokens if isinstance(max_tokens, int) else None,
        attr.GEN_AI_REQUEST_TEMPERATURE: number(kwargs.get("temperature")),
        attr.GEN_AI_REQUEST_TOP_P: number(kwargs.get("top_p")),
        attr.GEN_AI_REQUEST_STREAM: True if stream else None,
    }
    return provider_name(client), model, values


def message_of(result: Any) -> Any:
    """The `Message` (or its decoded body) that a call returned.

    `with_raw_response` returns the HTTP response wrapper; its body, when already read, is decoded
    again here (no I/O). One not read yet (`with_streaming_response`) gives None: reading it would
    change when the caller's work happens.
    """
    http_response = getattr(result, "http_response", None)
    if http_response is None or not callable(getattr(result, "parse", None)):
        return result
    if not getattr(http_response, "is_closed", False):
        return None
    body = http_response.json()
    return body if isinstance(body, Mapping) else None


def response_attributes(result: Any) -> dict[str, Any]:
    """Model, id, stop reason, service tier and usage of a `Message` (or raw response)."""
    message = message_of(result)
    values: dict[str, Any] = {}
    for name, key in (("model", attr.GEN_AI_RESPONSE_MODEL), ("id", attr.GEN_AI_RESPONSE_ID)):
        value = field(message, name)
        if isinstance(value, str):
            values[key] = value
    stop_reason = field(message, "stop_reason")
    if isinstance(stop_reason, str):
        values[attr.GEN_AI_RESPONSE_FINISH_REASONS] = [stop_reason]
    usage = field(message, "usage")
    if usage is not None:
        values.update(usage_response_attributes(usage))
    return values


def usage_response_attributes(usage: Any) -> dict[str, Any]:
    """Semantic-convention usage (input = uncached + cache read + cache write) and the service tier."""
    normalised = anthropic_usage(usage)
    values = usage_attributes(normalised)
    if normalised.service_tier:
        values[attr.ANTHROPIC_RESPONSE_SERVICE_TIER] = normalised.service_tier
    return values


# --- opt-in content, in the GenAI semantic conventions' JSON shape --------------------------------


def request_content(kwargs: Mapping[str, Any]) -> dict[str, str]:
    """`gen_ai.system_instructions` and `gen_ai.input.messages`; only called when the user opted in."""
    values: dict[str, str] = {}
    system = kwargs.get("system")
    # Anything else (None, the SDK's `NOT_GIVEN` / `omit`) is no system prompt.
    if isinstance(system, str) or _is_list(system):
        values[attr.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(content_parts(system))
    messages = kwargs.get("messages")
    if _is_list(messages):
        inputs = [
            {"role": str(field(message, "role") or "user"), "parts": content_parts(field(message, "content"))}
            for message in messages
        ]
        values[attr.GEN_AI_INPUT_MESSAGES] = to_json(inputs)
    return values


def response_content(result: Any) -> dict[str, str]:
    """`gen_ai.output.messages` of a returned `Message`; only called when the user opted in."""
    message = message_of(result)
    if message is None:
        return {}
    return output_content(field(message, "content"), field(message, "stop_reason"))


def output_content(content: Any, stop_reason: Any) -> dict[str, str]:
    output = {
        "role": "assistant",
        "parts": content_parts(content),
        "finish_reason": finish_reason(stop_reason),
    }
    return {attr.GEN_AI_OUTPUT_MESSAGES: to_json([output])}


def finish_reason(stop_reason: Any) -> str:
    if not isinstance(stop_reason, str):
        return ""
    return _FINISH_REASONS.get(stop_reason, stop_reason)


def content_parts(content: Any) -> list[dict[str, Any]]:
    """The message parts of a string or a list of content blocks (request params or response models)."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    return [block_part(block) for block in content] if _is_list(content) else []


def _is_list(value: Any) -> bool:
    """A list or tuple of blocks or messages. The SDK takes any iterable, but a generator can be read
    only once, and that once is the SDK's: spancost leaves anything but a sequence unread."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def block_part(block: Any) -> dict[str, Any]:
    kind = field(block, "type")
    if kind == "text":
        return {"type": "text", "content": field(block, "text")}
    if kind == "thinking":
        return {"type": "reasoning", "content": field(block, "thinking")}
    if kind == "redacted_thinking":
        # Encrypted by the provider: there is no text to record.
        return {"type": "reasoning", "content": ""}
    if kind in _TOOL_CALLS:
        return {
            "type": "tool_call",
            "id": field(block, "id"),
            "name": field(block, "name"),
            "arguments": field(block, "input"),
        }
    if kind == "tool_result" or (isinstance(kind, str) and kind.endswith("_tool_result")):
        content = field(block, "content")
        return {
            "type": "tool_call_response",
            "id": field(block, "tool_use_id"),
            "response": content_value(content),
        }
    if kind in ("image", "document"):
        return media_part(kind, field(block, "source"))
    return {"type": kind if isinstance(kind, str) else "unknown"}


def media_part(modality: str, source: Any) -> dict[str, Any]:
    kind = field(source, "type")
    mime_type = field(source, "media_type")
    if kind == "url":
        return {"type": "uri", "modality": modality, "mime_type": mime_type, "uri": field(source, "url")}
    if kind == "file":
        return {
            "type": "file",
            "modality": modality,
            "mime_type": mime_type,
            "file_id": field(source, "file_id"),
        }
    # Inline data (base64, text documents) is left out, as the SDK's own span does: it is large and
    # often binary, and an attribute is no place for it. A generic part keeps its kind and type.
    return {"type": modality, "mime_type": mime_type}


def content_value(value: Any) -> Any:
    """A tool result's content as JSON-ready values: text stays text, blocks become their parts."""
    if isinstance(value, str) or value is None:
        return value
    return content_parts(value)


def to_json(value: Any) -> str:
    """Compact JSON; SDK models become their dicts, anything else JSON cannot hold its `str()`."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return str(value)
