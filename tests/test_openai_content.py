"""Message content: never recorded unless the user opts in
(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT), then recorded as JSON in the GenAI
semantic-convention message shape. API keys never."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import inference_spans
from openai.lib.streaming.chat import AsyncChatCompletionStreamManager
from openai.lib.streaming.responses import AsyncResponseStreamManager
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel
from test_openai_traffic import Cassette, ChatServer, ResponsesServer, client_for, one_span, run

from spancost.instrumentation._inference import CAPTURE_CONTENT_ENV

SYSTEM = "Secret system 51c0"
PROMPT = "Secret prompt 7f3a"
ANSWER = "Secret answer 9b1c"
API_KEY = "test_openai_api_key"
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]


class Reply(BaseModel):
    text: str


async def settle(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def drain(stream: Any) -> list[Any]:
    return [item async for item in stream] if hasattr(stream, "__aiter__") else list(stream)


async def through_helper(manager: Any) -> Any:
    # Not hasattr(manager, "__aenter__"): every wrapt proxy has both context-manager protocols.
    if isinstance(manager, (AsyncChatCompletionStreamManager, AsyncResponseStreamManager)):
        async with manager as stream:
            return await drain(stream)
    with manager as stream:
        return await drain(stream)


async def chat_create(client: Any) -> Any:
    return await settle(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))


async def chat_stream(client: Any) -> Any:
    return await drain(
        await settle(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    )


async def chat_parse(client: Any) -> Any:
    return await settle(
        client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Reply)
    )


async def chat_helper(client: Any) -> Any:
    return await through_helper(client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES))


async def chat_raw(client: Any) -> Any:
    raw = await settle(
        client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    )
    return raw.parse()


async def responses_create(client: Any) -> Any:
    return await settle(client.responses.create(model="gpt-4o-mini", instructions=SYSTEM, input=PROMPT))


async def responses_stream(client: Any) -> Any:
    stream = client.responses.create(model="gpt-4o-mini", instructions=SYSTEM, input=PROMPT, stream=True)
    return await drain(await settle(stream))


async def responses_parse(client: Any) -> Any:
    return await settle(client.responses.parse(model="gpt-4o-mini", instructions=SYSTEM, input=PROMPT))


async def responses_helper(client: Any) -> Any:
    return await through_helper(
        client.responses.stream(model="gpt-4o-mini", instructions=SYSTEM, input=PROMPT)
    )


async def embeddings(client: Any) -> Any:
    return await settle(client.embeddings.create(model="text-embedding-3-small", input=PROMPT))


def chat_server() -> Any:
    return ChatServer(words=(json.dumps({"text": ANSWER}),))


PATHS: list[Any] = [
    pytest.param(chat_create, chat_server, id="chat-create"),
    pytest.param(chat_stream, chat_server, id="chat-stream"),
    pytest.param(chat_parse, chat_server, id="chat-parse"),
    pytest.param(chat_helper, chat_server, id="chat-stream-helper"),
    pytest.param(chat_raw, chat_server, id="chat-raw-response"),
    pytest.param(responses_create, lambda: ResponsesServer(ANSWER), id="responses-create"),
    pytest.param(responses_stream, lambda: ResponsesServer(ANSWER), id="responses-stream"),
    pytest.param(responses_parse, lambda: ResponsesServer(ANSWER), id="responses-parse"),
    pytest.param(responses_helper, lambda: ResponsesServer(ANSWER), id="responses-stream-helper"),
    pytest.param(embeddings, lambda: Cassette("test_embeddings_with_dimensions"), id="embeddings"),
]


def make_call(mode: str, path: Callable[[Any], Awaitable[Any]], server: Callable[[], Any]) -> Any:
    return run(path(client_for(mode, server())))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("path", "server"), PATHS)
def test_no_content_and_no_api_key_is_recorded_by_default(
    mode: str, path: Any, server: Any, instrumented: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    make_call(mode, path, server)

    (span,) = [s for s in instrumented.get_finished_spans() if "gen_ai.operation.name" in s.attributes]
    recorded = json.dumps(dict(span.attributes), default=str)
    for secret in (SYSTEM, PROMPT, ANSWER, API_KEY, "Secret"):
        assert secret not in recorded
    assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"} & set(
        span.attributes
    )
    if path is not embeddings:
        assert span.attributes["gen_ai.usage.input_tokens"] > 0, "the call is still measured"


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "SPAN_ONLY")


CONTENT = {
    "system": "gen_ai.system_instructions",
    "input": "gen_ai.input.messages",
    "output": "gen_ai.output.messages",
}


def content(span: Any) -> dict[str, Any]:
    """The span's content attributes, decoded: `system`, `input`, `output`."""
    return {
        key: json.loads(span.attributes[name]) for key, name in CONTENT.items() if name in span.attributes
    }


INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
    {"role": "user", "parts": [{"type": "text", "content": PROMPT}]},
]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "path", [chat_create, chat_stream, chat_helper], ids=["create", "stream", "stream-helper"]
)
def test_chat_content_is_recorded_in_the_semantic_convention_shape_when_opted_in(
    mode: str, path: Any, capture: None, instrumented: InMemorySpanExporter
) -> None:
    """Chat Completions keeps system messages in its history: they stay in gen_ai.input.messages."""
    run(path(client_for(mode, ChatServer(words=("This is", " a test.")))))
    assert content(one_span(instrumented)) == {
        "input": INPUT,
        "output": [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "This is a test."}],
                "finish_reason": "stop",
            }
        ],
    }


def test_chat_tool_calls_and_results_are_recorded_as_parts(
    capture: None, instrumented: InMemorySpanExporter
) -> None:
    """Recorded round trip: the model asks for two tool calls, then answers from their results."""
    traffic = Cassette("test_chat_completion_tool_calls_with_content")
    client = client_for("sync", traffic)
    first = client.chat.completions.create(**traffic.recorded_request())
    calls = first.choices[0].message.tool_calls
    follow_up = [
        *traffic.recorded_request()["messages"],
        first.choices[0].message,  # an SDK object, as apps pass it back
        *({"role": "tool", "tool_call_id": call.id, "content": "15 degrees"} for call in calls),
    ]
    client.chat.completions.create(**{**traffic.recorded_request(1), "messages": follow_up})

    first_span, second_span = inference_spans(instrumented)
    asked = json.loads(first_span.attributes["gen_ai.output.messages"])
    assert asked == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": call.id,
                    "name": "get_current_weather",
                    "arguments": json.loads(call.function.arguments),
                }
                for call in calls
            ],
            "finish_reason": "tool_calls",
        }
    ]
    history = json.loads(second_span.attributes["gen_ai.input.messages"])
    assert history[2] == {"role": "assistant", "parts": asked[0]["parts"]}
    assert history[3:] == [
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": call.id, "response": "15 degrees"}]}
        for call in calls
    ]


def test_streamed_tool_calls_are_put_back_together(capture: None, instrumented: InMemorySpanExporter) -> None:
    traffic = Cassette("test_chat_completion_multiple_tools_streaming_with_content")
    list(client_for("sync", traffic).chat.completions.create(**traffic.recorded_request()))

    (output,) = json.loads(one_span(instrumented).attributes["gen_ai.output.messages"])
    assert output["finish_reason"] == "tool_calls"
    assert [(part["id"], part["arguments"]) for part in output["parts"]] == [
        ("call_fHCjJqt9Pysde6vcJcvbXGBx", {"location": "Seattle, WA"}),
        ("call_3J9foSw3CUb48lrqIXoTky6U", {"location": "San Francisco, CA"}),
    ]


def test_chat_media_parts_are_recorded_by_reference_or_as_blobs(
    capture: None, instrumented: InMemorySpanExporter
) -> None:
    parts = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-123"}},
    ]
    client_for("sync", ChatServer()).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": parts, "name": "ann"}]
    )
    (message,) = json.loads(one_span(instrumented).attributes["gen_ai.input.messages"])
    assert message == {
        "role": "user",
        "name": "ann",
        "parts": [
            {"type": "text", "content": "What is in these?"},
            {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
            {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw0KGgo="},
            {"type": "blob", "modality": "audio", "content": "UklGRg=="},
            {"type": "file", "modality": "file", "file_id": "file-123"},
        ],
    }


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "path", [responses_create, responses_stream, responses_helper], ids=["create", "stream", "stream-helper"]
)
def test_response_instructions_input_and_output_are_recorded_when_opted_in(
    mode: str, path: Any, capture: None, instrumented: InMemorySpanExporter
) -> None:
    run(path(client_for(mode, ResponsesServer(ANSWER))))
    assert content(one_span(instrumented)) == {
        "system": [{"type": "text", "content": SYSTEM}],
        "input": [{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}],
        "output": [
            {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
        ],
    }


def test_response_input_items_and_tool_calls_are_recorded_as_parts(
    capture: None, instrumented: InMemorySpanExporter
) -> None:
    """Recorded forced tool call, sent with a history of typed input items."""
    traffic = Cassette("test_responses_create_captures_tool_call_content[content_mode0]")
    history = [
        {"role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
        {"type": "function_call", "call_id": "call_0", "name": "get_time", "arguments": '{"tz": "PST"}'},
        {"type": "function_call_output", "call_id": "call_0", "output": "09:00"},
        {"role": "user", "content": "What's the weather in Seattle right now?"},
    ]
    client_for("sync", traffic).responses.create(**{**traffic.recorded_request(), "input": history})

    recorded = content(one_span(instrumented))
    assert recorded["input"] == [
        {"role": "developer", "parts": [{"type": "text", "content": "Be brief."}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_0", "name": "get_time", "arguments": {"tz": "PST"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_0", "response": "09:00"}]},
        {"role": "user", "parts": [{"type": "text", "content": "What's the weather in Seattle right now?"}]},
    ]
    assert "system" not in recorded, "a developer message in the input is history, not instructions"
    assert recorded["output"] == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_90uO5LcGP5vTBTCrjyhYtWsA",
                    "name": "get_current_weather",
                    "arguments": {"location": "Seattle, WA"},
                }
            ],
            "finish_reason": "tool_call",
        }
    ]


@pytest.mark.parametrize(
    "capture_on", [pytest.param(True, id="capture-on"), pytest.param(False, id="capture-off")]
)
def test_messages_given_as_an_iterator_reach_the_api_untouched(
    capture_on: bool, instrumented: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """spancost reads lists and tuples only: reading an iterator would use it up before the SDK sends it."""
    if capture_on:
        monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    server = ChatServer()
    client_for("sync", server).chat.completions.create(model="gpt-4o-mini", messages=iter(MESSAGES))

    assert server.body()["messages"] == MESSAGES
    assert one_span(instrumented).attributes["gen_ai.usage.input_tokens"] == 1200
