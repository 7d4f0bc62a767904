"""spancost's own faults never reach an openai caller: on every API (chat, responses, embeddings) and
mode (sync/async × whole/stream, the stream helpers), a fault injected in request extraction, response
extraction, the stream hooks or the tag context leaves every call returning exactly what it returns
without spancost, and is logged once."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from openai.lib.streaming.chat import AsyncChatCompletionStreamManager
from openai.lib.streaming.responses import AsyncResponseStreamManager
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel
from test_openai_traffic import Cassette, ChatServer, ResponsesServer, client_for, run, uninstrumented

import spancost
from spancost.instrumentation import _inference
from spancost.instrumentation import openai as openai_patch
from spancost.instrumentation.openai import extract, stream

MESSAGES = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say this is a test"}]


class Reply(BaseModel):
    text: str


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_dump(item) for item in value)
    return value.model_dump(warnings=False)


async def _settle(value: Any) -> Any:
    return await value if hasattr(value, "__await__") else value


async def _drain(items: Any) -> list[Any]:
    return [item async for item in items] if hasattr(items, "__aiter__") else list(items)


async def _helper(manager: Any, final: str) -> tuple[list[Any], Any]:
    if isinstance(manager, (AsyncChatCompletionStreamManager, AsyncResponseStreamManager)):
        async with manager as events:
            return await _drain(events), await getattr(events, final)()
    with manager as events:
        return await _drain(events), getattr(events, final)()


def _chat(method: str, **extra: Any) -> Callable[[Any], Any]:
    async def call(client: Any) -> Any:
        kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, **extra}
        if method == "stream":
            return await _helper(client.chat.completions.stream(**kwargs), "get_final_completion")
        result = await _settle(getattr(client.chat.completions, method)(**kwargs))
        return await _drain(result) if extra.get("stream") else result

    return call


def _responses(method: str, **extra: Any) -> Callable[[Any], Any]:
    async def call(client: Any) -> Any:
        kwargs = {"model": "gpt-4o-mini", "instructions": "Be terse.", "input": "Say this is a test", **extra}
        if method == "stream":
            return await _helper(client.responses.stream(**kwargs), "get_final_response")
        result = await _settle(getattr(client.responses, method)(**kwargs))
        return await _drain(result) if extra.get("stream") else result

    return call


async def _embeddings(client: Any) -> Any:
    return await _settle(
        client.embeddings.create(model="text-embedding-3-small", input="a test", dimensions=512)
    )


# name → (the call, the server that answers it)
PATHS: dict[str, tuple[Callable[[Any], Any], Callable[[], Any]]] = {
    "chat": (_chat("create"), ChatServer),
    "chat-stream": (_chat("create", stream=True), ChatServer),
    "chat-parse": (_chat("parse", response_format=Reply), lambda: ChatServer(words=('{"text": "ok"}',))),
    "chat-stream-helper": (_chat("stream"), ChatServer),
    "responses": (_responses("create"), ResponsesServer),
    "responses-stream": (_responses("create", stream=True), ResponsesServer),
    "responses-parse": (_responses("parse"), ResponsesServer),
    "responses-stream-helper": (_responses("stream"), ResponsesServer),
    "embeddings": (_embeddings, lambda: Cassette("test_embeddings_with_dimensions")),
}


def _boom(*args: object, **kwargs: object) -> Any:
    raise RuntimeError("injected fault")


# fault → the functions to break (the usage-only chunk the skip hook hides only exists on chat streams)
FAULTS: dict[str, list[tuple[Any, str]]] = {
    "request-extraction": [
        (openai_patch, "chat_request_attributes"),
        (openai_patch, "responses_request_attributes"),
        (openai_patch, "embeddings_request_attributes"),
    ],
    "response-extraction": [
        (openai_patch, "chat_response_attributes"),
        (openai_patch, "responses_response_attributes"),
        (openai_patch, "embeddings_response_attributes"),
        (extract, "openai_usage"),  # what the stream hooks read usage with
    ],
    "stream-on-item": [(stream.ChatStreamHooks, "on_item"), (stream.ResponseStreamHooks, "on_item")],
    "stream-on-end": [(stream.ChatStreamHooks, "on_end"), (stream.ResponseStreamHooks, "on_end")],
    "stream-skip": [(stream, "is_usage_only_chunk")],
    "stream-usage-check": [(extract, "wants_stream_usage")],
    "stream-usage-ask": [(extract, "with_stream_usage")],
    "tag-context": [(_inference, "span_tags")],
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_in_spancost_never_reaches_an_openai_caller(
    fault: str,
    mode: str,
    instrumented: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with uninstrumented():
        baseline = {
            name: _dump(run(call(client_for(mode, server())))) for name, (call, server) in PATHS.items()
        }
    for owner, name in FAULTS[fault]:
        monkeypatch.setattr(owner, name, _boom)
    caplog.set_level(logging.DEBUG, logger="spancost")

    def warnings() -> int:
        faults = [r for r in caplog.records if r.exc_info and "injected fault" in str(r.exc_info[1])]
        return sum(r.levelno >= logging.WARNING for r in faults)

    for round_ in range(2):
        with spancost.tags(prompt="p"):
            for name, (call, server) in PATHS.items():
                result = _dump(run(call(client_for(mode, server()))))
                assert json.dumps(result, default=str) == json.dumps(baseline[name], default=str), name
        if round_ == 0:
            first_round = warnings()
            assert first_round >= 1, "the fault must be logged"
    assert warnings() == first_round, "each fault is logged once at warning level, later at debug only"
    calls = [s for s in instrumented.get_finished_spans() if "gen_ai.operation.name" in s.attributes]
    if fault == "request-extraction":
        assert not calls, "without its request there is no span, and the call goes on"
    else:
        assert len(calls) == 2 * len(PATHS), "every call's span still ends, once"
