"""When things go wrong: the caller sees exactly what the SDK does, and the span says what happened.

Provider errors, timeouts and cancellation reach the caller unchanged and end the span (ERROR with
`error.type`, except cancellation, which is the app stopping the call); retries inside one SDK call
stay one span. spancost's own faults (request and response extraction, hints, stream hooks, the tag
context) never reach the caller and are logged once. `uninstrument()` gives the SDK back exactly.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest
from conftest import Replay, inference_spans, load_cassette
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from test_anthropic_traffic import MODEL, client, message, recorded_events, respond, sse
from wrapt import FunctionWrapper

import spancost
from spancost.instrumentation import _inference
from spancost.instrumentation import anthropic as anthropic_patch
from spancost.instrumentation.anthropic import PATCHES, available_patches
from spancost.instrumentation.anthropic.stream import MessageEvents

REQUEST = {
    "model": MODEL,
    "max_tokens": 100,
    "system": "be nice",
    "messages": [{"role": "user", "content": "Say hello in one word."}],
}
APIS = ("create", "create-stream", "stream-helper")
MODES = [pytest.param(True, id="sdk-span"), pytest.param(False, id="spancost-span")]
SYNC_ASYNC = [pytest.param(False, id="sync"), pytest.param(True, id="async")]


def call(api: str, sdk: Any, asynchronous: bool) -> Any:
    """Make the call, read it to the end, and return everything the caller saw, as plain data."""
    if asynchronous:
        return asyncio.run(_acall(api, sdk))
    if api == "create":
        return sdk.messages.create(**REQUEST).model_dump()
    if api == "create-stream":
        return [event.model_dump() for event in sdk.messages.create(**REQUEST, stream=True)]
    with sdk.messages.stream(**REQUEST) as stream:
        return [event.model_dump() for event in stream], stream.get_final_message().model_dump()


async def _acall(api: str, sdk: Any) -> Any:
    if api == "create":
        return (await sdk.messages.create(**REQUEST)).model_dump()
    if api == "create-stream":
        return [event.model_dump() async for event in await sdk.messages.create(**REQUEST, stream=True)]
    async with sdk.messages.stream(**REQUEST) as stream:
        return [event.model_dump() async for event in stream], (await stream.get_final_message()).model_dump()


CASSETTES = {
    "create": "test_sync_messages_create_basic",
    "create-stream": "test_sync_messages_create_streaming",
    "stream-helper": "test_sync_messages_stream",
}


def recorded(api: str, asynchronous: bool = False, traced: bool = True, **options: Any) -> Any:
    replay = Replay(load_cassette("anthropic", CASSETTES[api]))
    return client("anthropic", replay, asynchronous=asynchronous, traced=traced, **options)


# --- provider errors ---------------------------------------------------------------------------------------


def _raised(api: str, sdk: Any, asynchronous: bool) -> BaseException:
    try:
        call(api, sdk, asynchronous)
    except BaseException as error:
        return error
    raise AssertionError("the call did not fail")


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("asynchronous", SYNC_ASYNC)
@pytest.mark.parametrize("traced", MODES)
def test_provider_error_reaches_the_caller_unchanged_and_fails_the_span(
    instrumented: InMemorySpanExporter, api: str, asynchronous: bool, traced: bool
) -> None:
    """The recorded 404 (unknown model), raised where the SDK raises it: at the call, at `__enter__`."""
    plain = _raised(api, client("anthropic", _recorded_404(), traced=False), False)
    instrumented.clear()
    error = _raised(
        api, client("anthropic", _recorded_404(), asynchronous=asynchronous, traced=traced), asynchronous
    )
    assert type(error) is type(plain) is anthropic.NotFoundError
    assert str(error) == str(plain)
    assert error.status_code == 404
    (span,) = inference_spans(instrumented)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == ("not_found_error" if traced else "NotFoundError")
    assert "gen_ai.usage.cost.amount" not in span.attributes


def _recorded_404() -> Replay:
    return Replay(load_cassette("anthropic", "test_sync_messages_create_api_error"))


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("asynchronous", SYNC_ASYNC)
@pytest.mark.parametrize("traced", MODES)
def test_timeout_reaches_the_caller_as_the_sdk_raised_it(
    instrumented: InMemorySpanExporter, api: str, asynchronous: bool, traced: bool
) -> None:
    """The SDK turns the transport's timeout into `APITimeoutError` from it; the chain is intact."""
    timeouts: list[httpx2.ReadTimeout] = []

    def time_out(request: httpx2.Request) -> httpx2.Response:
        timeouts.append(httpx2.ReadTimeout("read timed out", request=request))
        raise timeouts[-1]

    error = _raised(
        api, client("anthropic", time_out, asynchronous=asynchronous, traced=traced), asynchronous
    )
    assert type(error) is anthropic.APITimeoutError
    assert error.__cause__ is timeouts[0]
    (span,) = inference_spans(instrumented)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == ("client_timeout_error" if traced else "APITimeoutError")


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("asynchronous", SYNC_ASYNC)
@pytest.mark.parametrize("traced", MODES)
def test_retries_inside_one_call_are_one_span(
    instrumented: InMemorySpanExporter, api: str, asynchronous: bool, traced: bool
) -> None:
    """Overloaded twice, then answered: the SDK retries inside the call; one span, priced once
    (13 × 3 + 5 × 15 = $0.000114)."""
    replay = Replay(load_cassette("anthropic", CASSETTES[api]))
    attempts: list[httpx2.Request] = []

    def overloaded_twice(request: httpx2.Request) -> httpx2.Response:
        attempts.append(request)
        if len(attempts) <= 2:
            body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            return httpx2.Response(529, json=body, headers={"retry-after-ms": "1", "x-should-retry": "true"})
        return replay(request)

    sdk = client("anthropic", overloaded_twice, asynchronous=asynchronous, traced=traced, max_retries=2)
    call(api, sdk, asynchronous)
    assert len(attempts) == 3
    (span,) = inference_spans(instrumented)
    assert span.attributes["gen_ai.usage.cost.amount"] == 0.000114
    assert span.status.status_code is not StatusCode.ERROR
    if traced:
        assert span.attributes["http.request.resend_count"] == 2


# --- cancellation ---------------------------------------------------------------------------------------


def _hanging_after(
    events: list[dict[str, Any]] | None,
) -> tuple[Callable[[httpx2.Request], Any], asyncio.Event]:
    """A handler that never answers (events None), or streams `events` and then never sends more."""
    reached = asyncio.Event()

    async def body() -> Any:
        yield sse(events or [])
        reached.set()
        await asyncio.Event().wait()

    async def handle(request: httpx2.Request) -> httpx2.Response:
        if events is None:
            reached.set()
            await asyncio.Event().wait()
        return httpx2.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    return handle, reached


@pytest.mark.parametrize(
    ("api", "when"),
    [
        pytest.param("create", "request", id="create-awaiting-response"),
        pytest.param("create-stream", "request", id="create-stream-awaiting-response"),
        pytest.param("create-stream", "reading", id="create-stream-mid-stream"),
        pytest.param("stream-helper", "request", id="stream-helper-entering"),
        pytest.param("stream-helper", "reading", id="stream-helper-mid-stream"),
    ],
)
@pytest.mark.parametrize("traced", MODES)
def test_cancelled_task_ends_the_span_without_error_and_cancellation_propagates(
    instrumented: InMemorySpanExporter, api: str, when: str, traced: bool
) -> None:
    first = recorded_events("test_sync_messages_create_streaming")[:2] if when == "reading" else None

    async def run() -> None:
        handler, reached = _hanging_after(first)
        sdk = client("anthropic", handler, asynchronous=True, traced=traced)
        task = asyncio.ensure_future(_acall(api, sdk))
        await reached.wait()
        await asyncio.sleep(0.01)  # let the task reach the await that hangs
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    (span,) = inference_spans(instrumented)
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes


# --- spancost's own faults ---------------------------------------------------------------------------------


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("injected fault")


CALLS = [
    (api, asynchronous, traced) for api in APIS for asynchronous in (False, True) for traced in (True, False)
]


@pytest.fixture
def baseline() -> dict[tuple[str, bool, bool], Any]:
    """What each call gives the caller with no spancost installed."""
    return {(api, a, t): call(api, recorded(api, a, t), a) for api, a, t in CALLS}


@pytest.mark.parametrize(
    ("fault", "spans_per_round"),
    [
        pytest.param((anthropic_patch, "request_attributes"), 6, id="request-extraction"),
        pytest.param((anthropic_patch, "request_hints"), 12, id="hints"),
        pytest.param((anthropic_patch, "attach_hints"), 12, id="hint-attach"),
        pytest.param((anthropic_patch, "detach_hints"), 12, id="hint-detach"),
        pytest.param((anthropic_patch, "response_attributes"), 12, id="response-extraction"),
        pytest.param((MessageEvents, "on_item"), 12, id="stream-event-hook"),
        pytest.param((MessageEvents, "on_end"), 12, id="stream-end-hook"),
        pytest.param((_inference, "span_tags"), 12, id="tag-context"),
    ],
)
def test_a_fault_in_spancost_never_reaches_the_caller_on_any_path(
    baseline,
    instrumented: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: tuple[Any, str],
    spans_per_round: int,
) -> None:
    """Every API and mode, twice: the same result as without spancost; the fault logged once.

    A request that cannot be read makes no spancost span (6 SDK spans a round); otherwise every call
    still has its one span (12)."""
    owner, name = fault
    monkeypatch.setattr(owner, name, _boom)
    caplog.set_level(logging.DEBUG, logger="spancost")
    for _ in range(2):
        # The tags block also undoes what a failed `detach_hints` leaves in the context.
        with spancost.tags(prompt="faulty"):
            for key in CALLS:
                api, asynchronous, traced = key
                assert call(api, recorded(api, asynchronous, traced), asynchronous) == baseline[key], key
        assert len(inference_spans(instrumented)) == spans_per_round
        instrumented.clear()
    logged = [r for r in caplog.records if r.exc_info and "injected fault" in str(r.exc_info[1])]
    assert sum(r.levelno >= logging.WARNING for r in logged) == 1, "logged once, at warning level"


@pytest.mark.parametrize("content", [False, True], ids=["content-off", "content-on"])
@pytest.mark.parametrize("traced", MODES)
def test_one_shot_iterables_in_the_request_are_left_for_the_sdk(
    instrumented: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, traced: bool, content: bool
) -> None:
    """The SDK takes any iterable of messages or system blocks; a generator can be read once, and
    that once is the SDK's: the request sent is the same as with lists."""
    if content:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    sent: list[bytes] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.content)
        return respond(message(usage={"input_tokens": 3, "output_tokens": 1}))(request)

    sdk = client("anthropic", answer, traced=traced)
    system = [{"type": "text", "text": "be nice"}]
    sdk.messages.create(model=MODEL, max_tokens=10, system=system, messages=REQUEST["messages"])
    sdk.messages.create(
        model=MODEL, max_tokens=10, system=(b for b in system), messages=(m for m in REQUEST["messages"])
    )
    assert sent[0] == sent[1]
    assert len(inference_spans(instrumented)) == 2


# --- uninstrument -------------------------------------------------------------------------------------------


def _patched_attributes() -> dict[tuple[str, str, str], Any]:
    found = {}
    for patch in available_patches():
        owner = getattr(importlib.import_module(patch.module), patch.owner)
        found[patch.module, patch.owner, patch.method] = vars(owner)[patch.method]
    return found


def test_every_message_method_of_this_sdk_is_patched() -> None:
    """Stable and beta `Messages`/`AsyncMessages` `create`/`parse`/`stream`, and the copies Bedrock's
    and Vertex's beta resources make of them."""
    assert set(_patched_attributes()) == {(p.module, p.owner, p.method) for p in PATCHES}
    assert len(PATCHES) == 24


def test_uninstrument_restores_the_sdk_exactly_and_instrumenting_twice_wraps_once(
    spans: InMemorySpanExporter, tracer_provider
) -> None:
    originals = _patched_attributes()
    assert not any(isinstance(method, FunctionWrapper) for method in originals.values())
    spancost.instrument(tracer_provider=tracer_provider)
    spancost.instrument(tracer_provider=tracer_provider)
    try:
        for key, wrapped in _patched_attributes().items():
            assert isinstance(wrapped, FunctionWrapper), key
            assert wrapped.__wrapped__ is originals[key], f"{key} is wrapped more than once"
        call("create", recorded("create", traced=False), False)
        call("create", recorded("create", traced=True), False)
        assert len(inference_spans(spans)) == 2
        assert all("gen_ai.usage.cost.amount" in s.attributes for s in inference_spans(spans))
    finally:
        spancost.uninstrument()
    restored = _patched_attributes()
    assert all(restored[key] is originals[key] for key in originals)
    spans.clear()
    call("create", recorded("create", traced=False), False)
    assert inference_spans(spans) == []


def test_a_client_built_while_instrumented_works_the_same_after_uninstrument(
    spans: InMemorySpanExporter, tracer_provider
) -> None:
    spancost.instrument(tracer_provider=tracer_provider)
    try:
        sdk = client(
            "anthropic", respond(message(usage={"input_tokens": 1, "output_tokens": 1})), traced=False
        )
        sdk.messages.create(**REQUEST)
    finally:
        spancost.uninstrument()
    spans.clear()
    assert sdk.messages.create(**REQUEST).usage.input_tokens == 1
    assert inference_spans(spans) == []
