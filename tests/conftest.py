"""Shared fixtures: a real OpenTelemetry SDK pipeline, recorded API traffic, a real embedded ClickHouse."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spancost
from spancost._log import forget_logged
from spancost.collector.schema import SchemaConfig
from spancost.pricing.table import set_default_table

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPANCOST_SHARED", REPO.parent / "shared"))
CASSETTES = SHARED / "cassettes" / "opentelemetry-python-contrib"
REFERENCE_PRICES = SHARED / "reference-prices"

# One tracer provider for the whole run: OpenTelemetry allows the global provider to be set once,
# and the anthropic SDK sends its own spans to the global provider.
_MEMORY = InMemorySpanExporter()
_PROVIDER = TracerProvider(
    resource=Resource.create({"service.name": "spancost-tests", "service.version": "9.9.9"})
)
_PROVIDER.add_span_processor(SimpleSpanProcessor(_MEMORY))
trace.set_tracer_provider(_PROVIDER)


@pytest.fixture
def tracer_provider() -> TracerProvider:
    return _PROVIDER


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans exported during the test (after the spancost stage, when it is installed)."""
    _MEMORY.clear()
    yield _MEMORY
    _MEMORY.clear()


@pytest.fixture
def instrumented(spans: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """spancost.instrument() on the global provider for the length of the test."""
    forget_logged()
    set_default_table(None)
    spancost.instrument(tracer_provider=_PROVIDER)
    try:
        yield spans
    finally:
        spancost.uninstrument()
        set_default_table(None)


def inference_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get("gen_ai.operation.name") == "chat"
    ]


# --- recorded traffic -------------------------------------------------------------------------------


def load_cassette(library: str, name: str) -> list[dict[str, Any]]:
    path = CASSETTES / f"opentelemetry-instrumentation-{library}" / f"{name}.yaml"
    if not path.exists():
        pytest.fail(f"recorded traffic {path} is missing: the tests read ../shared/cassettes beside the repo")
    return yaml.safe_load(path.read_text())["interactions"]


_HOP_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection"}


class Replay:
    """An httpx2 transport answering each request with the next recorded response of a cassette."""

    def __init__(self, interactions: list[dict[str, Any]]) -> None:
        self.interactions = list(interactions)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if not self.interactions:
            raise AssertionError(
                f"unexpected request {request.method} {request.url}: the cassette is used up"
            )
        recorded = self.interactions.pop(0)
        expected = httpx2.URL(recorded["request"]["uri"])
        assert request.method == recorded["request"]["method"]
        assert request.url.path == expected.path, f"request {request.url.path} but recorded {expected.path}"
        self.requests.append(request)
        response = recorded["response"]
        headers = [
            (name, value)
            for name, values in response["headers"].items()
            if name.lower() not in _HOP_HEADERS
            for value in values
        ]
        body = response["body"]["string"]
        return httpx2.Response(response["status"]["code"], headers=headers, content=body.encode("utf-8"))

    def request_json(self, index: int = 0) -> dict[str, Any]:
        return json.loads(self.requests[index].content)


@pytest.fixture
def replay() -> Callable[[str, str], Replay]:
    return lambda library, name: Replay(load_cassette(library, name))


def openai_client(handler: Callable[[httpx2.Request], httpx2.Response], **kwargs: Any) -> Any:
    import openai

    return openai.OpenAI(
        api_key="test_openai_api_key",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        **kwargs,
    )


def anthropic_client(handler: Callable[[httpx2.Request], httpx2.Response], **kwargs: Any) -> Any:
    import anthropic

    return anthropic.Anthropic(
        api_key="test_anthropic_api_key",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        **kwargs,
    )


# --- the embedded store ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chdb opens one directory per process, so every test of the session shares this one."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def store_config() -> SchemaConfig:
    """A database of its own for each test, inside the session's chdb directory."""
    return SchemaConfig(database=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(chdb_dir: Path, store_config: SchemaConfig) -> Iterator[Any]:
    from spancost.store import Store

    with Store(f"chdb://{chdb_dir}", config=store_config) as opened:
        yield opened
        opened.command(f"DROP DATABASE IF EXISTS `{store_config.database}`")


def pretend_schema_version(store: Any, version: int) -> None:
    """Make `store` say it has schema `version`, as a store an older spancost made would."""
    store.command("TRUNCATE TABLE spancost_schema")
    store.client.insert(
        "spancost_schema",
        [[version, "spancost 0.1.0"]],
        column_names=["Version", "AppliedBy"],
        database=store.database,
    )


# --- known traffic in a store -----------------------------------------------------------------------


def record_calls(dsn: str, database: str, calls: list[dict[str, Any]]) -> None:
    """Write model-call spans through a hand-built pipeline: spancost stage → ClickHouse exporter.

    Each call: `at` (datetime), `model`, `input`, `output`, and optional `prompt`, `user`, `workspace`,
    `provider`, `duration_ms`, `attributes` (more span attributes, such as cache tokens). The stage
    prices them as it would any span.
    """
    from opentelemetry.sdk.trace import TracerProvider as Provider

    from spancost.collector.exporter import ClickHouseSpanExporter
    from spancost.instrumentation.processor import SpancostSpanProcessor

    exporter = ClickHouseSpanExporter(dsn, database=database)
    provider = Provider(resource=Resource.create({"service.name": "report-tests"}))
    provider.add_span_processor(SpancostSpanProcessor(SimpleSpanProcessor(exporter)))
    tracer = provider.get_tracer("tests")
    for call in calls:
        start = int(call["at"].timestamp() * 1e9)
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": call.get("provider", "openai"),
            "gen_ai.request.model": call["model"],
            "gen_ai.usage.input_tokens": call["input"],
            "gen_ai.usage.output_tokens": call["output"],
        }
        tags = {
            "spancost.prompt.name": call.get("prompt"),
            "user.id": call.get("user"),
            "spancost.workspace.id": call.get("workspace"),
        }
        attributes.update({k: v for k, v in tags.items() if v is not None})
        attributes.update(call.get("attributes", {}))
        span = tracer.start_span(f"chat {call['model']}", start_time=start, attributes=attributes)
        span.end(end_time=start + int(call.get("duration_ms", 800) * 1e6))
    provider.shutdown()
