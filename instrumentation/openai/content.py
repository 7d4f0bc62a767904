"""Messages → the GenAI semantic-convention message shape, for the opt-in content attributes.

`gen_ai.input.messages` / `gen_ai.output.messages` are JSON arrays of `{"role", "parts": [...]}`
(output messages add `finish_reason`); `gen_ai.system_instructions` is an array of parts. Parts are
`text`, `tool_call`, `tool_call_response`, `reasoning`, `uri`, `blob`, `file` (and `refusal`, a
generic part named after OpenAI's). None of this runs
unless the user opted in to content capture, except the system-prompt texts, which are hashed for
the prompt version and never recorded.

Chat Completions carries system messages in its history, so they stay in `gen_ai.input.messages`
(as the conventions ask); the Responses API's `instructions` go to `gen_ai.system_instructions`.
Only lists and tuples are read: an iterator the caller passed would be used up before the SDK saw it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from spancost import attributes as attr

_SYSTEM_ROLES = ("system", "developer")
_TEXT_TYPES = ("text", "input_text", "output_text")
_FINISHED = {"completed": "stop", "failed": "error", "cancelled": "cancelled"}
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}
# Output items the caller has to act on (a built-in tool such as web search is run by the API itself).
_CLIENT_TOOL_CALLS = frozenset(
    {
        "function_call",
        "custom_tool_call",
        "computer_call",
        "local_shell_call",
        "shell_call",
        "apply_patch_call",
    }
)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a request dict or of an SDK model."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _items(value: Any) -> Iterable[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _arguments(raw: Any) -> Any:
    """Tool-call arguments as an object when they are valid JSON (the model's text otherwise)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _text(text: Any) -> dict[str, Any]:
    return {"type": "text", "content": text}


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": _arguments(arguments)}


def _media(modality: str, url: Any = None, file_id: Any = None, data: Any = None) -> dict[str, Any]:
    if isinstance(url, str) and url.startswith("data:"):
        mime_type, _, encoded = url[5:].partition(";base64,")
        return {"type": "blob", "modality": modality, "mime_type": mime_type or None, "content": encoded}
    if isinstance(url, str):
        return {"type": "uri", "modality": modality, "uri": url}
    if file_id is not None:
        return {"type": "file", "modality": modality, "file_id": file_id}
    return {"type": "blob", "modality": modality, "content": data}


def _part(part: Any) -> dict[str, Any] | None:
    """One content part of a chat message or a Responses input/output item."""
    if isinstance(part, str):
        return _text(part)
    kind = _get(part, "type")
    if kind in _TEXT_TYPES:
        return _text(_get(part, "text"))
    if kind == "refusal":
        return {"type": "refusal", "content": _get(part, "refusal")}
    if kind == "image_url":
        return _media("image", url=_get(_get(part, "image_url"), "url"))
    if kind == "input_image":
        return _media("image", url=_get(part, "image_url"), file_id=_get(part, "file_id"))
    if kind == "input_audio":
        audio = _get(part, "input_audio") or part
        return _media("audio", data=_get(audio, "data"))
    if kind in ("file", "input_file"):
        file = _get(part, "file") or part
        url = _get(file, "file_url") or _get(file, "file_data")
        return _media("file", url=url, file_id=_get(file, "file_id"))
    return {"type": kind} if isinstance(kind, str) else None


def _parts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [_text(value)]
    return [p for p in (_part(part) for part in _items(value)) if p is not None]


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        return
    for part in _items(value):
        text = _get(part, "text")
        if isinstance(text, str):
            yield text


# --- chat completions ------------------------------------------------------------------------------


def chat_system_texts(messages: Any) -> Iterator[str]:
    """The text of the system and developer messages, for the prompt-version hash."""
    for message in _items(messages):
        if _get(message, "role") in _SYSTEM_ROLES:
            yield from _texts(_get(message, "content"))


def _chat_message(message: Any) -> dict[str, Any]:
    role = _get(message, "role")
    content = _get(message, "content")
    if role in ("tool", "function"):
        response = content if isinstance(content, str) else " ".join(_texts(content))
        parts = [{"type": "tool_call_response", "id": _get(message, "tool_call_id"), "response": response}]
    else:
        parts = _parts(content)
    refusal = _get(message, "refusal")
    if isinstance(refusal, str):
        parts.append({"type": "refusal", "content": refusal})
    for call in _items(_get(message, "tool_calls")):
        function = _get(call, "function")
        parts.append(_tool_call(_get(call, "id"), _get(function, "name"), _get(function, "arguments")))
    function_call = _get(message, "function_call")
    if function_call is not None:
        parts.append(_tool_call(None, _get(function_call, "name"), _get(function_call, "arguments")))
    result: dict[str, Any] = {"role": role, "parts": parts}
    name = _get(message, "name")
    if isinstance(name, str):
        result["name"] = name
    return result


def chat_input_attributes(messages: Any) -> dict[str, Any]:
    return {attr.GEN_AI_INPUT_MESSAGES: as_json([_chat_message(m) for m in _items(messages)])}


def chat_output_attributes(choices: Iterable[Any]) -> dict[str, Any]:
    outputs = []
    for choice in choices:
        message = _chat_message(_get(choice, "message"))
        message["role"] = message["role"] or "assistant"
        message["finish_reason"] = _get(choice, "finish_reason") or ""
        outputs.append(message)
    return {attr.GEN_AI_OUTPUT_MESSAGES: as_json(outputs)}


class ChatStreamOutput:
    """Output messages put back together from a chat stream's deltas (only when content is captured)."""

    __slots__ = ("_choices",)

    def __init__(self) -> None:
        self._choices: dict[int, dict[str, Any]] = {}

    def add(self, choice: Any) -> None:
        state = self._choices.setdefault(
            _get(choice, "index", 0), {"role": None, "text": [], "tools": {}, "finish_reason": None}
        )
        delta = _get(choice, "delta")
        state["role"] = state["role"] or _get(delta, "role")
        text = _get(delta, "content")
        if isinstance(text, str):
            state["text"].append(text)
        for call in _items(_get(delta, "tool_calls")):
            tool = state["tools"].setdefault(_get(call, "index", 0), {"id": None, "name": None, "args": []})
            function = _get(call, "function")
            tool["id"] = tool["id"] or _get(call, "id")
            tool["name"] = tool["name"] or _get(function, "name")
            arguments = _get(function, "arguments")
            if isinstance(arguments, str):
                tool["args"].append(arguments)
        state["finish_reason"] = _get(choice, "finish_reason") or state["finish_reason"]

    def attributes(self) -> dict[str, Any]:
        outputs = []
        for _, state in sorted(self._choices.items()):
            parts = [_text("".join(state["text"]))] if state["text"] else []
            for _, tool in sorted(state["tools"].items()):
                parts.append(_tool_call(tool["id"], tool["name"], "".join(tool["args"])))
            outputs.append(
                {
                    "role": state["role"] or "assistant",
                    "parts": parts,
                    "finish_reason": state["finish_reason"] or "",
                }
            )
        return {attr.GEN_AI_OUTPUT_MESSAGES: as_json(outputs)}


# --- Responses API ---------------------------------------------------------------------------------


def responses_system_texts(instructions: Any, input: Any) -> Iterator[str]:
    """The instructions and the system and developer input items, for the prompt-version hash."""
    if isinstance(instructions, str):
        yield instructions
    for item in _items(input):
        if _get(item, "role") in _SYSTEM_ROLES:
            yield from _texts(_get(item, "content"))


def _responses_item(item: Any) -> dict[str, Any] | None:
    kind = _get(item, "type")
    role = _get(item, "role")
    if role is not None and kind in (None, "message"):
        return {"role": role, "parts": _parts(_get(item, "content"))}
    if kind == "function_call":
        return {
            "role": "assistant",
            "parts": [_tool_call(_get(item, "call_id"), _get(item, "name"), _get(item, "arguments"))],
        }
    if kind == "function_call_output":
        response = {
            "type": "tool_call_response",
            "id": _get(item, "call_id"),
            "response": _get(item, "output"),
        }
        return {"role": "tool", "parts": [response]}
    if kind == "reasoning":
        return {"role": "assistant", "parts": _reasoning(item)}
    return None


def _reasoning(item: Any) -> list[dict[str, Any]]:
    texts = [*_texts(_get(item, "summary")), *_texts(_get(item, "content"))]
    return [{"type": "reasoning", "content": text} for text in texts]


def responses_input_attributes(instructions: Any, input: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if isinstance(instructions, str):
        values[attr.GEN_AI_SYSTEM_INSTRUCTIONS] = as_json([_text(instructions)])
    if isinstance(input, str):
        messages = [{"role": "user", "parts": [_text(input)]}]
    else:
        messages = [m for m in (_responses_item(item) for item in _items(input)) if m is not None]
    values[attr.GEN_AI_INPUT_MESSAGES] = as_json(messages)
    return values


def _is_tool_call(item: Any) -> bool:
    kind = _get(item, "type")
    return isinstance(kind, str) and kind.endswith("_call")


def responses_finish_reason(response: Any) -> str | None:
    """The finish reason of a finished `Response`, in the conventions' terms; None while it runs.

    The Responses API reports a status instead: `completed` is `stop` (`tool_call` when the model
    called a tool), `incomplete` names its reason (`max_output_tokens` → `length`).
    """
    status = _get(response, "status")
    output = _items(_get(response, "output"))
    if status == "completed" and any(_get(item, "type") in _CLIENT_TOOL_CALLS for item in output):
        return "tool_call"
    if status == "incomplete":
        reason = _get(_get(response, "incomplete_details"), "reason")
        return _INCOMPLETE.get(reason, reason if isinstance(reason, str) else "incomplete")
    return _FINISHED.get(status) if isinstance(status, str) else None


def responses_output_attributes(response: Any, finish_reason: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for item in _items(_get(response, "output")):
        kind = _get(item, "type")
        if kind == "message":
            parts.extend(_parts(_get(item, "content")))
        elif kind == "function_call":
            parts.append(_tool_call(_get(item, "call_id"), _get(item, "name"), _get(item, "arguments")))
        elif kind == "reasoning":
            parts.extend(_reasoning(item))
        elif _is_tool_call(item):  # a built-in tool the API ran (web search, file search, ...)
            parts.append({"type": "tool_call", "id": _get(item, "id"), "name": kind})
    message = {"role": "assistant", "parts": parts, "finish_reason": finish_reason}
    return {attr.GEN_AI_OUTPUT_MESSAGES: as_json([message])}
