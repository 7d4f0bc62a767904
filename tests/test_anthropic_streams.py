"""Streams under spancost's own span: the caller sees the SDK's stream, unchanged, and the span ends once.

With the SDK's tracing off (as in SDK versions without it), spancost hands back a proxy over the
SDK's `Stream` (`create(stream=True)`), or traces the raw stream inside the SDK's own `MessageStream`
(the `messages.stream()` helper). Either way the caller gets the same event objects in the same
order, the same exceptions, a working context manager and `close()`, and the helper's
`get_final_message()` and `text_stream`; the span ends when the stream is exhausted, closed, left
or garbage-collected, with the usage seen so far.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest
from conftest import Replay, inference_spans, load_cassette
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from test_anthropic_traffic import MODEL, client, recorded_events, sse

from spancost.instrumentation._stream import AsyncTracedStream, TracedStream

REQUEST = {
    "model": MODEL,
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Say hello in one word."}],
}
CREATE_STREAM = "test_sync_messages_create_streaming"
HELPER_STREAM = "test_sync_messages_stream"


def _client(cassette: str, asynchronous: bool = False) -> Any:
    return client(
        "anthropic", Replay(load_cassette("anthropic", cassette)), asynchronous=asynchronous, traced=False
    )


def dumps(events: list[Any]) -> list[dict[str, Any]]:
    return [event.model_dump() for event in events]


def read_all(api: str, asynchronous: bool) -> tuple[list[Any], Any]:
    """Every event the caller sees, and the helper's final message (None for `create`)."""
    if asynchronous:
        return asyncio.run(_aread_all(api))
    if api == "create-stream":
        return list(_client(CREATE_STREAM).messages.create(**REQUEST, stream=True)), None
    with _client(HELPER_STREAM).messages.stream(**REQUEST) as stream:
        events = list(stream)
        return events, stream.get_final_message()


async def _aread_all(api: str) -> tuple[list[Any], Any]:
    if api == "create-stream":
        stream = await _client(CREATE_STREAM, True).messages.create(**REQUEST, stream=True)
        return [event async for event in stream], None
    async with _client(HELPER_STREAM, True).messages.stream(**REQUEST) as helper:
        events = [event async for event in helper]
        return events, await helper.get_final_message()


STREAM_APIS = [
    pytest.param("create-stream", False, id="create-stream-sync"),
    pytest.param("create-stream", True, id="create-stream-async"),
    pytest.param("stream-helper", False, id="stream-helper-sync"),
    pytest.param("stream-helper", True, id="stream-helper-async"),
]


@pytest.fixture
def baseline() -> dict[tuple[str, bool], tuple[list[dict[str, Any]], Any]]:
    """What each stream gives with no spancost installed."""
    results = {}
    for api, asynchronous in (("create-stream", False), ("create-stream", True), ("stream-helper", False)):
        events, final = read_all(api, asynchronous)
        results[api, asynchronous] = dumps(events), final.model_dump() if final is not None else None
    results["stream-helper", True] = results["stream-helper", False]
    return results


@pytest.mark.parametrize(("api", "asynchronous"), STREAM_APIS)
def test_stream_gives_the_caller_exactly_what_the_sdk_gives(
    baseline, instrumented: InMemorySpanExporter, api: str, asynchronous: bool
) -> None:
    events, final = read_all(api, asynchronous)
    assert dumps(events) == baseline[api, asynchronous][0]
    if final is not None:
        assert final.model_dump() == baseline[api, asynchronous][1]
        assert final.usage.output_tokens == 5
    (span,) = inference_spans(instrumented)
    assert span.attributes["gen_ai.usage.cost.amount"] == 0.000114


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_stream_proxy_yields_the_very_objects_the_sdk_stream_yields(
    instrumented: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, asynchronous: bool
) -> None:
    produced: list[Any] = []
    if asynchronous:
        original_anext = anthropic.AsyncStream.__anext__

        async def spy_anext(self: Any) -> Any:
            produced.append(await original_anext(self))
            return produced[-1]

        monkeypatch.setattr(anthropic.AsyncStream, "__anext__", spy_anext)

        async def read() -> tuple[Any, list[Any]]:
            stream = await _client(CREATE_STREAM, True).messages.create(**REQUEST, stream=True)
            return stream, [event async for event in stream]

        stream, yielded = asyncio.run(read())
        assert isinstance(stream, AsyncTracedStream)
    else:
        original_next = anthropic.Stream.__next__

        def spy_next(self: Any) -> Any:
            produced.append(original_next(self))
            return produced[-1]

        monkeypatch.setattr(anthropic.Stream, "__next__", spy_next)
        stream = _client(CREATE_STREAM).messages.create(**REQUEST, stream=True)
        yielded = list(stream)
        assert isinstance(stream, TracedStream)
    assert isinstance(stream, anthropic.AsyncStream if asynchronous else anthropic.Stream)
    assert stream.response.headers["request-id"] == "req_011CYfQMiWJUo29ePpD2ATbD"
    assert len(yielded) == len(produced) == 6
    assert all(mine is theirs for mine, theirs in zip(yielded, produced, strict=True))


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_stream_helper_is_the_sdks_own_message_stream(
    instrumented: InMemorySpanExporter, asynchronous: bool
) -> None:
    """The helper's `__enter__` returns the SDK's `MessageStream` itself, with every helper method."""
    expected = anthropic.AsyncMessageStream if asynchronous else anthropic.MessageStream

    async def read_async() -> tuple[Any, str, Any]:
        async with _client(HELPER_STREAM, True).messages.stream(**REQUEST) as stream:
            return stream, await stream.get_final_text(), stream.current_message_snapshot

    if asynchronous:
        stream, text, snapshot = asyncio.run(read_async())
    else:
        with _client(HELPER_STREAM).messages.stream(**REQUEST) as stream:
            text, snapshot = stream.get_final_text(), stream.current_message_snapshot
    assert type(stream) is expected
    assert stream.request_id == "req_011CaSta4VpT5jmAHFwkrWEx"
    assert text == "Hello!"
    assert snapshot.usage.output_tokens == 5
    assert len(inference_spans(instrumented)) == 1


# --- when the span ends ----------------------------------------------------------------------------------

# Ended after message_start only: 13 in, and the 2 output tokens counted so far → 13 × 3 + 2 × 15 = 69 µ$.
EARLY = {
    "gen_ai.usage.input_tokens": 13,
    "gen_ai.usage.output_tokens": 2,
    "gen_ai.usage.cost.amount": 0.000069,
}
# Read to the end: 13 × 3 + 5 × 15 = 114 µ$, stopped at end_turn.
FULL = {
    "gen_ai.usage.output_tokens": 5,
    "gen_ai.usage.cost.amount": 0.000114,
    "gen_ai.response.finish_reasons": ("end_turn",),
}


def _first_then(api: str, finish: Callable[[Any], None]) -> Callable[[InMemorySpanExporter], None]:
    """Read the first event, check the span is still open, then end the stream with `finish`."""

    def run(exporter: InMemorySpanExporter) -> None:
        if api == "create-stream":
            stream = _client(CREATE_STREAM).messages.create(**REQUEST, stream=True)
            assert next(stream).type == "message_start"
            assert inference_spans(exporter) == []
            finish(stream)
        else:
            manager = _client(HELPER_STREAM).messages.stream(**REQUEST)
            stream = manager.__enter__()
            assert next(stream).type == "message_start"
            assert inference_spans(exporter) == []
            finish((manager, stream))

    return run


def _leave_with(api: str) -> Callable[[InMemorySpanExporter], None]:
    def run(exporter: InMemorySpanExporter) -> None:
        if api == "create-stream":
            with _client(CREATE_STREAM).messages.create(**REQUEST, stream=True) as stream:
                for _ in stream:
                    break
                assert inference_spans(exporter) == []
        else:
            with _client(HELPER_STREAM).messages.stream(**REQUEST) as stream:
                for _ in stream:
                    break
                assert inference_spans(exporter) == []

    return run


def _drop(stream: Any) -> None:
    del stream
    gc.collect()


def _close_helper(pair: tuple[Any, Any]) -> None:
    pair[1].close()


def _exit_helper(pair: tuple[Any, Any]) -> None:
    pair[0].__exit__(None, None, None)


def _drop_helper(pair: tuple[Any, Any]) -> None:
    del pair
    gc.collect()


def _exhaust(stream: Any) -> None:
    for _ in stream:
        pass


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        pytest.param(_first_then("create-stream", _exhaust), FULL, id="create-stream-exhausted"),
        pytest.param(_first_then("create-stream", lambda s: s.close()), EARLY, id="create-stream-closed"),
        pytest.param(_leave_with("create-stream"), EARLY, id="create-stream-with-left"),
        pytest.param(_first_then("create-stream", _drop), EARLY, id="create-stream-garbage-collected"),
        pytest.param(_first_then("stream-helper", lambda p: p[1].until_done()), FULL, id="helper-until-done"),
        pytest.param(_first_then("stream-helper", _close_helper), EARLY, id="helper-closed"),
        pytest.param(_first_then("stream-helper", _exit_helper), EARLY, id="helper-manager-exited"),
        pytest.param(_leave_with("stream-helper"), EARLY, id="helper-with-left"),
        pytest.param(_first_then("stream-helper", _drop_helper), EARLY, id="helper-garbage-collected"),
    ],
)
def test_span_ends_once_when_the_stream_ends(
    instrumented: InMemorySpanExporter, end: Callable[[InMemorySpanExporter], None], expected: dict[str, Any]
) -> None:
    """Message_delta's output count is cumulative; before it arrives, message_start's is the count so far."""
    end(instrumented)
    gc.collect()
    (span,) = inference_spans(instrumented)
    assert span.status.status_code is StatusCode.UNSET
    for key, value in expected.items():
        assert span.attributes.get(key) == value, key
    if expected is EARLY:
        assert "gen_ai.response.finish_reasons" not in span.attributes


@pytest.mark.parametrize(
    "end",
    ["exhausted", "closed", "with-left", "garbage-collected", "helper-with-left", "helper-closed"],
)
def test_async_span_ends_once_when_the_stream_ends(instrumented: InMemorySpanExporter, end: str) -> None:
    async def run() -> None:
        if end.startswith("helper"):
            manager = _client(HELPER_STREAM, True).messages.stream(**REQUEST)
            async with manager as helper:
                assert (await helper.__anext__()).type == "message_start"
                assert inference_spans(instrumented) == []
                if end == "helper-closed":
                    await helper.close()
            return
        stream = await _client(CREATE_STREAM, True).messages.create(**REQUEST, stream=True)
        if end == "with-left":
            async with stream:
                await stream.__anext__()
            return
        assert (await stream.__anext__()).type == "message_start"
        assert inference_spans(instrumented) == []
        if end == "exhausted":
            async for _ in stream:
                pass
        elif end == "closed":
            await stream.close()
        else:
            del stream
            gc.collect()

    asyncio.run(run())
    (span,) = inference_spans(instrumented)
    expected = FULL if end == "exhausted" else EARLY
    for key, value in expected.items():
        assert span.attributes.get(key) == value, key


@pytest.mark.parametrize("api", ["create-stream", "stream-helper"])
def test_caller_exception_inside_the_with_block_propagates_and_does_not_fail_the_span(
    instrumented: InMemorySpanExporter, api: str
) -> None:
    """Leaving a stream's block by an exception is the caller stopping early, not the call failing."""

    class CallerError(Exception):
        pass

    with pytest.raises(CallerError):  # noqa: PT012
        if api == "create-stream":
            with _client(CREATE_STREAM).messages.create(**REQUEST, stream=True) as stream:
                next(stream)
                raise CallerError
        else:
            with _client(HELPER_STREAM).messages.stream(**REQUEST) as stream:
                next(stream)
                raise CallerError
    (span,) = inference_spans(instrumented)
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes


# --- a stream that fails part-way ------------------------------------------------------------------------

OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def _failing_stream_handler() -> Any:
    """message_start and one block, then the API's `error` event (what an overloaded server sends)."""
    events = recorded_events(CREATE_STREAM)[:3]
    body = sse(events) + f"event: error\ndata: {json.dumps(OVERLOADED)}\n\n".encode()
    return lambda request: httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})


def _read_failing(api: str, asynchronous: bool, traced: bool) -> tuple[list[str], BaseException]:
    sdk = client("anthropic", _failing_stream_handler(), asynchronous=asynchronous, traced=traced)
    seen: list[str] = []

    async def aread() -> None:
        if api == "create-stream":
            async for event in await sdk.messages.create(**REQUEST, stream=True):
                seen.append(event.type)
        else:
            async with sdk.messages.stream(**REQUEST) as stream:
                async for event in stream:
                    seen.append(event.type)

    try:
        if asynchronous:
            asyncio.run(aread())
        elif api == "create-stream":
            for event in sdk.messages.create(**REQUEST, stream=True):
                seen.append(event.type)
        else:
            with sdk.messages.stream(**REQUEST) as stream:
                for event in stream:
                    seen.append(event.type)
    except anthropic.APIError as error:
        return seen, error
    raise AssertionError("the error event did not raise")


@pytest.fixture
def failing_baseline() -> dict[str, tuple[list[str], type[BaseException], str]]:
    results = {}
    for api in ("create-stream", "stream-helper"):
        seen, error = _read_failing(api, False, False)
        results[api] = seen, type(error), str(error)
    return results


@pytest.mark.parametrize("api", ["create-stream", "stream-helper"])
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("traced", [True, False], ids=["sdk-span", "spancost-span"])
def test_error_event_mid_stream_reaches_the_caller_unchanged_and_fails_the_span(
    failing_baseline, instrumented: InMemorySpanExporter, api: str, asynchronous: bool, traced: bool
) -> None:
    """The input was billed before the failure: 13 in × $3/M + 2 out × $15/M = $0.000069, at ERROR."""
    seen, error = _read_failing(api, asynchronous, traced)
    assert (seen, type(error), str(error)) == failing_baseline[api]
    (span,) = inference_spans(instrumented)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == ("overloaded_error" if traced else "APIStatusError")
    if not traced:
        # The SDK's span leaves out what message_delta would have made final; spancost keeps the count so far.
        assert span.attributes["gen_ai.usage.cost.amount"] == 0.000069
