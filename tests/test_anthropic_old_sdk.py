"""anthropic SDKs from before built-in tracing: spancost makes the one span itself, the same as today.

`make test` installs each version of `OLD_SDKS` into `.venv/old-anthropic/<version>` (with its own
dependencies: 0.75.0 is on httpx, 1.13.0 on httpx2). This module is also the driver that runs in a
subprocess with that directory first on PYTHONPATH: it replays the recorded traffic through the old
SDK (sync and async, `stream=True`, the `messages.stream()` helper, an error) with
`spancost.instrument()` and an in-memory exporter, and prints the finished spans as JSON. The test
runs the very same scenarios in-process on the current SDK with its tracing off, and requires the
same span, attribute for attribute and cost for cost.

1.13.0 is the newest release without `anthropic/_tracing.py` (1.14.0 has it); 0.75.0 is the SDK
the cassettes were recorded with, from the httpx generation before the 1.0 move to httpx2.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OLD_SDK_DIR = REPO / ".venv" / "old-anthropic"
# Version → the HTTP library it is built on.
OLD_SDKS = {"1.13.0": "httpx2", "0.75.0": "httpx"}

MODEL = "claude-sonnet-4-20250514"
MESSAGES = [{"role": "user", "content": "Say hello in one word."}]
SYSTEM = "You greet people."
TOOLS = [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}]
THINKING = {"type": "enabled", "budget_tokens": 1024}

BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"
PLATFORM_BODY = {
    "id": "msg_bdrk_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 120, "output_tokens": 30},
}

# Values that differ between two runs of the same call.
_TIMINGS = ("gen_ai.response.time_to_first_chunk",)


# --- the driver: runs with whichever anthropic SDK is importable ------------------------------------


def _replay(http: Any, cassettes: Path, name: str) -> Callable[[Any], Any]:
    """A MockTransport handler answering with the cassette's recorded responses, in order."""
    import yaml

    path = cassettes / "opentelemetry-instrumentation-anthropic" / f"{name}.yaml"
    interactions = yaml.safe_load(path.read_text())["interactions"]
    hop = {"content-encoding", "content-length", "transfer-encoding", "connection"}

    def handle(request: Any) -> Any:
        response = interactions.pop(0)["response"]
        headers = [
            (k, v) for k, values in response["headers"].items() if k.lower() not in hop for v in values
        ]
        body = response["body"]["string"].encode("utf-8")
        return http.Response(response["status"]["code"], headers=headers, content=body)

    return handle


def run_scenarios(
    anthropic: Any, http: Any, cassettes: Path, finished: Callable[[], list[Any]], **options: Any
) -> dict[str, list[dict[str, Any]]]:
    """Every scenario once; for each, the chat spans it produced."""

    def client(name: str, asynchronous: bool = False) -> Any:
        transport = http.MockTransport(_replay(http, cassettes, name))
        if asynchronous:
            return anthropic.AsyncAnthropic(
                api_key="k", max_retries=0, http_client=http.AsyncClient(transport=transport), **options
            )
        return anthropic.Anthropic(
            api_key="k", max_retries=0, http_client=http.Client(transport=transport), **options
        )

    request = {"model": MODEL, "max_tokens": 100, "messages": MESSAGES, "system": SYSTEM}

    def sync_create() -> None:
        client("test_sync_messages_create_basic").messages.create(**request)

    def sync_tool_use() -> None:
        client("test_sync_messages_create_captures_tool_use_content").messages.create(**request, tools=TOOLS)

    def sync_thinking() -> None:
        thinking = {**request, "max_tokens": 2048, "thinking": THINKING}
        client("test_sync_messages_create_captures_thinking_content").messages.create(**thinking)

    def sync_create_stream() -> None:
        stream = client("test_sync_messages_create_streaming").messages.create(**request, stream=True)
        assert [event.type for event in stream][-1] == "message_stop"

    def sync_stream_helper() -> None:
        with client("test_sync_messages_stream").messages.stream(**request) as stream:
            assert stream.get_final_text() == "Hello!"

    def sync_error() -> None:
        try:
            client("test_sync_messages_create_api_error").messages.create(**{**request, "model": "invalid"})
        except anthropic.NotFoundError:
            return
        raise AssertionError("the recorded 404 did not raise")

    async def async_calls() -> None:
        await client("test_sync_messages_create_basic", True).messages.create(**request)
        stream = await client("test_sync_messages_create_streaming", True).messages.create(
            **request, stream=True
        )
        async for _ in stream:
            pass
        async with client("test_sync_messages_stream", True).messages.stream(**request) as helper:
            assert "".join([text async for text in helper.text_stream]) == "Hello!"

    def async_create() -> None:
        asyncio.run(async_calls())

    def platform(cls: Any, **credentials: Any) -> Any:
        transport = http.MockTransport(lambda request: http.Response(200, json=PLATFORM_BODY))
        return cls(max_retries=0, http_client=http.Client(transport=transport), **credentials, **options)

    def bedrock_create() -> None:
        # Signed with AWS keys (botocore), which every version takes; bearer keys came later.
        bedrock = platform(
            anthropic.AnthropicBedrock,
            aws_access_key="AKIDEXAMPLE",
            aws_secret_key="secret",
            aws_region="us-east-1",
        )
        bedrock.messages.create(**{**request, "model": BEDROCK_MODEL})

    def vertex_create() -> None:
        vertex = platform(anthropic.AnthropicVertex, region="us-east5", project_id="p", access_token="t")
        vertex.messages.create(**{**request, "model": VERTEX_MODEL})

    scenarios = {
        "sync-create": sync_create,
        "sync-tool-use": sync_tool_use,
        "sync-thinking": sync_thinking,
        "sync-create-stream": sync_create_stream,
        "sync-stream-helper": sync_stream_helper,
        "sync-error": sync_error,
        # One asyncio.run for the three async calls: one event loop, as an app has.
        "async-create+stream+helper": async_create,
        "bedrock-create": bedrock_create,
        "vertex-create": vertex_create,
    }
    spans: dict[str, list[dict[str, Any]]] = {}
    for name, scenario in scenarios.items():
        finished()
        scenario()
        spans[name] = [
            span_record(s) for s in finished() if s.attributes.get("gen_ai.operation.name") == "chat"
        ]
    return spans


def span_record(span: Any) -> dict[str, Any]:
    attributes = {k: (list(v) if isinstance(v, tuple) else v) for k, v in span.attributes.items()}
    for key in _TIMINGS:
        if key in attributes:
            attributes[key] = "<seconds>"
    return {
        "name": span.name,
        "scope": span.instrumentation_scope.name,
        "kind": span.kind.name,
        "status": span.status.status_code.name,
        "attributes": attributes,
    }


def main(cassettes: Path) -> None:
    import anthropic
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import spancost

    # The old SDKs are on httpx before 1.0 and on httpx2 from 1.0 on.
    http = getattr(anthropic._base_client, "httpx2", None) or anthropic._base_client.httpx
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    spancost.instrument(tracer_provider=provider)

    def finished() -> list[Any]:
        spans = list(exporter.get_finished_spans())
        exporter.clear()
        return spans

    report = {
        "version": anthropic.__version__,
        "sdk_module": anthropic.__file__,
        "http": http.__name__,
        "traces_itself": hasattr(anthropic, "_tracing"),
        "spans": run_scenarios(anthropic, http, cassettes, finished),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    sys.exit(0)


# --- the tests ----------------------------------------------------------------------------------------------

import anthropic as current_anthropic  # noqa: E402  (the driver above must not import the current SDK)
import httpx2  # noqa: E402
import pytest  # noqa: E402
from conftest import CASSETTES  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from spancost.pricing import default_table  # noqa: E402

# The exact cost of each scenario on claude-sonnet-4 ($3 in, $15 out per million), whoever runs it.
EXPECTED_COST = {
    "sync-create": [0.000114],  # 13 × 3 + 5 × 15 = 39 + 75 = 114 µ$
    "sync-tool-use": [0.001668],  # 386 × 3 + 34 × 15 = 1158 + 510 = 1668 µ$
    "sync-thinking": [0.006393],  # 46 × 3 + 417 × 15 = 138 + 6255 = 6393 µ$
    "sync-create-stream": [0.000114],  # message_start 13 in; message_delta's cumulative 5 out, not 2 + 5
    "sync-stream-helper": [0.000114],  # the same recorded usage through the helper
    "sync-error": [None],  # a 404 has no usage and no cost
    "async-create+stream+helper": [0.000114] * 3,
    "bedrock-create": [0.00081],  # claude-sonnet-4-5: 120 × 3 + 30 × 15 = 360 + 450 µ$
    "vertex-create": [0.00081],
}


def _run_old_sdks() -> dict[str, subprocess.Popen[str]]:
    """Start one driver per old SDK, in parallel (each is mostly imports)."""
    running = {}
    for version in OLD_SDKS:
        target = OLD_SDK_DIR / version
        if not (target / ".installed").exists():
            pytest.fail(f"anthropic {version} is not installed in {target}: run `make old-anthropic`")
        path = [str(target), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        # Whatever the user's environment says, these old SDKs and spancost alone make the spans.
        env.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
        running[version] = subprocess.Popen(
            [sys.executable, __file__, str(CASSETTES)],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    return running


@pytest.fixture(scope="module")
def old_sdk_spans() -> dict[str, dict[str, Any]]:
    reports = {}
    for version, process in _run_old_sdks().items():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, f"anthropic {version} driver failed:\n{stderr}"
        reports[version] = json.loads(stdout.strip().splitlines()[-1])
    return reports


@pytest.fixture
def current_sdk_spans(instrumented: InMemorySpanExporter) -> dict[str, list[dict[str, Any]]]:
    """The same scenarios on the installed SDK with its own tracing off: spancost's span, today."""

    def finished() -> list[Any]:
        spans = list(instrumented.get_finished_spans())
        instrumented.clear()
        return spans

    return run_scenarios(current_anthropic, httpx2, CASSETTES, finished, open_telemetry=False)


@pytest.mark.parametrize("version", list(OLD_SDKS))
def test_old_sdk_really_is_the_old_one_without_tracing(old_sdk_spans, version: str) -> None:
    report = old_sdk_spans[version]
    assert report["version"] == version
    assert report["sdk_module"].startswith(str(OLD_SDK_DIR / version))
    assert report["traces_itself"] is False
    assert report["http"] == OLD_SDKS[version]


def test_make_installs_exactly_the_old_sdks_tested_here() -> None:
    makefile = (REPO / "Makefile").read_text()
    (line,) = [line for line in makefile.splitlines() if line.startswith("OLD_ANTHROPIC :=")]
    assert line.split(":=")[1].split() == list(OLD_SDKS)


@pytest.mark.parametrize("version", list(OLD_SDKS))
@pytest.mark.parametrize("scenario", list(EXPECTED_COST))
def test_old_sdk_call_is_one_priced_span_like_today(
    old_sdk_spans, current_sdk_spans, version: str, scenario: str
) -> None:
    old = old_sdk_spans[version]["spans"][scenario]
    today = current_sdk_spans[scenario]
    assert [s["attributes"].get("gen_ai.usage.cost.amount") for s in old] == EXPECTED_COST[scenario]
    assert old == today
    if scenario.startswith(("bedrock", "vertex")):
        provider = {"bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}[scenario.partition("-")[0]]
        assert old[0]["attributes"]["gen_ai.provider.name"] == provider
    for span in old:
        assert span["scope"] == "spancost.instrumentation.anthropic"
        assert span["kind"] == "CLIENT"
        if span["attributes"].get("gen_ai.usage.cost.amount") is not None:
            assert span["attributes"]["spancost.price.version"] == default_table().version
            assert span["attributes"]["spancost.prompt.version"]


def test_current_sdk_with_tracing_off_is_what_the_driver_compares_against() -> None:
    """The comparison above is only meaningful if today's run used spancost's span, not the SDK's."""
    client = current_anthropic.Anthropic(api_key="k", open_telemetry=False)
    assert client._tracer is None
