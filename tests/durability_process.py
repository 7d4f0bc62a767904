"""Spans with known ids for the durability tests, and the collector process they kill and restart.

`request_rows(i)` is request i: the same spans every time it is built, in this process or another,
half of them model calls. As a script, this file runs a `BatchingPipeline` on an embedded store:

    python durability_process.py write STORE_DIR SPOOL_DIR [--first N] [--deadline S] [--sigterm]
        submit requests N, N+1, ... from three threads until killed; print `sent i` before a request
        is submitted and `acked i` once `submit` returned (flushed at once, so the test sees them);
    python durability_process.py verify STORE_DIR SPOOL_DIR [REQUESTS]
        restart on the same store and spool, let it replay, then send the comma-separated REQUESTS
        again (as clients retrying unanswered requests would, and as clients whose answers were lost
        would) and print one JSON line: the stats before and after, and what the store holds.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spancost import attributes as attr
from spancost.collector.rows import COLUMNS

SPANS_PER_REQUEST = 40
T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z


def span_ids(request: int, span: int) -> tuple[str, str]:
    return f"{request + 1:032x}", f"{(request + 1) * 1000 + span:016x}"


def is_model_call(span: int) -> bool:
    return span % 2 == 0


def request_rows(request: int, spans: int = SPANS_PER_REQUEST) -> list[list[Any]]:
    """Request `request`: `spans` spans of one trace over two days, every other one a priced chat call."""
    rows = []
    for span in range(spans):
        trace_id, span_id = span_ids(request, span)
        attributes = {"request": str(request)}
        if is_model_call(span):
            attributes.update(
                {
                    attr.GEN_AI_OPERATION_NAME: "chat",
                    attr.GEN_AI_PROVIDER_NAME: "openai",
                    attr.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                    attr.GEN_AI_USAGE_INPUT_TOKENS: "100",
                    attr.GEN_AI_USAGE_OUTPUT_TOKENS: "10",
                    attr.GEN_AI_USAGE_COST_AMOUNT: "0.000021",
                    attr.COST_STATUS: "priced",
                }
            )
        start = T0 + (span % 2) * 86_400_000_000_000 + request * 1000 + span
        rows.append(
            [
                start,
                trace_id,
                span_id,
                "",
                "",
                "chat gpt-4o-mini" if is_model_call(span) else "work",
                "Client" if is_model_call(span) else "Internal",
                "durability",
                {attr.SERVICE_NAME: "durability"},
                "tests",
                "",
                attributes,
                1_000_000,
                "Unset",
                "",
                [],
                [],
                [],
                [],
                [],
                [],
                [],
            ]
        )
    assert len(rows[0]) == len(COLUMNS)
    return rows


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll `condition` until it holds; fail (naming `what`) if it does not within `timeout`."""
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def stored_ids(store: Any) -> dict[tuple[str, str], int]:
    """How many times each (TraceId, SpanId) is in otel_traces (a plain MergeTree: merges keep copies)."""
    rows = store.query("SELECT TraceId, SpanId, count() FROM otel_traces GROUP BY TraceId, SpanId").rows
    return {(trace_id, span_id): count for trace_id, span_id, count in rows}


def model_call_counts(store: Any) -> tuple[int, int, int]:
    """Rows in llm_calls, distinct spans in llm_calls, and calls summed in llm_daily."""
    calls, distinct = store.query("SELECT count(), uniqExact(TraceId, SpanId) FROM llm_calls").first()
    daily = store.query("SELECT sum(Calls) FROM llm_daily").single_value()
    return int(calls), int(distinct), int(daily or 0)


# --- the collector process ----------------------------------------------------------------------------


def _pipeline(store_dir: Path, spool_dir: Path, deadline: float) -> Any:
    from spancost.collector.pipeline import BatchingPipeline, PipelineConfig

    config = PipelineConfig(
        max_batch_rows=200,
        max_batch_delay_s=0.02,
        max_queue_rows=2000,
        insert_deadline_s=deadline,
        probe_min_s=0.01,
        probe_max_s=0.05,
        spool_dir=spool_dir,
    )
    return BatchingPipeline.for_store(f"chdb://{store_dir}", database="otel", config=config)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def write(store_dir: Path, spool_dir: Path, first: int, deadline: float, sigterm: bool) -> None:
    pipeline = _pipeline(store_dir, spool_dir, deadline)
    pipeline.start()
    if sigterm:
        pipeline.install_sigterm_handler(timeout=20)
    counter = iter(range(first, first + 1_000_000))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                request = next(counter)
                _say(f"sent {request}")
            try:
                pipeline.submit(request_rows(request), timeout=30)
            except Exception as err:
                _say(f"failed {request} {type(err).__name__}")
                return
            _say(f"acked {request}")

    for _ in range(3):
        threading.Thread(target=client, daemon=True).start()
    _say("ready")
    while True:
        time.sleep(1)


def verify(store_dir: Path, spool_dir: Path, requests: list[int]) -> None:
    from spancost.store import Store

    pipeline = _pipeline(store_dir, spool_dir, deadline=10.0)
    pipeline.start()
    before = dict(pipeline.stats())
    give_up = time.monotonic() + 60
    while pipeline.stats()["spool_records"] and time.monotonic() < give_up:
        time.sleep(0.05)
    if requests:
        pipeline.submit([row for request in requests for row in request_rows(request)], timeout=60)
    after = dict(pipeline.stats())
    pipeline.stop(30)
    with Store(f"chdb://{store_dir}") as store:
        ids = stored_ids(store)
        calls = model_call_counts(store)
    duplicates = {f"{k[0]}/{k[1]}": n for k, n in ids.items() if n != 1}
    result = {"before": before, "after": after, "spans": len(ids), "duplicates": duplicates, "calls": calls}
    result["ids"] = sorted(f"{trace_id}/{span_id}" for trace_id, span_id in ids)
    _say(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["write", "verify"])
    parser.add_argument("store", type=Path)
    parser.add_argument("spool", type=Path)
    parser.add_argument("requests", nargs="?", default="")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=10.0)
    parser.add_argument("--sigterm", action="store_true")
    args = parser.parse_args()
    if args.mode == "write":
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        write(args.store, args.spool, args.first, args.deadline, args.sigterm)
    else:
        verify(args.store, args.spool, [int(n) for n in args.requests.split(",") if n])


if __name__ == "__main__":
    main()
