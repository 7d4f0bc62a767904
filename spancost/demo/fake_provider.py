"""A local fake OpenAI / Anthropic HTTP provider for demos.

`FakeProvider` runs a real HTTP server on 127.0.0.1 (ephemeral port) that the
official ``openai`` and ``anthropic`` SDKs talk to through ``base_url``. It
answers with the real APIs' JSON shapes and realistic, deterministic token
usage (prompt caching, reasoning / thinking tokens, max-token truncation), so a
demo can drive thousands of instrumented calls in seconds, offline.

    with FakeProvider(seed=7) as fp:
        client = openai.OpenAI(api_key="test", base_url=fp.openai_base_url)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/embeddings`` (OpenAI) and
``POST /v1/messages`` (Anthropic). Streaming is rejected with a 400. Usage is a
pure function of ``seed`` and the request body, except for prompt caching,
which depends on what the server has already seen (as with the real APIs).
"""

import base64
import contextlib
import hashlib
import itertools
import json
import math
import random
import secrets
import socket
import socketserver
import string
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

Json = dict[str, Any]

OPENAI_SNAPSHOTS: dict[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "o4-mini": "o4-mini-2025-04-16",
    "o3": "o3-2025-04-16",
}
ANTHROPIC_SNAPSHOTS: dict[str, str] = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
}

_CHARS_PER_TOKEN = 4
_MESSAGE_OVERHEAD = 4
_REPLY_PRIMING = 3
# Anthropic reports a few input tokens even when the whole prompt was cached.
_ANTHROPIC_PRIMING = 3
_MEDIA_TOKENS = 765  # one 1024x1024 high-detail image on OpenAI; a rough figure for Claude too
_MEDIA_TYPES = frozenset({"image", "image_url", "input_image", "input_audio", "document", "file"})
_OUTPUT_MEDIAN = 180.0
_OUTPUT_SIGMA = 0.6
_REASONING_SIGMA = 0.5
_MIN_REASONING_MEDIAN = 64.0
_TERSE_HINTS = (
    "in one word",
    "one-word",
    "single word",
    "yes or no",
    "yes/no",
    "just the number",
    "only the number",
    "answer with a number",
)
_YES_NO_HINTS = ("yes or no", "yes/no")
_NO_STREAMING = "Streaming is not supported by the fake provider; call without stream=True."
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
# Reasoning tokens as a multiple of the visible answer, per reasoning_effort.
_REASONING_EFFORT = {"none": 0.0, "minimal": 0.0, "low": 1.0, "medium": 3.0, "high": 6.0}
_DEFAULT_EFFORT = 3.0

_OPENAI_CACHE_MIN = 1024
_OPENAI_CACHE_BLOCK = 128
_OPENAI_CACHE_TTL_S = 600.0  # OpenAI keeps idle prefixes for roughly 5-10 minutes
_ANTHROPIC_TTL_S = {"5m": 300.0, "1h": 3600.0}
_ANTHROPIC_LOOKBACK_BLOCKS = 20
_MAX_CACHE_ENTRIES = 200_000

_DEFAULT_EMBEDDING_DIMS = 8
_MAX_EMBEDDING_DIMS = 3072
_MAX_CHOICES = 128
# Injected 5xx/529s tell the SDK to retry almost immediately instead of backing off ~0.5-8 s.
_RETRY_AFTER_MS = "20"

_ALNUM = string.ascii_letters + string.digits
_LOREM_TEXT = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
    "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
    "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est"
)
_LOREM = tuple(_LOREM_TEXT.split(" "))


# --------------------------------------------------------------------------- errors


@dataclass
class _ApiError(Exception):
    """An error reply; `kind` is the provider's error type (e.g. "not_found_error")."""

    status: int
    kind: str
    message: str
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _openai_error_body(err: _ApiError) -> Json:
    return {"error": {"message": err.message, "type": err.kind, "param": err.param, "code": err.code}}


def _anthropic_error_body(err: _ApiError) -> Json:
    return {"type": "error", "error": {"type": err.kind, "message": err.message}}


def _bad_request(message: str, param: str | None = None) -> _ApiError:
    return _ApiError(400, "invalid_request_error", message, param=param)


# ------------------------------------------------------------------ token estimates


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def _without_cache_control(part: Any) -> Any:
    if isinstance(part, dict):
        return {key: value for key, value in part.items() if key != "cache_control"}
    return part


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _part_tokens(part: Any) -> int:
    if isinstance(part, str):
        return _text_tokens(part)
    if not isinstance(part, dict):
        return _text_tokens(_canonical(part))
    kind = part.get("type")
    if kind in ("text", "input_text"):
        return _text_tokens(str(part.get("text", "")))
    if kind == "thinking":
        return _text_tokens(str(part.get("thinking", "")))
    if kind in _MEDIA_TYPES:
        return _MEDIA_TOKENS
    if kind == "tool_result":
        return _content_tokens(part.get("content"))
    return _text_tokens(_canonical(_without_cache_control(part)))


def _as_parts(content: Any) -> list[Any]:
    if content is None:
        return []
    return list(content) if isinstance(content, list) else [content]


def _content_tokens(content: Any) -> int:
    return sum(_part_tokens(part) for part in _as_parts(content))


def _content_text(content: Any) -> str:
    parts = _as_parts(content)
    texts = (p if isinstance(p, str) else p.get("text", "") for p in parts if isinstance(p, str | dict))
    return " ".join(str(text) for text in texts)


def _last_user_text(messages: list[Json]) -> str:
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    return _content_text(last.get("content")).lower() if last else ""


# ------------------------------------------------------------------ output drawing


def _request_rng(seed: int, raw: bytes) -> random.Random:
    digest = hashlib.sha256(f"{seed}:".encode() + raw).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _draw_output_tokens(rng: random.Random, terse: bool) -> int:
    if terse:
        return rng.randint(1, 5)
    return max(1, round(rng.lognormvariate(math.log(_OUTPUT_MEDIAN), _OUTPUT_SIGMA)))


def _draw_reasoning_tokens(rng: random.Random, visible: int, multiplier: float) -> int:
    if multiplier <= 0:
        return 0
    median = max(_MIN_REASONING_MEDIAN, multiplier * visible)
    return max(1, round(rng.lognormvariate(math.log(median), _REASONING_SIGMA)))


def _lorem(rng: random.Random, tokens: int) -> str:
    """Roughly `tokens` tokens of filler text (~4 characters per token)."""
    if tokens <= 0:
        return ""
    target = tokens * _CHARS_PER_TOKEN
    text = " ".join(rng.choices(_LOREM, k=target // 5 + 1))[: target - 1]
    if " " in text:
        text = text.rsplit(" ", 1)[0]
    return text[:1].upper() + text[1:] + "."


def _answer_text(rng: random.Random, tokens: int, hint: str) -> str:
    if tokens <= 5 and any(h in hint for h in _YES_NO_HINTS):
        return rng.choice(("Yes", "No"))
    if tokens <= 5:
        return rng.choice(_LOREM).capitalize()
    return _lorem(rng, tokens)


def _is_terse(hint: str) -> bool:
    return any(h in hint for h in _TERSE_HINTS)


def _random_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


# ------------------------------------------------------------------ prefix cache


class _PrefixCache:
    """Expiring prompt-prefix digests, keyed per model; a hit refreshes the TTL."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, bytes], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: tuple[str, bytes], now: float) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                return False
            self._entries[key] = (now + entry[1], entry[1])
            return True

    def remember(self, key: tuple[str, bytes], ttl_s: float, now: float) -> None:
        with self._lock:
            if len(self._entries) >= _MAX_CACHE_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            self._entries[key] = (now + ttl_s, ttl_s)


# ------------------------------------------------------------------ OpenAI helpers


def _openai_prompt_tokens(body: Json) -> int:
    tokens = _REPLY_PRIMING
    for message in body["messages"]:
        tokens += _MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
        if message.get("tool_calls"):
            tokens += _text_tokens(_canonical(message["tool_calls"]))
    if body.get("tools"):
        tokens += _text_tokens(json.dumps(body["tools"]))
    return tokens


def _openai_prompt_text(body: Json) -> str:
    """The prompt flattened in API order; caching hashes prefixes of this text."""
    parts = [_canonical(body["tools"])] if body.get("tools") else []
    for message in body["messages"]:
        content = message.get("content")
        text = content if isinstance(content, str) else _canonical(content)
        parts.append(f"<|{message.get('role')}|>{text}")
        if message.get("tool_calls"):
            parts.append(_canonical(message["tool_calls"]))
    return "".join(parts)


def _is_reasoning_model(model: str) -> bool:
    return model.startswith(_REASONING_PREFIXES) and "chat" not in model


def _openai_reasoning_tokens(rng: random.Random, model: str, body: Json, visible: int) -> int:
    if not _is_reasoning_model(model):
        return 0
    multiplier = _REASONING_EFFORT.get(str(body.get("reasoning_effort")), _DEFAULT_EFFORT)
    return _draw_reasoning_tokens(rng, visible, multiplier)


def _openai_choice(
    rng: random.Random, index: int, body: Json, model: str, hint: str
) -> tuple[Json, int, int]:
    """One choice plus its (completion_tokens, reasoning_tokens); completion includes reasoning."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    visible = _draw_output_tokens(rng, _is_terse(hint))
    reasoning = _openai_reasoning_tokens(rng, model, body, visible)
    finish_reason = "stop"
    if limit is not None and visible + reasoning >= limit:
        reasoning = min(reasoning, limit)
        visible = limit - reasoning
        finish_reason = "length"
    message = {
        "role": "assistant",
        "content": _answer_text(rng, visible, hint) if visible else "",
        "refusal": None,
        "annotations": [],
    }
    choice = {"index": index, "message": message, "logprobs": None, "finish_reason": finish_reason}
    return choice, visible + reasoning, reasoning


def _openai_usage(prompt: int, cached: int, completion: int, reasoning: int) -> Json:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _require_openai_model(body: Json) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad_request("you must provide a model parameter", param="model")
    if "does-not-exist" in model:
        message = f"The model `{model}` does not exist or you do not have access to it."
        raise _ApiError(404, "invalid_request_error", message, param="model", code="model_not_found")
    return model


def _check_token_limit(body: Json) -> None:
    for param in ("max_completion_tokens", "max_tokens"):
        limit = body.get(param)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise _bad_request(f"Invalid '{param}': expected an integer of at least 1.", param=param)


def _check_chat_request(body: Json) -> int:
    """Validates a chat request and returns `n`."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad_request("Missing required parameter: 'messages'.", param="messages")
    if not all(isinstance(m, dict) for m in messages):
        raise _bad_request("Invalid type for 'messages': expected an array of objects.", param="messages")
    if body.get("stream"):
        raise _bad_request(_NO_STREAMING, param="stream")
    _check_token_limit(body)
    n = body.get("n") or 1
    if not isinstance(n, int) or not 1 <= n <= _MAX_CHOICES:
        raise _bad_request(f"Invalid 'n': must be between 1 and {_MAX_CHOICES}.", param="n")
    return n


def _embedding_inputs(value: Any) -> list[Any]:
    """Normalises `input` to a list of items (a string or a list of token ids each)."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        items = [value]
    elif isinstance(value, list):
        items = value
    else:
        items = []
    if not items or any(item in ("", []) or not isinstance(item, str | list) for item in items):
        raise _bad_request("'$.input' is invalid. Please check the API reference.", param="input")
    return items


def _embedding_tokens(item: str | list[int]) -> int:
    return len(item) if isinstance(item, list) else max(1, _text_tokens(item))


def _embedding_vector(seed: int, item: str | list[int], dims: int) -> list[float]:
    """A unit vector that depends only on (seed, input), like a real embedding."""
    rng = _request_rng(seed, _canonical(item).encode())
    values = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _encode_embedding(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def _embedding_dims(body: Json) -> int:
    dims = body.get("dimensions") or _DEFAULT_EMBEDDING_DIMS
    if not isinstance(dims, int) or not 1 <= dims <= _MAX_EMBEDDING_DIMS:
        message = f"Invalid 'dimensions': must be between 1 and {_MAX_EMBEDDING_DIMS}."
        raise _bad_request(message, param="dimensions")
    return dims


# ------------------------------------------------------------------ Anthropic helpers


@dataclass(frozen=True)
class _Block:
    """One cacheable unit of an Anthropic prompt, in the API's caching order."""

    key: str  # canonical text that prefix hashes are built from
    tokens: int
    ttl: str | None  # "5m" / "1h" when the block is a cache breakpoint


@dataclass
class _CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0


def _cache_ttl(part: Any) -> str | None:
    control = part.get("cache_control") if isinstance(part, dict) else None
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        return None
    ttl = control.get("ttl", "5m")
    return ttl if ttl in _ANTHROPIC_TTL_S else "5m"


def _tool_blocks(tools: Any) -> list[_Block]:
    if not isinstance(tools, list) or not tools:
        return []
    ttl = next((t for t in map(_cache_ttl, reversed(tools)) if t), None)
    key = "tools:" + _canonical([_without_cache_control(t) for t in tools])
    return [_Block(key, _text_tokens(json.dumps(tools)), ttl)]


def _message_blocks(message: Json) -> list[_Block]:
    blocks = []
    for position, part in enumerate(_as_parts(message.get("content"))):
        overhead = _MESSAGE_OVERHEAD if position == 0 else 0
        key = f"{message.get('role')}:{position}:{_canonical(_without_cache_control(part))}"
        blocks.append(_Block(key, overhead + _part_tokens(part), _cache_ttl(part)))
    return blocks


def _anthropic_blocks(body: Json) -> list[_Block]:
    """Tools, then system, then messages: the order Anthropic builds cache prefixes in."""
    blocks = _tool_blocks(body.get("tools"))
    for part in _as_parts(body.get("system")):
        key = "system:" + _canonical(_without_cache_control(part))
        blocks.append(_Block(key, _part_tokens(part), _cache_ttl(part)))
    for message in body["messages"]:
        blocks.extend(_message_blocks(message))
    return blocks


def _prefix_digests(blocks: list[_Block]) -> list[bytes]:
    hasher = hashlib.sha256()
    digests = []
    for block in blocks:
        hasher.update(block.key.encode() + b"\x1e")
        digests.append(hasher.copy().digest())
    return digests


def _thinking_budget(body: Json) -> int:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return 0
    if thinking.get("type") == "adaptive":
        return max(0, int(body["max_tokens"]) - 1)
    if thinking.get("type") != "enabled":
        return 0
    return int(thinking.get("budget_tokens") or 0)


def _check_thinking(body: Json) -> None:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        raise _bad_request("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if budget >= body["max_tokens"]:
        raise _bad_request("`max_tokens` must be greater than `thinking.budget_tokens`.")


def _require_anthropic_model(body: Json) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad_request("model: Field required")
    if "does-not-exist" in model:
        raise _ApiError(404, "not_found_error", f"model: {model}")
    return model


def _check_messages_request(body: Json) -> None:
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise _bad_request("max_tokens: Field required")
    if max_tokens < 1:
        raise _bad_request("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise _bad_request("messages: Field required")
    if body.get("stream"):
        raise _bad_request(_NO_STREAMING)
    _check_thinking(body)


def _anthropic_output(rng: random.Random, body: Json, hint: str) -> tuple[list[Json], int, str]:
    """Content blocks, output_tokens (thinking included) and stop_reason."""
    max_tokens = int(body["max_tokens"])
    budget = _thinking_budget(body)
    visible = _draw_output_tokens(rng, _is_terse(hint))
    thinking = min(budget, _draw_reasoning_tokens(rng, visible, _DEFAULT_EFFORT)) if budget else 0
    stop_reason = "end_turn"
    if thinking + visible >= max_tokens:
        thinking = min(thinking, max_tokens)
        visible = max_tokens - thinking
        stop_reason = "max_tokens"
    content: list[Json] = []
    if budget:
        signature = base64.b64encode(rng.randbytes(96)).decode()
        content.append({"type": "thinking", "thinking": _lorem(rng, thinking), "signature": signature})
    if visible or not budget:
        content.append({"type": "text", "text": _answer_text(rng, visible, hint) if visible else ""})
    return content, thinking + visible, stop_reason


def _anthropic_usage(total_input: int, cache: _CacheUsage, output_tokens: int) -> Json:
    written = cache.write_5m + cache.write_1h
    return {
        "input_tokens": total_input - cache.read - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.write_5m,
            "ephemeral_1h_input_tokens": cache.write_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


# ------------------------------------------------------------------ HTTP plumbing


@dataclass
class _Reply:
    status: int
    body: Json
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "spancost-fake-provider/1"
    # Without TCP_NODELAY, Nagle + delayed ACK add ~40 ms to each keep-alive round trip.
    disable_nagle_algorithm = True
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Per-request logging would swamp a demo driving thousands of calls."""

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        path = urlsplit(self.path).path.rstrip("/")
        anthropic = path.startswith("/v1/messages") or "anthropic-version" in self.headers
        reply = self.server.provider._respond(self.command, path, anthropic, raw)
        payload = json.dumps(reply.body, separators=(",", ":")).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, provider: "FakeProvider") -> None:
        self.provider = provider
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closing = False
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse-DNS getfqdn(), which can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)
            closing = self._closing
        if closing:  # accepted just before stop(): do not let it serve on
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Ends keep-alive connections, whose handler threads outlive shutdown()."""
        with self._connections_lock:
            self._closing = True
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


# ------------------------------------------------------------------ the provider


class FakeProvider:
    """A fake OpenAI + Anthropic endpoint on 127.0.0.1 with realistic token usage.

    `error_rate` is the fraction of valid requests answered with HTTP 500
    (`server_error`, OpenAI paths) or 529 (`overloaded_error`, Anthropic); the
    draw comes from one RNG seeded with `seed`, so SDK retries can succeed.
    `latency_ms` adds a sleep to every request.
    """

    def __init__(self, *, seed: int = 0, error_rate: float = 0.0, latency_ms: float = 0.0) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        self.seed = seed
        self.error_rate = error_rate
        self.latency_ms = latency_ms
        self.requests_served = 0
        self._lock = threading.Lock()
        self._error_rng = random.Random(seed)
        self._cache = _PrefixCache()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: dict[tuple[str, str], Callable[[Json, random.Random], Json]] = {
            ("POST", "/v1/chat/completions"): self._chat_completion,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/v1/messages"): self._message,
        }

    # -- lifecycle

    def start(self) -> "FakeProvider":
        if self._server is not None:
            raise RuntimeError("FakeProvider is already running")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-provider",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeProvider is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- request handling

    def _respond(self, method: str, path: str, anthropic: bool, raw: bytes) -> _Reply:
        started = time.perf_counter()
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)
        try:
            reply = _Reply(200, self._route(method, path, anthropic, raw))
        except _ApiError as err:
            body = _anthropic_error_body(err) if anthropic else _openai_error_body(err)
            reply = _Reply(err.status, body, dict(err.headers))
        except Exception as exc:  # a bug in the fake must surface as a 500, not a dropped connection
            err = _ApiError(500, "api_error" if anthropic else "server_error", f"fake provider bug: {exc!r}")
            reply = _Reply(500, _anthropic_error_body(err) if anthropic else _openai_error_body(err))
        with self._lock:
            self.requests_served += 1
        reply.headers.update(self._response_headers(anthropic, started))
        return reply

    def _route(self, method: str, path: str, anthropic: bool, raw: bytes) -> Json:
        handler = self._routes.get((method, path))
        if handler is None:
            if anthropic:
                raise _ApiError(404, "not_found_error", "Not Found")
            raise _ApiError(404, "invalid_request_error", f"Invalid URL ({method} {path})")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _bad_request("We could not parse the JSON body of your request.") from None
        if not isinstance(body, dict):
            raise _bad_request("The request body must be a JSON object.")
        return handler(body, _request_rng(self.seed, raw))

    @staticmethod
    def _response_headers(anthropic: bool, started: float) -> dict[str, str]:
        if anthropic:
            return {"request-id": "req_" + secrets.token_hex(12)}
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        return {"x-request-id": "req_" + secrets.token_hex(16), "openai-processing-ms": str(elapsed_ms)}

    def _maybe_fail(self, anthropic: bool) -> None:
        if self.error_rate <= 0:
            return
        with self._lock:
            failed = self._error_rng.random() < self.error_rate
        if not failed:
            return
        headers = {"retry-after-ms": _RETRY_AFTER_MS}
        if anthropic:
            raise _ApiError(529, "overloaded_error", "Overloaded", headers=headers)
        message = "The server had an error while processing your request. Sorry about that!"
        raise _ApiError(500, "server_error", message, headers=headers)

    # -- OpenAI

    def _chat_completion(self, body: Json, rng: random.Random) -> Json:
        model = _require_openai_model(body)
        n = _check_chat_request(body)
        self._maybe_fail(anthropic=False)
        snapshot = OPENAI_SNAPSHOTS.get(model, model)
        prompt_tokens = _openai_prompt_tokens(body)
        cached = self._openai_cached_tokens(snapshot, _openai_prompt_text(body), prompt_tokens)
        hint = _last_user_text(body["messages"])
        drawn = [_openai_choice(rng, index, body, snapshot, hint) for index in range(n)]
        return {
            "id": _random_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": snapshot,
            "choices": [choice for choice, _, _ in drawn],
            "usage": _openai_usage(
                prompt_tokens, cached, sum(c for _, c, _ in drawn), sum(r for _, _, r in drawn)
            ),
            "service_tier": "default",
            "system_fingerprint": "fp_" + hashlib.sha256(snapshot.encode()).hexdigest()[:10],
        }

    def _openai_cached_tokens(self, model: str, text: str, prompt_tokens: int) -> int:
        """Longest previously seen 128-token-aligned prefix (>= 1024 tokens); records this prompt's."""
        limit = min(prompt_tokens, len(text) // _CHARS_PER_TOKEN)
        if prompt_tokens < _OPENAI_CACHE_MIN or limit < _OPENAI_CACHE_MIN:
            return 0
        now = time.monotonic()
        hasher = hashlib.sha256()
        cached, hashed_chars = 0, 0
        for boundary in range(_OPENAI_CACHE_MIN, limit + 1, _OPENAI_CACHE_BLOCK):
            end = boundary * _CHARS_PER_TOKEN
            hasher.update(text[hashed_chars:end].encode())
            hashed_chars = end
            key = (model, hasher.copy().digest())
            if self._cache.hit(key, now):
                cached = boundary
            self._cache.remember(key, _OPENAI_CACHE_TTL_S, now)
        return cached

    def _embeddings(self, body: Json, rng: random.Random) -> Json:
        model = _require_openai_model(body)
        items = _embedding_inputs(body.get("input"))
        dims = _embedding_dims(body)
        encoding_format = str(body.get("encoding_format") or "float")
        self._maybe_fail(anthropic=False)
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": _encode_embedding(_embedding_vector(self.seed, item, dims), encoding_format),
            }
            for index, item in enumerate(items)
        ]
        tokens = sum(_embedding_tokens(item) for item in items)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "data": data, "model": model, "usage": usage}

    # -- Anthropic

    def _message(self, body: Json, rng: random.Random) -> Json:
        model = _require_anthropic_model(body)
        _check_messages_request(body)
        self._maybe_fail(anthropic=True)
        resolved = ANTHROPIC_SNAPSHOTS.get(model, model)
        blocks = _anthropic_blocks(body)
        cache = self._anthropic_cache(resolved, blocks)
        content, output_tokens, stop_reason = _anthropic_output(rng, body, _last_user_text(body["messages"]))
        return {
            "id": _random_id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": resolved,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": _anthropic_usage(
                _ANTHROPIC_PRIMING + sum(b.tokens for b in blocks), cache, output_tokens
            ),
        }

    def _anthropic_cache(self, model: str, blocks: list[_Block]) -> _CacheUsage:
        """Reads the longest cached prefix, then writes each newer breakpoint's segment."""
        minimum = 2048 if "haiku" in model else 1024
        cumulative = list(itertools.accumulate(block.tokens for block in blocks))
        breakpoints = [i for i, block in enumerate(blocks) if block.ttl and cumulative[i] >= minimum]
        usage = _CacheUsage()
        if not breakpoints:
            return usage
        digests = _prefix_digests(blocks)
        now = time.monotonic()
        hit = self._anthropic_cache_hit(model, digests, breakpoints, now)
        usage.read = cumulative[hit] if hit >= 0 else 0
        previous = usage.read
        for index in (i for i in breakpoints if i > hit):
            ttl = blocks[index].ttl or "5m"
            segment, previous = cumulative[index] - previous, cumulative[index]
            if ttl == "1h":
                usage.write_1h += segment
            else:
                usage.write_5m += segment
            self._cache.remember((model, digests[index]), _ANTHROPIC_TTL_S[ttl], now)
        return usage

    def _anthropic_cache_hit(
        self, model: str, digests: list[bytes], breakpoints: list[int], now: float
    ) -> int:
        # Like the API, look back a few blocks before each breakpoint, so a conversation
        # whose cache_control moved to its newest turn still reads the earlier prefix.
        for breakpoint_index in reversed(breakpoints):
            floor = max(-1, breakpoint_index - _ANTHROPIC_LOOKBACK_BLOCKS - 1)
            for index in range(breakpoint_index, floor, -1):
                if self._cache.hit((model, digests[index]), now):
                    return index
        return -1
