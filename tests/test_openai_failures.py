"""When calls fail: provider errors, timeouts, retries, cancellation and streams that break midway.

The caller always meets exactly the exception the SDK raised; the span records `error.type` and an
ERROR status, except for cancellation (the application stopping the call is not the call failing).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import openai
import pytest
from conftest import inference_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from test_openai_traffic import (
    CHAT_USAGE_COST,
    MESSAGES,
    Cassette,
    ChatServer,
    chat_chunk,
    client_for,
    json_response,
    one_span,
    run,
    sse_body,
    uninstrumented,
)

MODES = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]


def create(mode: str, client: Any, **kwargs: Any) -> Any:
    """`chat.completions.create`, a stream read to the end; awaited for the async client."""
    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, **kwargs}
    if mode == "sync":
        result = client.chat.completions.create(**kwargs)
        return list(result) if kwargs.get("stream") else result

    async def awaited() -> Any:
        result = await client.chat.completions.create(**kwargs)
        return [chunk async for chunk in result] if kwargs.get("stream") else result

    return run(awaited())


def raised(mode: str, handler: Any, **kwargs: Any) -> BaseException:
    with pytest.raises(openai.OpenAIError) as caught:
        create(mode, client_for(mode, handler, max_retries=kwargs.pop("max_retries", 0)), **kwargs)
    return caught.value


def assert_failed(span: Any, error_type: str) -> None:
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == error_type
    assert not any(key.startswith("spancost.cost") for key in span.attributes)


@pytest.mark.parametrize("mode", MODES)
def test_recorded_404_reaches_the_caller_unchanged_and_marks_the_span(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    with uninstrumented():
        plain = raised(mode, Cassette("test_chat_completion_404"))
    traced = raised(mode, Cassette("test_chat_completion_404"))

    assert type(traced) is type(plain) is openai.NotFoundError
    assert (str(traced), traced.body) == (str(plain), plain.body)
    span = one_span(instrumented)
    assert_failed(span, "NotFoundError")
    assert span.status.description == "NotFoundError (HTTP 404)"


@pytest.mark.parametrize("mode", MODES)
def test_timeout_reaches_the_caller_as_the_sdk_raised_it(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    def times_out(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("read timed out", request=request)

    with uninstrumented():
        plain = raised(mode, times_out)
    traced = raised(mode, times_out)

    assert type(traced) is type(plain) is openai.APITimeoutError
    assert str(traced) == str(plain)
    assert_failed(one_span(instrumented), "APITimeoutError")


class Flaky:
    """Answers `failures` times with a retryable status (no wait asked), then like ChatServer."""

    def __init__(self, failures: int, status: int = 503) -> None:
        self.failures = failures
        self.status = status
        self.server = ChatServer()
        self.attempts = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            return json_response(
                {"error": {"message": "overloaded"}}, status=self.status, **{"retry-after-ms": "1"}
            )
        return self.server(request)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stream", [pytest.param(False, id="whole"), pytest.param(True, id="stream")])
def test_a_call_the_sdk_retried_is_one_span(
    mode: str, stream: bool, instrumented: InMemorySpanExporter
) -> None:
    flaky = Flaky(failures=2)
    create(mode, client_for(mode, flaky, max_retries=2), stream=stream)

    assert flaky.attempts == 3
    span = one_span(instrumented)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["gen_ai.usage.cost.amount"] == CHAT_USAGE_COST


@pytest.mark.parametrize("mode", MODES)
def test_retries_used_up_end_the_one_span_with_the_last_error(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    flaky = Flaky(failures=3, status=429)
    error = raised(mode, flaky, max_retries=2)

    assert type(error) is openai.RateLimitError
    assert flaky.attempts == 3
    assert_failed(one_span(instrumented), "RateLimitError")


def test_cancelled_task_ends_the_span_without_error(instrumented: InMemorySpanExporter) -> None:
    async def never_answers(request: httpx2.Request) -> httpx2.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def cancel_mid_call() -> None:
        client = client_for("async", never_answers)
        task = asyncio.create_task(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_mid_call())
    span = one_span(instrumented)
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
    assert span.end_time is not None


def test_cancelled_task_mid_stream_ends_the_span_without_error(instrumented: InMemorySpanExporter) -> None:
    first = sse_body([chat_chunk({"role": "assistant", "content": "Hi"})], done=False)

    async def stalls(request: httpx2.Request) -> httpx2.Response:
        async def body() -> AsyncIterator[bytes]:
            yield first
            await asyncio.Event().wait()

        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    async def cancel_mid_stream() -> list[Any]:
        seen: list[Any] = []

        async def read() -> None:
            stream = await client_for("async", stalls).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                seen.append(chunk)

        task = asyncio.create_task(read())
        while not seen:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen

    (chunk,) = run(cancel_mid_stream())
    assert chunk.choices[0].delta.content == "Hi"
    span = one_span(instrumented)
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
    assert span.attributes["gen_ai.response.model"] == chunk.model


def _breaks_after_one_chunk(request: httpx2.Request) -> httpx2.Response:
    def body() -> Iterator[bytes]:
        yield sse_body([chat_chunk({"role": "assistant", "content": "Hi"})], done=False)
        raise httpx2.ReadError("connection lost", request=request)

    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def _reports_an_error_midway(request: httpx2.Request) -> httpx2.Response:
    events = [chat_chunk({"role": "assistant", "content": "Hi"}), {"error": {"message": "model overloaded"}}]
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse_body(events))


@pytest.mark.parametrize(
    ("handler", "error", "error_type"),
    [
        pytest.param(
            _breaks_after_one_chunk, openai.APIConnectionError, "APIConnectionError", id="connection-lost"
        ),
        pytest.param(_reports_an_error_midway, openai.APIError, "APIError", id="error-event"),
    ],
)
def test_chat_stream_that_fails_midway_ends_the_span_with_the_error(
    handler: Any, error: type[Exception], error_type: str, instrumented: InMemorySpanExporter
) -> None:
    def read(seen: list[Any]) -> BaseException:
        stream = client_for("sync", handler).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        try:
            for chunk in stream:
                seen.append(chunk.model_dump())
        except error as caught:
            return caught
        raise AssertionError("the stream did not fail")

    plain_chunks: list[Any] = []
    traced_chunks: list[Any] = []
    with uninstrumented():
        plain = read(plain_chunks)
    traced = read(traced_chunks)

    assert type(traced) is type(plain)
    assert str(traced) == str(plain)
    assert traced_chunks == plain_chunks
    assert len(traced_chunks) == 1
    assert_failed(one_span(instrumented), error_type)


def test_an_exception_in_the_callers_with_block_is_not_the_calls_failure(
    instrumented: InMemorySpanExporter,
) -> None:
    client = client_for("sync", ChatServer())

    def leave_with_an_error() -> None:
        with client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
            next(stream)
            raise KeyError("caller")

    with pytest.raises(KeyError, match="caller"):
        leave_with_an_error()
    span = one_span(instrumented)
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes


def test_a_request_the_sdk_refuses_before_sending_is_one_failed_span(
    instrumented: InMemorySpanExporter,
) -> None:
    """`create` with a pydantic response_format raises TypeError in the SDK before any request."""

    class Wrong(openai.BaseModel):
        x: int

    with pytest.raises(TypeError, match="parse"):
        client_for("sync", ChatServer()).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, response_format=Wrong
        )
    assert_failed(one_span(instrumented), "TypeError")
    assert inference_spans(instrumented)[0].name == "chat gpt-4o-mini"


def test_error_events_in_a_response_stream_reach_the_caller(instrumented: InMemorySpanExporter) -> None:
    """A Responses stream ending in `response.failed` is recorded as finished with an error."""
    failed = {"id": "resp_9", "object": "response", "created_at": 1, "model": "gpt-4o-mini-2024-07-18"}
    failed |= {"status": "failed", "output": [], "error": {"code": "server_error", "message": "boom"}}
    events = [
        {"type": "response.created", "sequence_number": 0, "response": {**failed, "status": "in_progress"}},
        {"type": "response.failed", "sequence_number": 1, "response": failed},
    ]

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse_body(events))

    seen = [
        event.type
        for event in client_for("sync", handler).responses.create(
            model="gpt-4o-mini", input="hi", stream=True
        )
    ]
    assert seen == ["response.created", "response.failed"]
    attributes = one_span(instrumented).attributes
    assert attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert json.dumps(dict(attributes)).count("boom") == 0
