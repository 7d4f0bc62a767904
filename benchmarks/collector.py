"""Spans per second through the collector, end to end, next to ClickHouse's raw insert rate, and the
collector's memory when offered twice what it sustains.

The collector runs in this process as `spancost serve` runs it: the OTLP/HTTP receiver (uvicorn) in
front of the `BatchingPipeline` (default settings) on an embedded store (chdb) in a temporary
directory. Clients run in processes of their own and send OTLP/HTTP protobuf batches of 512 GenAI
spans (chat calls from two instrumentations: half carry spancost's cost attributes, half only usage,
which the collector prices at ingest) with the OpenTelemetry SDK's OTLPSpanExporter:

- `wire` clients send bodies made by the SDK's encoder once, with fresh trace and span ids written
  into each batch, through the exporter's HTTP client (its session, headers and retry on 429/503):
  what the collector can take when the clients are not the bottleneck;
- `sdk` clients call `OTLPSpanExporter.export(spans)` on 512 new ReadableSpans per batch, encoding
  included: on this machine the clients share the two cores with the collector.

Measured: the raw rate of `client.insert` (clickhouse-connect, the same rows the receiver made,
batches of the pipeline's size, same chdb); the pipeline alone (threads calling `submit` with rows
ready: what batching, deduplication and the writer cost next to the raw insert); spans stored per
second by the collector (its own `stored` counter over the measuring window, after a warm-up) with
`wire` and with `sdk` clients; then four times as many `wire` exporters paced at twice the sustained
rate: offered, accepted and refused (429/503) rates, and the collector's resident memory sampled every
0.2 s (peak in each quarter of a run: flat under overload means backpressure, not growth).

    .venv/bin/python benchmarks/collector.py [--seconds 10] [--clients 2] [--threads 24] [--skip-sdk]
        [--raw-batches 12] [--batch-rows N] [--queue-rows N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from spancost import attributes as attr

BATCH = 512
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "claude-haiku-4-5")
PROMPTS = ("support-answer", "triage", "summarise-ticket", "draft-reply", "classify")


# --- the spans ---------------------------------------------------------------------------------------


def realistic_spans(count: int, rng: random.Random) -> list[ReadableSpan]:
    """`count` finished chat spans as the genai instrumentations and spancost record them."""
    resource = Resource.create(
        {
            attr.SERVICE_NAME: "support-bot",
            attr.SERVICE_VERSION: "2.14.1",
            "deployment.environment.name": "production",
            "host.name": "worker-7",
        }
    )
    scope = InstrumentationScope("opentelemetry.instrumentation.openai_v2", "2.1b0")
    now = time.time_ns()
    spans = []
    for index in range(count):
        model = MODELS[index % len(MODELS)]
        provider = "openai" if model.startswith("gpt") else "anthropic"
        input_tokens, output_tokens = rng.randint(200, 6000), rng.randint(20, 900)
        attributes: dict[str, Any] = {
            attr.GEN_AI_OPERATION_NAME: "chat",
            attr.GEN_AI_PROVIDER_NAME: provider,
            attr.GEN_AI_REQUEST_MODEL: model,
            attr.GEN_AI_RESPONSE_MODEL: f"{model}-2025-08-07",
            attr.GEN_AI_RESPONSE_ID: f"chatcmpl-{rng.getrandbits(64):016x}",
            attr.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
            attr.GEN_AI_REQUEST_MAX_TOKENS: 1024,
            attr.GEN_AI_REQUEST_TEMPERATURE: 0.2,
            attr.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
            attr.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
            attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: rng.choice((0, 512, 1024)),
            attr.SERVER_ADDRESS: "api.openai.com" if provider == "openai" else "api.anthropic.com",
            attr.SERVER_PORT: 443,
            attr.PROMPT_NAME: PROMPTS[index % len(PROMPTS)],
            attr.PROMPT_VERSION: "v7",
            attr.USER_ID: f"user-{rng.randint(1, 5000)}",
            attr.WORKSPACE_ID: f"ws-{rng.randint(1, 40)}",
            attr.FEATURE: "inbox",
        }
        if index % 2 == 0:  # recorded by spancost in the app: priced already
            cost = (input_tokens * 0.15 + output_tokens * 0.6) / 1e6
            attributes.update(
                {
                    attr.GEN_AI_USAGE_COST_AMOUNT: cost,
                    attr.GEN_AI_USAGE_COST_CURRENCY: "USD",
                    attr.GEN_AI_USAGE_COST_SOURCE: "local",
                    attr.COST_STATUS: "priced",
                    attr.PRICE_KEY: f"{provider}/{model}",
                    attr.PRICE_VERSION: "2025-11-01",
                }
            )
        context = SpanContext(
            trace_id=rng.getrandbits(128) or 1,
            span_id=rng.getrandbits(64) or 1,
            is_remote=False,
            trace_flags=TraceFlags(1),
        )
        start = now - rng.randint(1, 10_000_000_000)
        spans.append(
            ReadableSpan(
                name=f"chat {model}",
                context=context,
                parent=SpanContext(
                    trace_id=context.trace_id, span_id=rng.getrandbits(64) or 1, is_remote=False
                ),
                resource=resource,
                attributes=attributes,
                kind=SpanKind.CLIENT,
                status=Status(StatusCode.UNSET),
                start_time=start,
                end_time=start + rng.randint(300_000_000, 9_000_000_000),
                instrumentation_scope=scope,
            )
        )
    return spans


def template_body(rng: random.Random) -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(realistic_spans(BATCH, rng)).SerializeToString()


class FreshIds:
    """A parsed export request whose trace and span ids are replaced before each serialisation, so
    that every batch holds new spans (the collector would drop repeats as client retries)."""

    def __init__(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.request = ExportTraceServiceRequest.FromString(body)
        self.spans = [
            span
            for resource in self.request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def next_body(self) -> bytes:
        ids = os.urandom(24 * len(self.spans))
        for index, span in enumerate(self.spans):
            span.trace_id = ids[24 * index : 24 * index + 16]
            span.span_id = ids[24 * index + 16 : 24 * index + 24]
        return self.request.SerializeToString()


# --- clients, in processes of their own ----------------------------------------------------------------


def client_process(
    port: int, body: bytes, mode: str, threads: int, seconds: float, rate: float | None, go: Any, results: Any
) -> None:
    """`threads` exporters (think: app instances, each with one export in flight) for `seconds`."""
    import logging

    logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)  # refusals are counted below
    totals = [0, 0, 0]
    lock = threading.Lock()
    go.wait()
    start = time.monotonic()

    def one_exporter(seed: int, rate: float | None) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=30)
        fresh = FreshIds(body)
        rng = random.Random(seed)
        sent = accepted = 0
        while (now := time.monotonic()) - start < seconds:
            if rate:
                due = start + sent / rate
                if due > now:
                    time.sleep(due - now)
            sent += BATCH
            if mode == "sdk":
                ok = exporter.export(realistic_spans(BATCH, rng)).name == "SUCCESS"
            elif rate:
                # Paced: one attempt, so that a refusal counts as one (the SDK would wait Retry-After).
                ok = exporter._client._submit(fresh.next_body(), 30).status_code == 200
            else:
                ok = exporter._client.export(fresh.next_body()).success
            accepted += BATCH if ok else 0
        exporter.shutdown()
        with lock:
            totals[0] += sent
            totals[1] += accepted
            totals[2] += sent - accepted

    workers = [
        threading.Thread(target=one_exporter, args=(os.getpid() * 1000 + n, rate / threads if rate else None))
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put((*totals, time.monotonic() - start))


# --- the collector -------------------------------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    def __init__(self, pipeline: Any = None) -> None:
        self.pipeline = pipeline
        self.peak_rows = 0
        self.peak = 0.0
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            value = rss_mib()
            self.samples.append(value)
            self.peak = max(self.peak, value)
            if self.pipeline is not None:
                self.peak_rows = max(self.peak_rows, self.pipeline.stats()["rows_inflight"])

    def stop(self) -> RssSampler:
        self._stop.set()
        self._thread.join()
        return self


def measure_end_to_end(
    pipeline: Any,
    port: int,
    body: bytes,
    mode: str,
    clients: int,
    threads: int,
    seconds: float,
    rate: float | None = None,
) -> dict[str, float]:
    """Clients send for `seconds`; the stored rate is taken after the first quarter (warm-up)."""
    warmup = seconds / 4
    marks: dict[str, tuple[float, int]] = {}

    def mark_window(started: float) -> None:
        time.sleep(max(0.0, started + warmup - time.monotonic()))
        marks["from"] = (time.monotonic(), pipeline.stats()["stored"])
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        marks["to"] = (time.monotonic(), pipeline.stats()["stored"])

    sampler = RssSampler(pipeline)
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    per_client = rate / clients if rate else None
    processes = [
        context.Process(
            target=client_process, args=(port, body, mode, threads, seconds, per_client, go, results)
        )
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    time.sleep(3)  # let them import and parse before the clock starts
    rss_before = rss_mib()
    go.set()
    window = threading.Thread(target=mark_window, args=(time.monotonic(),))
    window.start()
    totals = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    window.join()
    sampler.stop()
    (t0, stored0), (t1, stored1) = marks["from"], marks["to"]
    elapsed = max(total[3] for total in totals)
    return {
        "stored_per_s": (stored1 - stored0) / (t1 - t0),
        "offered_per_s": sum(total[0] for total in totals) / elapsed,
        "accepted_per_s": sum(total[1] for total in totals) / elapsed,
        "refused_per_s": sum(total[2] for total in totals) / elapsed,
        "rss_before_mib": rss_before,
        "rss_peak_mib": sampler.peak,
        "rss_last_mib": sampler.samples[-1] if sampler.samples else rss_mib(),
        "peak_rows_in_memory": sampler.peak_rows,
        "rss_quarters_mib": [
            max(sampler.samples[len(sampler.samples) * q // 4 : len(sampler.samples) * (q + 1) // 4] or [0.0])
            for q in range(4)
        ],
    }


def converted_rows(body: bytes) -> list[list[Any]]:
    """The rows the receiver makes of one batch (decoded and priced as `spancost serve` does)."""
    from spancost.collector.config import ReceiverConfig
    from spancost.collector.receivers.bodies import PROTOBUF, decode
    from spancost.collector.receivers.common import Ingest

    return Ingest(ReceiverConfig(), pipeline=None).convert(decode(body, PROTOBUF), "http").rows  # type: ignore[arg-type]


def pipeline_alone(pipeline: Any, body: bytes, threads: int, seconds: float) -> float:
    """Spans stored per second when `threads` submitters hand the pipeline ready rows (no HTTP, no
    decoding): the pipeline's own cost next to the raw insert."""
    template = converted_rows(body)
    stop = time.monotonic() + seconds

    def submitter() -> None:
        while time.monotonic() < stop:
            ids = os.urandom(24 * len(template)).hex()
            rows = []
            for index, row in enumerate(template):
                fresh = row.copy()
                fresh[1], fresh[2] = ids[48 * index : 48 * index + 32], ids[48 * index + 32 : 48 * index + 48]
                rows.append(fresh)
            pipeline.submit(rows, timeout=60)

    before = pipeline.stats()["stored"]
    started = time.monotonic()
    workers = [threading.Thread(target=submitter) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (pipeline.stats()["stored"] - before) / (time.monotonic() - started)


def raw_insert_rate(dsn: str, body: bytes, batches: int, batch_rows: int) -> float:
    """clickhouse-connect's `client.insert` of the rows the receiver makes, into a fresh database."""
    from spancost.collector.config import ReceiverConfig
    from spancost.collector.receivers.bodies import PROTOBUF, decode
    from spancost.collector.receivers.common import Ingest
    from spancost.collector.rows import COLUMNS
    from spancost.collector.schema import SchemaConfig, apply_schema
    from spancost.store import open_client

    ingest = Ingest(ReceiverConfig(), pipeline=None)  # type: ignore[arg-type]
    fresh = FreshIds(body)

    def rows() -> list[list[Any]]:
        out: list[list[Any]] = []
        while len(out) < batch_rows:
            out.extend(ingest.convert(decode(fresh.next_body(), PROTOBUF), "http").rows)
        return out[:batch_rows]

    client = open_client(dsn)
    apply_schema(client, SchemaConfig(database="raw"))
    prepared = [rows() for _ in range(batches)]
    elapsed = 0.0
    for batch in prepared:
        started = time.perf_counter()
        client.insert(
            "otel_traces", batch, column_names=COLUMNS, database="raw", settings={"async_insert": 0}
        )
        elapsed += time.perf_counter() - started
    client.close()
    return batches * batch_rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each end-to-end run")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument(
        "--threads", type=int, default=24, help="exporters (one export in flight) per process"
    )
    parser.add_argument("--raw-batches", type=int, default=12, help="batches for the raw insert rate")
    parser.add_argument("--batch-rows", type=int, help="pipeline max_batch_rows (default: the pipeline's)")
    parser.add_argument("--queue-rows", type=int, help="pipeline max_queue_rows (default: the pipeline's)")
    parser.add_argument("--skip-sdk", action="store_true", help="leave out the run with sdk clients")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.ERROR)
    from spancost.collector.config import ReceiverConfig
    from spancost.collector.pipeline import BatchingPipeline, PipelineConfig
    from spancost.collector.receivers.http import HttpReceiver

    directory = Path(tempfile.mkdtemp(prefix="spancost-bench-"))
    dsn = f"chdb://{directory / 'store'}"
    body = template_body(random.Random(7))
    config = PipelineConfig()
    if args.batch_rows or args.queue_rows:
        config = replace(
            config,
            max_batch_rows=args.batch_rows or config.max_batch_rows,
            max_queue_rows=args.queue_rows or config.max_queue_rows,
        )
    try:
        raw = raw_insert_rate(dsn, body, args.raw_batches, config.max_batch_rows)
        pipeline = BatchingPipeline.for_store(dsn, database="otel", config=config)
        pipeline.start()
        receiver = HttpReceiver(ReceiverConfig(host="127.0.0.1", http_port=0, grpc_port=None), pipeline)
        receiver.start()
        assert receiver.port is not None
        port = receiver.port
        alone = pipeline_alone(pipeline, body, args.clients * args.threads, args.seconds)
        runs = {
            "wire": measure_end_to_end(pipeline, port, body, "wire", args.clients, args.threads, args.seconds)
        }
        if not args.skip_sdk:
            runs["sdk"] = measure_end_to_end(
                pipeline, port, body, "sdk", args.clients, args.threads, args.seconds
            )
        sustained = runs["wire"]["stored_per_s"]
        # Twice the sustained rate, from four times as many exporters (each paced, one export in flight),
        # so that the offered load does not depend on how fast the collector answers.
        overload = measure_end_to_end(
            pipeline, port, body, "wire", args.clients, 4 * args.threads, args.seconds, rate=2 * sustained
        )
        stats = dict(pipeline.stats())
        receiver.stop(5)
        pipeline.stop(30)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    print(
        f"collector end to end: {BATCH}-span OTLP/HTTP protobuf batches from {args.clients} client processes"
        f" x {args.threads} exporters; {os.cpu_count()} cores; Python {sys.version.split()[0]};"
        f" batches of {config.max_batch_rows:,} rows, queue {config.max_queue_rows:,} rows"
    )
    print()
    print(f"{'':58} {'spans/s':>10} {'vs raw':>8}")
    raw_name = f"raw clickhouse-connect insert ({config.max_batch_rows:,}-row batches)"
    print(f"{raw_name:58} {raw:>10,.0f} {1:>8.2f}")
    print(f"{'pipeline alone (submit from threads, rows ready)':58} {alone:>10,.0f} {alone / raw:>8.2f}")
    names = {
        "wire": "end to end, wire clients (SDK HTTP client, pre-encoded)",
        "sdk": "end to end, sdk clients (OTLPSpanExporter.export)",
    }
    for key, result in runs.items():
        print(f"{names[key]:58} {result['stored_per_s']:>10,.0f} {result['stored_per_s'] / raw:>8.2f}")
    print()
    print(
        f"2 x sustained ({2 * sustained:,.0f} spans/s asked, {args.clients} x {4 * args.threads} exporters):"
        f" offered {overload['offered_per_s']:,.0f}/s, accepted {overload['accepted_per_s']:,.0f}/s,"
        f" refused (429/503) {overload['refused_per_s']:,.0f}/s, stored {overload['stored_per_s']:,.0f}/s"
    )
    print()
    print(
        f"{'collector resident memory, MiB':40} {'before':>8}   peak in each quarter of the run"
        "   peak rows held by the pipeline"
    )
    for name, result in (
        *((f"sustained, {key} clients", run) for key, run in runs.items()),
        ("2 x sustained", overload),
    ):
        quarters = " ".join(f"{value:>6,.0f}" for value in result["rss_quarters_mib"])
        print(
            f"{name:40} {result['rss_before_mib']:>8,.0f}   {quarters}"
            f"   {result['peak_rows_in_memory']:>12,} of {config.max_queue_rows:,}"
        )
    print()
    print("pipeline:", ", ".join(f"{k}={v}" for k, v in stats.items() if v))


if __name__ == "__main__":
    main()
