"""Chat Completions through every door of the openai SDK: create, parse, raw responses, streams, the
stream helper; sync and async. Each call is one priced span, and the caller gets what the SDK gives."""

from __future__ import annotations

import gc
import hashlib
from typing import Any

import httpx2
import openai
import pytest
from conftest import inference_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel
from test_openai_traffic import (
    CHAT_USAGE_COST,
    GPT_4O_MINI,
    MESSAGES,
    Cassette,
    ChatServer,
    client_for,
    json_response,
    one_span,
    run,
    streamed_attributes,
    uninstrumented,
)

import spancost
from spancost.pricing import default_table

MODES = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]


def _priced(amount: float, input_cost: float, output_cost: float, key: str, cache_read: float = 0.0) -> dict:
    return {
        "gen_ai.usage.cost.amount": amount,
        "gen_ai.usage.cost.currency": "USD",
        "gen_ai.usage.cost.source": "local",
        "spancost.cost.status": "priced",
        "spancost.cost.input": input_cost,
        "spancost.cost.output": output_cost,
        "spancost.cost.cache_read": cache_read,
        "spancost.cost.cache_write": 0.0,
        "spancost.price.key": key,
        "spancost.price.version": default_table().version,
        "spancost.price.tier": "standard",
    }


def call(mode: str, client: Any, method: str, /, **kwargs: Any) -> Any:
    """`client.chat.completions.<method>(**kwargs)`, awaited for the async client."""
    target = client.chat.completions
    for name in method.split("."):
        target = getattr(target, name)
    if mode == "sync":
        return target(**kwargs)

    async def awaited() -> Any:
        return await target(**kwargs)

    return run(awaited())


def drain(mode: str, stream: Any) -> list[Any]:
    if mode == "sync":
        return list(stream)

    async def collect() -> list[Any]:
        return [chunk async for chunk in stream]

    return run(collect())


def stream_call(mode: str, client: Any, **kwargs: Any) -> list[Any]:
    """Create a chat stream and read it to the end (one event loop for both, as an app would)."""
    if mode == "sync":
        return list(client.chat.completions.create(stream=True, **kwargs))

    async def collect() -> list[Any]:
        stream = await client.chat.completions.create(stream=True, **kwargs)
        return [chunk async for chunk in stream]

    return run(collect())


def dumps(items: list[Any]) -> list[dict[str, Any]]:
    return [dump(item) for item in items]


def dump(item: Any) -> dict[str, Any]:
    # Parsed completions hold the caller's model in a field typed None: pydantic warns, harmlessly.
    return item.model_dump(warnings=False)


# --- create, non-streaming --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_chat_completion_is_one_priced_client_span(mode: str, instrumented: InMemorySpanExporter) -> None:
    """Recorded gpt-4o-mini call: 12 in × $0.15/M + 5 out × $0.60/M = $0.0000018 + $0.000003 = $0.0000048."""
    traffic = Cassette("test_chat_completion_with_content")
    response = call(
        mode, client_for(mode, traffic), "create", model="gpt-4o-mini", messages=MESSAGES, stream=False
    )

    assert response.choices[0].message.content == "This is a test."
    span = one_span(instrumented)
    assert (span.name, span.kind, span.status.status_code) == (
        "chat gpt-4o-mini",
        SpanKind.CLIENT,
        StatusCode.UNSET,
    )
    assert dict(span.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-ASYMQRl3A3DXL9FWCK9tnGRcKIO7q",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 5,
        **_priced(0.0000048, 0.0000018, 0.000003, "openai/gpt-4o-mini"),
    }


@pytest.mark.parametrize("mode", MODES)
def test_multiple_choices_and_request_parameters_are_recorded(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """n=2: 12 in × 0.15 + 24 out × 0.60 = $0.0000018 + $0.0000144 = $0.0000162."""
    client = client_for(mode, Cassette("test_chat_completion_multiple_choices"))
    call(
        mode,
        client,
        "create",
        model="gpt-4o-mini",
        messages=MESSAGES,
        n=2,
        temperature=0.5,
        top_p=1,
        max_tokens=50,
    )
    attributes = one_span(instrumented).attributes
    assert attributes["gen_ai.response.finish_reasons"] == ("stop", "stop")
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.top_p"] == 1.0
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.usage.cost.amount"] == 0.0000162


class Answer(BaseModel):
    answer: str


@pytest.mark.parametrize("mode", MODES)
def test_chat_parse_bypasses_create_and_is_still_one_priced_span(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """`parse` posts by itself. CHAT_USAGE on gpt-4o-mini = $0.0001272 (see CHAT_USAGE)."""
    server = ChatServer(words=('{"answer": "yes"}',))
    with uninstrumented():
        expected = call(
            mode,
            client_for(mode, server),
            "parse",
            model="gpt-4o-mini",
            messages=MESSAGES,
            response_format=Answer,
        )
    parsed = call(
        mode,
        client_for(mode, server),
        "parse",
        model="gpt-4o-mini",
        messages=MESSAGES,
        response_format=Answer,
    )

    assert parsed.choices[0].message.parsed == Answer(answer="yes")
    assert dump(parsed) == dump(expected)
    attributes = one_span(instrumented).attributes
    assert attributes["gen_ai.response.model"] == GPT_4O_MINI
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attributes["gen_ai.usage.cost.amount"] == CHAT_USAGE_COST


# --- raw responses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["create", "parse"])
def test_with_raw_response_returns_the_raw_response_and_is_priced(
    mode: str, method: str, instrumented: InMemorySpanExporter
) -> None:
    kwargs: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
    if method == "parse":
        kwargs["response_format"] = Answer
    server = ChatServer(words=('{"answer": "yes"}',))
    with uninstrumented():
        expected = call(mode, client_for(mode, server), f"with_raw_response.{method}", **kwargs)
    raw = call(mode, client_for(mode, server), f"with_raw_response.{method}", **kwargs)

    assert type(raw) is type(expected) is openai._legacy_response.LegacyAPIResponse
    assert raw.parse() is raw.parse(), "the SDK's parse cache hands the caller one object"
    assert dump(raw.parse()) == dump(expected.parse())
    assert raw.headers["content-type"] == "application/json"
    assert one_span(instrumented).attributes["gen_ai.usage.cost.amount"] == CHAT_USAGE_COST


def test_with_raw_response_stream_is_left_to_the_caller_and_recorded_unpriced(
    instrumented: InMemorySpanExporter,
) -> None:
    """A raw stream is the caller's to read: spancost asks for no usage chunk it could not hide."""
    server = ChatServer()
    with uninstrumented():
        expected = dumps(
            list(
                call(
                    "sync",
                    client_for("sync", server),
                    "with_raw_response.create",
                    model="gpt-4o-mini",
                    messages=MESSAGES,
                    stream=True,
                ).parse()
            )
        )
    raw = call(
        "sync",
        client_for("sync", server),
        "with_raw_response.create",
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
    )

    assert "stream_options" not in server.body()
    assert dumps(list(raw.parse())) == expected
    attributes = one_span(instrumented).attributes
    assert attributes["gen_ai.request.stream"] is True
    assert "gen_ai.usage.input_tokens" not in attributes
    assert "spancost.cost.status" not in attributes


@pytest.mark.parametrize("mode", MODES)
def test_with_streaming_response_leaves_the_body_to_the_caller(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """The body is read inside the caller's block, when it chooses: the call is recorded without usage."""
    server = ChatServer()

    def on_the_wire(request: Any) -> Any:
        answer = server(request)
        body = [answer.content]

        async def stream() -> Any:
            for part in body:
                yield part

        return httpx2.Response(
            200, headers=answer.headers, content=stream() if mode == "async" else iter(body)
        )

    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES}
    client = client_for(mode, on_the_wire)
    if mode == "sync":
        with client.chat.completions.with_streaming_response.create(**kwargs) as response:
            assert not response.http_response.is_closed, "the body is still the caller's to read"
            text = response.parse().choices[0].message.content
    else:

        async def read() -> str:
            async with client.chat.completions.with_streaming_response.create(**kwargs) as response:
                assert not response.http_response.is_closed, "the body is still the caller's to read"
                return (await response.parse()).choices[0].message.content

        text = run(read())
    assert text == "This is a test."
    span = one_span(instrumented)
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert "gen_ai.usage.input_tokens" not in span.attributes


# --- streams -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_chat_stream_with_usage_is_priced_from_the_final_chunk(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """Recorded gpt-4 stream with include_usage:
    12 in × $30/M + 5 out × $60/M = $0.00036 + $0.0003 = $0.00066."""
    kwargs = {"model": "gpt-4", "messages": MESSAGES, "stream_options": {"include_usage": True}}
    with uninstrumented():
        expected = stream_call(mode, client_for(mode, Cassette("test_chat_completion_streaming")), **kwargs)
    chunks = stream_call(mode, client_for(mode, Cassette("test_chat_completion_streaming")), **kwargs)

    assert dumps(chunks) == dumps(expected), "the caller sees every chunk, the usage chunk it asked for too"
    assert streamed_attributes(one_span(instrumented)) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4",
        "gen_ai.request.stream": True,
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.response.model": "gpt-4-0613",
        "gen_ai.response.id": "chatcmpl-ASYMZ4oSykiIFK4lXLReDiKyAjsQl",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 5,
        **_priced(0.00066, 0.00036, 0.0003, "openai/gpt-4"),
    }


@pytest.mark.parametrize("mode", MODES)
def test_chat_stream_without_usage_asks_for_it_and_hides_the_usage_chunk(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """The caller did not ask for usage: spancost asks, prices the call ($0.0001272, see CHAT_USAGE),
    and the caller sees exactly the chunks it would have seen; its arguments are not touched."""
    server = ChatServer()
    with uninstrumented():
        expected = stream_call(mode, client_for(mode, server), model="gpt-4o-mini", messages=MESSAGES)
    options = {"include_obfuscation": False}
    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream_options": options}
    chunks = stream_call(mode, client_for(mode, server), **kwargs)

    assert dumps(chunks) == dumps(expected)
    assert all(chunk.choices for chunk in chunks)
    assert server.body()["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert options == {"include_obfuscation": False}
    assert kwargs["stream_options"] is options
    attributes = streamed_attributes(one_span(instrumented))
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.cost.amount"] == CHAT_USAGE_COST


@pytest.mark.parametrize("mode", MODES)
def test_recorded_chat_stream_without_usage_is_recorded_unpriced(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """The recorded server sent no usage chunk (the call predates the ask): no tokens, so no cost — not $0."""
    with uninstrumented():
        expected = stream_call(
            mode,
            client_for(mode, Cassette("test_chat_completion_streaming_not_complete")),
            model="gpt-4",
            messages=MESSAGES,
        )
    traffic = Cassette("test_chat_completion_streaming_not_complete")
    chunks = stream_call(mode, client_for(mode, traffic), model="gpt-4", messages=MESSAGES)

    assert dumps(chunks) == dumps(expected)
    assert traffic.body()["stream_options"] == {"include_usage": True}
    attributes = streamed_attributes(one_span(instrumented))
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.response.model"] == "gpt-4-0613"
    assert not any(key.startswith(("gen_ai.usage", "spancost.cost")) for key in attributes)


@pytest.mark.parametrize("mode", MODES)
def test_chat_stream_of_parallel_tool_calls_is_priced(mode: str, instrumented: InMemorySpanExporter) -> None:
    """Recorded parallel tool calls:
    75 in × $0.15/M + 51 out × $0.60/M = $0.00001125 + $0.0000306 = $0.00004185."""
    traffic = Cassette("test_chat_completion_multiple_tools_streaming_with_content")
    chunks = stream_call(mode, client_for(mode, traffic), **traffic.recorded_request(leave_out=("stream",)))

    assert (
        len(
            {
                c.choices[0].delta.tool_calls[0].index
                for c in chunks
                if c.choices and c.choices[0].delta.tool_calls
            }
        )
        == 2
    )
    attributes = streamed_attributes(one_span(instrumented))
    assert attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert attributes["gen_ai.usage.cost.amount"] == 0.00004185


def test_chat_stream_closed_early_ends_span_with_partial_attributes(
    instrumented: InMemorySpanExporter,
) -> None:
    stream = client_for("sync", ChatServer()).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    first = next(stream)
    assert inference_spans(instrumented) == [], "the call lasts until the stream ends"
    stream.close()

    assert first.choices[0].delta.role == "assistant"
    attributes = streamed_attributes(one_span(instrumented))
    assert attributes["gen_ai.response.model"] == GPT_4O_MINI
    assert "gen_ai.usage.input_tokens" not in attributes
    assert "gen_ai.response.finish_reasons" not in attributes
    assert stream.response.is_closed


def test_chat_stream_left_in_its_with_block_ends_span(instrumented: InMemorySpanExporter) -> None:
    client = client_for("sync", ChatServer())
    with client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        next(stream)
    assert isinstance(stream, openai.Stream)
    assert one_span(instrumented).status.status_code is StatusCode.UNSET


def test_chat_stream_dropped_unread_ends_span_when_collected(instrumented: InMemorySpanExporter) -> None:
    client = client_for("sync", ChatServer())
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(stream)
    del stream
    gc.collect()
    assert one_span(instrumented).attributes["gen_ai.response.model"] == GPT_4O_MINI


@pytest.mark.parametrize("how", ["aclose", "close", "async-with"])
def test_async_chat_stream_ended_early_ends_span(how: str, instrumented: InMemorySpanExporter) -> None:
    client = client_for("async", ChatServer())

    async def read_one() -> Any:
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        if how == "async-with":
            async with stream:
                first = await stream.__anext__()
        else:
            first = await stream.__anext__()
            await getattr(stream, how)()
        assert inference_spans(instrumented), f"{how} ends the call"
        return first

    assert run(read_one()).choices[0].delta.role == "assistant"
    assert one_span(instrumented).attributes["gen_ai.request.stream"] is True


def test_chat_stream_keeps_the_sdk_stream_interface(instrumented: InMemorySpanExporter) -> None:
    stream = client_for("sync", ChatServer()).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200
    assert iter(stream) is stream
    assert [chunk.choices[0].finish_reason for chunk in stream][-1] == "stop"


# --- the stream helper -----------------------------------------------------------------------------


def helper_events(mode: str, client: Any, **kwargs: Any) -> tuple[list[Any], Any]:
    """Every event of `chat.completions.stream(...)` and its final completion."""
    if mode == "sync":
        with client.chat.completions.stream(**kwargs) as stream:
            return list(stream), stream.get_final_completion()

    async def collect() -> tuple[list[Any], Any]:
        async with client.chat.completions.stream(**kwargs) as stream:
            return [event async for event in stream], await stream.get_final_completion()

    return run(collect())


@pytest.mark.parametrize("mode", MODES)
def test_chat_stream_helper_is_one_priced_span_and_keeps_its_events(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    server = ChatServer()
    with uninstrumented():
        expected_events, expected_final = helper_events(
            mode, client_for(mode, server), model="gpt-4o-mini", messages=MESSAGES
        )
    events, final = helper_events(mode, client_for(mode, server), model="gpt-4o-mini", messages=MESSAGES)

    assert dumps(events) == dumps(expected_events)
    assert dump(final) == dump(expected_final)
    assert final.usage is None, "the caller did not ask for usage, so its completion has none"
    assert (events[-1].type, events[-1].content) == ("content.done", "This is a test.")
    attributes = streamed_attributes(one_span(instrumented))
    assert attributes["gen_ai.usage.cost.amount"] == CHAT_USAGE_COST


@pytest.mark.parametrize("mode", MODES)
def test_chat_stream_helper_left_early_ends_span_with_its_block(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    client = client_for(mode, ChatServer())
    if mode == "sync":
        with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
            next(iter(stream))
    else:

        async def first() -> Any:
            async with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
                await stream.__anext__()
            return stream

        stream = run(first())
    assert stream is not None, "the helper stream is still referenced: only leaving the block ended the call"
    assert one_span(instrumented).attributes["gen_ai.response.model"] == GPT_4O_MINI


def test_chat_stream_helper_with_a_response_format_parses_the_final_completion(
    instrumented: InMemorySpanExporter,
) -> None:
    client = client_for("sync", ChatServer(words=('{"answer": ', '"yes"}')))
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Answer
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Answer(answer="yes")
    assert len(inference_spans(instrumented)) == 1


def test_chat_stream_refused_by_the_server_raises_the_sdk_error_and_marks_the_span(
    instrumented: InMemorySpanExporter,
) -> None:
    """A stream the server refuses (HTTP 500) fails in `create`, before any proxy: one failed span."""

    def handler(request: Any) -> Any:
        return json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)

    with pytest.raises(openai.InternalServerError, match="boom"):
        client_for("sync", handler).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
    assert one_span(instrumented).attributes["error.type"] == "InternalServerError"


@pytest.mark.parametrize("mode", MODES)
def test_tags_and_the_system_prompt_version_reach_a_stream_helpers_span(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """The async helper makes its call on entering its block: the tags in force there are the call's."""
    system = "You are a terse assistant."
    messages = [{"role": "system", "content": system}, *MESSAGES]
    with spancost.tags(prompt="smoke-test", user_id="u-42"):
        helper_events(mode, client_for(mode, ChatServer()), model="gpt-4o-mini", messages=messages)
    attributes = one_span(instrumented).attributes
    assert attributes["spancost.prompt.name"] == "smoke-test"
    assert attributes["user.id"] == "u-42"
    assert attributes["spancost.prompt.version"] == hashlib.sha256(system.encode()).hexdigest()[:12]
