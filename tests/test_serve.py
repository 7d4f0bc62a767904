"""`spancost serve` as a real process: the SDK's OTLP exporters send to it over HTTP and gRPC, the
spans are priced at ingest and stored in its embedded store, `spancost report` reads them through it
while it runs, writers and unauthenticated callers are refused, and SIGTERM leaves every span stored
once.

One server process serves the whole module (start-up dominates the run time); the SIGTERM test stops
it, so it is the last test of the file.

Price (USD per million tokens, spancost/pricing/data/openai.yml): gpt-4o-mini 0.15 input, 0.6 output.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx2
import pytest
from durability_process import wait_until
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from test_collector_grpc import EXPORT

from spancost import attributes as attr
from spancost.pricing import default_table
from spancost.remote import SERVE_FILE, RemoteQueries, ServeInfo

pytestmark = pytest.mark.timeout(120)  # a safety net for a hung server, never a speed check

SPANCOST = str(Path(sys.executable).with_name("spancost"))
TOKEN = "serve-test-token"
LISTENING = re.compile(r"OTLP/gRPC on 127\.0\.0\.1:(\d+), OTLP/HTTP on http://127\.0\.0\.1:(\d+)/v1/traces")

# What each exporter sends: one gpt-4o-mini chat call with usage and no cost.
CALLS = {
    # 1000 input × $0.15/M + 200 output × $0.60/M = $0.00015 + $0.00012 = $0.00027
    "http": {"prompt": "serve-http", "input": 1000, "output": 200, "cost": Decimal("0.00027")},
    # 3000 input × $0.15/M + 500 output × $0.60/M = $0.00045 + $0.0003 = $0.00075
    "grpc": {"prompt": "serve-grpc", "input": 3000, "output": 500, "cost": Decimal("0.00075")},
}
PARTS = {
    "http": (Decimal("0.00015"), Decimal("0.00012")),
    "grpc": (Decimal("0.00045"), Decimal("0.0003")),
}
TOTAL = Decimal("0.00102")  # 0.00027 + 0.00075


def clean_env() -> dict[str, str]:
    """This environment without spancost's and OpenTelemetry's own variables, so that only the
    command line configures the processes."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SPANCOST_", "OTEL_"))}


def spancost(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SPANCOST, *args], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60
    )


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    workdir: Path
    store_dir: Path
    log: Path
    http_port: int
    grpc_port: int

    @property
    def dsn(self) -> str:
        return f"chdb://{self.store_dir}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _listening(log: Path) -> re.Match[str] | None:
    return LISTENING.search(log.read_text(errors="replace")) if log.exists() else None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """`spancost serve` on an embedded store, both receivers on ports the system picks (`0`)."""
    workdir = tmp_path_factory.mktemp("serve")
    store_dir = workdir / "store"
    log = workdir / "serve.log"
    command = [
        SPANCOST,
        "serve",
        "--store",
        f"chdb://{store_dir}",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--auth-token",
        TOKEN,
        "--batch-delay",
        "0.05",
        "--shutdown-grace",
        "20",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=clean_env(), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(lambda: _listening(log) or process.poll() is not None, "spancost serve to listen", 60)
        found = _listening(log)
        assert found is not None, f"spancost serve exited with {process.poll()}:\n{log.read_text()}"
        serve = Serve(process, workdir, store_dir, log, http_port=int(found[2]), grpc_port=int(found[1]))
        wait_until(lambda: _health(serve) == 200, "GET /health to answer 200", 30)
        yield serve
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _health(serve: Serve) -> int | None:
    try:
        return httpx2.get(serve.url + "/health", timeout=5).status_code
    except httpx2.TransportError:
        return None


def query(serve: Serve, sql: str, token: str | None = TOKEN) -> httpx2.Response:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx2.post(serve.url + "/query", json={"sql": sql}, headers=headers, timeout=30)


def rows(serve: Serve, sql: str) -> list[list[Any]]:
    response = query(serve, sql)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def chat_span(prompt: str, input_tokens: int, output_tokens: int) -> ReadableSpan:
    """A model call as an instrumentation that does not price it would send it: usage, no cost.
    Made by the real SDK, ended a few seconds ago: recent enough for the report's last days, and
    before the report's end, which is the current second rounded down (as the Grafana plugin does)."""
    start = time.time_ns() - 5 * 10**9
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "serve-tests"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    span = provider.get_tracer("serve-tests").start_span(
        "chat gpt-4o-mini",
        kind=SpanKind.CLIENT,
        start_time=start,
        attributes={
            attr.GEN_AI_OPERATION_NAME: "chat",
            attr.GEN_AI_PROVIDER_NAME: "openai",
            attr.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            attr.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
            attr.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
            attr.PROMPT_NAME: prompt,
        },
    )
    span.end(end_time=start + 800_000_000)
    provider.shutdown()
    (finished,) = memory.get_finished_spans()
    return finished


def ids(span: ReadableSpan) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def http_exporter(serve: Serve, token: str | None = TOKEN) -> HttpExporter:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    return HttpExporter(endpoint=serve.url + "/v1/traces", headers=headers, timeout=10)


def grpc_exporter(serve: Serve, token: str | None = TOKEN) -> GrpcExporter:
    headers = {"authorization": f"Bearer {token}"} if token is not None else None
    return GrpcExporter(endpoint=f"127.0.0.1:{serve.grpc_port}", insecure=True, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def sent(server: Serve) -> dict[str, ReadableSpan]:
    """One priced-at-ingest call through each receiver, acknowledged by the server."""
    spans = {name: chat_span(call["prompt"], call["input"], call["output"]) for name, call in CALLS.items()}
    assert http_exporter(server).export([spans["http"]]) is SpanExportResult.SUCCESS
    assert grpc_exporter(server).export([spans["grpc"]]) is SpanExportResult.SUCCESS
    # An acknowledged export is durable (in the store, or in the spool until it answers); the
    # store is up, so both calls reach llm_calls at once.
    wait_until(lambda: rows(server, "SELECT count() FROM otel.llm_calls") == [[2]], "both calls stored")
    return spans


# --- reading through the running server ------------------------------------------------------------


def test_spans_from_the_sdk_exporters_are_priced_at_ingest_and_reported_through_the_server(
    server: Serve, sent: dict[str, ReadableSpan]
) -> None:
    assert (server.store_dir / SERVE_FILE).exists()
    # The server holds the embedded store's lock: a report that opened the directory itself would
    # fail, so this one reads through the server's POST /query.
    done = spancost("report", "--store", server.dsn, "--days", "7", "--json", cwd=server.workdir)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["store"] == server.dsn
    assert Decimal(str(report["total_usd"])) == TOTAL
    assert (report["calls"], report["unpriced_calls"]) == (2, 0)

    expected_daily: dict[str, Decimal] = {}
    for name, span in sent.items():
        day = dt.datetime.fromtimestamp(span.start_time / 1e9, dt.timezone.utc).date().isoformat()
        expected_daily[day] = expected_daily.get(day, Decimal(0)) + CALLS[name]["cost"]
    daily = {row["day"]: Decimal(str(row["cost_usd"])) for row in report["daily_spend"] if row["calls"]}
    assert daily == expected_daily
    assert sum(row["calls"] for row in report["daily_spend"]) == 2

    by_prompt = {row["prompt"]: row for row in report["spend_by_prompt"]}
    assert set(by_prompt) == {call["prompt"] for call in CALLS.values()}
    for call in CALLS.values():
        row = by_prompt[call["prompt"]]
        assert Decimal(str(row["cost_usd"])) == call["cost"]
        assert (row["calls"], row["input_tokens"], row["output_tokens"]) == (1, call["input"], call["output"])

    per_call = {row["prompt"]: row for row in report["cost_per_call_by_prompt"]}
    assert set(per_call) == set(by_prompt)


def test_reprice_is_refused_while_the_server_holds_the_store(
    server: Serve, sent: dict[str, ReadableSpan]
) -> None:
    done = spancost("reprice", "--store", server.dsn, "--since", "2020-01-01", cwd=server.workdir)
    assert done.returncode == 1
    message = done.stderr
    assert "held by the spancost serve" in message
    assert server.url in message
    assert f"pid {server.process.pid}" in message
    assert "stop it first" in message
    # Nothing was rewritten meanwhile: the stored costs are those priced at ingest.
    stored = rows(server, "SELECT sum(CostUSD) FROM otel.llm_calls FINAL")
    assert Decimal(str(stored[0][0])) == TOTAL


def test_a_datetime_query_parameter_travels_through_the_server(server: Serve) -> None:
    """As `spancost reprice` and any read with a time parameter send it."""
    remote = RemoteQueries(ServeInfo(server.url, server.process.pid, TOKEN))
    moment = dt.datetime(2026, 1, 1, 12, 30, tzinfo=dt.timezone.utc)
    _, found = remote.query("SELECT toString({at:DateTime64(9)}) AS at", {"at": moment})
    assert found == [("2026-01-01 12:30:00.000000000",)]


# --- what is refused ------------------------------------------------------------------------------------


def test_queries_need_the_token_and_cannot_write(server: Serve, sent: dict[str, ReadableSpan]) -> None:
    for token in (None, "wrong-token"):
        refused = query(server, "SELECT 1", token=token)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert rows(server, "SELECT 1") == [[1]]

    before = rows(server, "SELECT count() FROM otel.otel_traces")
    for statement in (
        "DROP TABLE otel.otel_traces",
        "TRUNCATE TABLE otel.llm_calls",
        "INSERT INTO otel.otel_traces (SpanName) VALUES ('forged')",
        "ALTER TABLE otel.otel_traces DELETE WHERE 1",
    ):
        refused = query(server, statement)
        assert refused.status_code == 400, statement
        assert "READONLY" in refused.text, refused.text
        assert "readonly mode" in refused.text
    assert rows(server, "EXISTS TABLE otel.otel_traces") == [[1]]
    assert rows(server, "SELECT count() FROM otel.otel_traces") == before


def test_exports_with_a_wrong_token_are_refused_and_not_stored(server: Serve) -> None:
    refused_http = chat_span("refused", 10, 10)
    refused_grpc = chat_span("refused", 10, 10)
    body = encode_spans([refused_http]).SerializeToString()

    for token in (None, "wrong-token"):
        headers = {"content-type": "application/x-protobuf"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        response = httpx2.post(server.url + "/v1/traces", content=body, headers=headers, timeout=30)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert http_exporter(server, token="wrong-token").export([refused_http]) is SpanExportResult.FAILURE

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        export = channel.unary_unary(EXPORT)  # bytes in, bytes out
        for metadata in ((), (("authorization", "Bearer wrong-token"),)):
            with pytest.raises(grpc.RpcError) as caught:
                export(encode_spans([refused_grpc]).SerializeToString(), metadata=metadata, timeout=10)
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert grpc_exporter(server, token="wrong-token").export([refused_grpc]) is SpanExportResult.FAILURE

    span_ids = ", ".join(f"'{ids(span)[1]}'" for span in (refused_http, refused_grpc))
    assert rows(server, f"SELECT count() FROM otel.otel_traces WHERE SpanId IN ({span_ids})") == [[0]]


# --- the command line refuses bad settings before serving -------------------------------------------


def test_an_out_of_range_port_is_a_usage_error(tmp_path: Path) -> None:
    done = spancost("serve", "--store", f"chdb://{tmp_path / 'store'}", "--http-port", "70000", cwd=tmp_path)
    assert done.returncode == 2
    assert "--http-port" in done.stderr
    assert "70000 is not a port" in done.stderr
    assert not (tmp_path / "store").exists()


def test_both_receivers_off_is_refused(tmp_path: Path) -> None:
    done = spancost(
        "serve",
        "--store",
        f"chdb://{tmp_path / 'store'}",
        "--http-port",
        "off",
        "--grpc-port",
        "off",
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "http_port and grpc_port are both off: enable at least one receiver" in done.stderr
    assert not (tmp_path / "store").exists()


# --- shutdown (stops the module's server: keep this test last) ---------------------------------------


def test_sigterm_exits_0_and_leaves_every_span_stored_once_and_priced(
    server: Serve, sent: dict[str, ReadableSpan]
) -> None:
    # A client retrying a request whose answer it lost: acknowledged again, stored once.
    assert http_exporter(server).export([sent["http"]]) is SpanExportResult.SUCCESS
    assert grpc_exporter(server).export([sent["grpc"]]) is SpanExportResult.SUCCESS

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0, server.output()
    assert not (server.store_dir / SERVE_FILE).exists()

    # The server is gone and its lock released: the store opens directly, in a process of its own
    # (chdb opens one directory per process, and this one's may already be taken).
    script = (
        "import json, sys\n"
        "from spancost.store import Store\n"
        "with Store(sys.argv[1]) as store:\n"
        "    assert not store.remote\n"
        "    spans = store.query('SELECT TraceId, SpanId, count(), any(SpanAttributes) FROM otel_traces'\n"
        "                        ' GROUP BY TraceId, SpanId').rows\n"
        "    calls = store.query('SELECT count() FROM llm_calls').single_value()\n"
        "print(json.dumps({'spans': spans, 'calls': calls}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, server.dsn],
        cwd=server.workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stored = json.loads(done.stdout.strip().splitlines()[-1])

    by_id = {
        (trace_id, span_id): (count, attributes) for trace_id, span_id, count, attributes in stored["spans"]
    }
    assert set(by_id) == {ids(span) for span in sent.values()}
    assert stored["calls"] == len(sent)
    version = default_table().version
    for name, span in sent.items():
        count, attributes = by_id[ids(span)]
        assert count == 1, f"the {name} span is stored {count} times"
        assert attributes[attr.GEN_AI_USAGE_COST_SOURCE] == "local"
        assert attributes[attr.GEN_AI_USAGE_COST_CURRENCY] == "USD"
        assert attributes[attr.COST_STATUS] == "priced"
        assert Decimal(attributes[attr.GEN_AI_USAGE_COST_AMOUNT]) == CALLS[name]["cost"]
        assert (Decimal(attributes[attr.COST_INPUT]), Decimal(attributes[attr.COST_OUTPUT])) == PARTS[name]
        assert attributes[attr.PRICE_KEY] == "openai/gpt-4o-mini"
        assert attributes[attr.PRICE_VERSION] == version
