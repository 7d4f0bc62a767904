"""Fake OpenAI traffic for the openai tests, and checks that it reads like the recorded traffic.

Where no cassette fits (async clients, stream helpers, Azure, failures), the tests talk to
`ChatServer` / `ResponsesServer`: `httpx2.MockTransport` handlers that answer the way the API does
(SSE chunk for chunk, the usage-only chunk only when `stream_options.include_usage` asks for it).
The tests below check these fakes and the cassette replay against the real SDK with no spancost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import openai
from conftest import inference_spans, load_cassette, openai_client
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spancost

GPT_4O_MINI = "gpt-4o-mini-2024-07-18"
MESSAGES = [{"role": "user", "content": "Say this is a test"}]
CHAT_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 40,
    "total_tokens": 1240,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
"""1200 in, of which 1024 cached, 40 out. On gpt-4o-mini: 176 × $0.15/M + 1024 × $0.075/M + 40 × $0.60/M
= $0.0000264 + $0.0000768 + $0.000024 = $0.0001272."""
CHAT_USAGE_COST = 0.0001272


@contextmanager
def uninstrumented() -> Iterator[None]:
    """What the SDK does with no spancost: the baseline every instrumented call must match."""
    spancost.uninstrument()
    try:
        yield
    finally:
        spancost.instrument()


def one_span(exporter: InMemorySpanExporter, operation: str = "chat") -> ReadableSpan:
    if operation == "chat":
        (span,) = inference_spans(exporter)
    else:
        (span,) = [
            s for s in exporter.get_finished_spans() if s.attributes.get("gen_ai.operation.name") == operation
        ]
    return span


def streamed_attributes(span: ReadableSpan) -> dict[str, Any]:
    """A streamed call's attributes, with the time to first chunk checked and set aside (it varies)."""
    values = dict(span.attributes)
    first_chunk = values.pop("gen_ai.response.time_to_first_chunk")
    assert isinstance(first_chunk, float)
    assert 0 <= first_chunk < 5
    return values


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def async_openai_client(handler: Callable[[httpx2.Request], httpx2.Response], **kwargs: Any) -> Any:
    return openai.AsyncOpenAI(
        api_key="test_openai_api_key",
        max_retries=kwargs.pop("max_retries", 0),
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        **kwargs,
    )


def client_for(mode: str, handler: Callable[[httpx2.Request], httpx2.Response], **kwargs: Any) -> Any:
    """`sync` or `async`: an `OpenAI` or `AsyncOpenAI` client answered by `handler`; no retries by default."""
    if mode == "async":
        return async_openai_client(handler, **kwargs)
    return openai.OpenAI(
        api_key="test_openai_api_key",
        max_retries=kwargs.pop("max_retries", 0),
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        **kwargs,
    )


def sse_body(events: list[Any], *, done: bool = True) -> bytes:
    """Server-sent events as the API sends them: `event:` lines for typed events, then `[DONE]` (chat)."""
    lines = []
    for event in events:
        if isinstance(event, dict) and "type" in event and "." in str(event["type"]):
            lines.append(f"event: {event['type']}")
        lines.append(f"data: {json.dumps(event)}\n")
    if done:
        lines.append("data: [DONE]\n")
    return ("\n".join(lines) + "\n").encode()


def sse_response(events: list[Any], *, done: bool = True, status: int = 200) -> httpx2.Response:
    return httpx2.Response(
        status,
        headers={"content-type": "text/event-stream; charset=utf-8"},
        content=sse_body(events, done=done),
    )


def json_response(body: dict[str, Any], status: int = 200, **headers: str) -> httpx2.Response:
    return httpx2.Response(status, headers={"content-type": "application/json", **headers}, json=body)


def chat_chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish: str | None = None,
    index: int = 0,
    model: str = GPT_4O_MINI,
    usage: dict[str, Any] | None = None,
    no_choices: bool = False,
) -> dict[str, Any]:
    choices = [] if no_choices else [{"index": index, "delta": delta or {}, "finish_reason": finish}]
    chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model}
    return {**chunk, "choices": choices, "usage": usage}


def chat_completion(text: str = "This is a test.", *, model: str = GPT_4O_MINI, usage: Any = None) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": CHAT_USAGE if usage is None else usage,
    }


class ChatServer:
    """A chat completions endpoint: JSON, or SSE that adds the usage chunk only when asked, as OpenAI does."""

    def __init__(self, *, model: str = GPT_4O_MINI, words: tuple[str, ...] = ("This", " is", " a", " test.")):
        self.model = model
        self.words = words
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        if not body.get("stream"):
            return json_response(chat_completion("".join(self.words), model=self.model))
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        chunks = [chat_chunk({"role": "assistant", "content": ""}, model=self.model)]
        chunks += [chat_chunk({"content": word}, model=self.model) for word in self.words]
        chunks.append(chat_chunk(finish="stop", model=self.model))
        if include_usage:
            chunks.append(chat_chunk(no_choices=True, usage=CHAT_USAGE, model=self.model))
        return sse_response(chunks)

    def body(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[index].content)


RESPONSES_USAGE = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 1024},
    "output_tokens": 40,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 1240,
}
"""The same counts as CHAT_USAGE, as the Responses API reports them: $0.0001272 on gpt-4o-mini."""


class ResponsesServer:
    """A Responses API endpoint answering `text`: JSON, or the event stream the API sends."""

    def __init__(self, text: str = "This is a test.", *, model: str = GPT_4O_MINI) -> None:
        self.text = text
        self.model = model
        self.requests: list[httpx2.Request] = []

    def response(self, status: str = "completed") -> dict[str, Any]:
        done = status == "completed"
        message = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant"}
        content = [{"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}]
        return {
            "id": "resp_fake",
            "object": "response",
            "created_at": 1,
            "model": self.model,
            "status": status,
            "output": [{**message, "content": content}] if done else [],
            "usage": RESPONSES_USAGE if done else None,
            "service_tier": "default",
        }

    def events(self) -> list[dict[str, Any]]:
        item = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        message = {
            "id": "msg_1",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        events = [
            {"type": "response.created", "response": self.response("in_progress")},
            {"type": "response.output_item.added", "output_index": 0, "item": message},
            {"type": "response.content_part.added", **item, "part": part},
            *(
                {"type": "response.output_text.delta", **item, "delta": piece, "logprobs": []}
                for piece in self.pieces()
            ),
            {"type": "response.output_text.done", **item, "text": self.text, "logprobs": []},
            {"type": "response.content_part.done", **item, "part": {**part, "text": self.text}},
            {"type": "response.output_item.done", "output_index": 0, "item": self.response()["output"][0]},
            {"type": "response.completed", "response": self.response()},
        ]
        return [{**event, "sequence_number": n} for n, event in enumerate(events)]

    def pieces(self) -> list[str]:
        half = len(self.text) // 2
        return [self.text[:half], self.text[half:]]

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if json.loads(request.content).get("stream"):
            return sse_response(self.events(), done=False)
        return json_response(self.response())


class Cassette:
    """A recorded exchange answered again, for the sync or the async client alike."""

    def __init__(self, name: str) -> None:
        from conftest import Replay

        interactions = load_cassette("openai-v2", name)
        self.recorded = [json.loads(i["request"]["body"]) for i in interactions]
        self.replay = Replay(interactions)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        return self.replay(request)

    def body(self, index: int = 0) -> dict[str, Any]:
        """The body of the `index`th request sent."""
        return self.replay.request_json(index)

    def recorded_request(self, index: int = 0, *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
        """The recorded request's body as keyword arguments for the SDK call that made it."""
        return {k: v for k, v in self.recorded[index].items() if k not in leave_out}


# --- the fakes read like the real thing ---------------------------------------------------------------


def test_recorded_chat_stream_replays_through_the_sdk_chunk_for_chunk() -> None:
    stream = openai_client(Cassette("test_chat_completion_streaming")).chat.completions.create(
        model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == '"This is a test."'
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 12


def test_recorded_responses_stream_replays_through_the_sdk_event_for_event() -> None:
    events = list(
        openai_client(Cassette("test_responses_create_streaming[content_mode0]")).responses.create(
            model="gpt-4o-mini", input="Say this is a test", stream=True
        )
    )
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.input_tokens == 22


def test_fake_chat_server_adds_the_usage_chunk_only_when_asked() -> None:
    server = ChatServer()
    client = openai_client(server)
    plain = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    asked = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(chunk.choices for chunk in plain)
    assert asked[-1].choices == []
    assert asked[-1].usage.prompt_tokens == 1200
    assert len(asked) == len(plain) + 1


def test_fake_chat_server_answers_the_async_client() -> None:
    async def call() -> Any:
        return await async_openai_client(ChatServer()).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )

    assert run(call()).choices[0].message.content == "This is a test."


def test_fake_responses_server_streams_what_the_stream_helper_expects() -> None:
    client = openai_client(ResponsesServer("Two halves"))
    with client.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["Two h", "alves"]
    assert final.output_text == "Two halves"
    assert final.usage.input_tokens == 1200
