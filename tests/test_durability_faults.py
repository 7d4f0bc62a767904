"""Fault tests: the store goes away mid-stream, answers are lost, inserts hang, the collector is killed.
Every span acknowledged to a client must end up in otel_traces exactly once, and every model call
counted once in llm_calls and llm_daily."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from clickhouse_http import clickhouse_behind_proxy
from durability_process import (
    SPANS_PER_REQUEST,
    is_model_call,
    model_call_counts,
    request_rows,
    stored_ids,
    wait_until,
)

from spancost.collector.ingest import Overloaded, Unavailable
from spancost.collector.pipeline import BatchingPipeline, PipelineConfig
from spancost.collector.schema import SchemaConfig

PROCESS = Path(__file__).with_name("durability_process.py")
CALLS_PER_REQUEST = sum(1 for span in range(SPANS_PER_REQUEST) if is_model_call(span))
CLIENTS = 4


def ids_of(requests: set[int]) -> set[tuple[str, str]]:
    return {(row[1], row[2]) for request in requests for row in request_rows(request)}


class Clients:
    """Threads sending requests the way an OTLP exporter does: each request is sent again after a
    refusal or a timeout until it is acknowledged."""

    def __init__(self, pipeline: BatchingPipeline) -> None:
        self.pipeline = pipeline
        self.acked: set[int] = set()
        self.retries = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(first,)) for first in range(CLIENTS)]
        for thread in self._threads:
            thread.start()

    def _run(self, request: int) -> None:
        while not self._stop.is_set():
            rows = request_rows(request)
            while True:
                try:
                    self.pipeline.submit(rows, timeout=5)
                    break
                except (Overloaded, Unavailable):
                    with self._lock:
                        self.retries += 1
                    time.sleep(0.02)
            with self._lock:
                self.acked.add(request)
            request += CLIENTS

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def stop(self) -> set[int]:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.acked


def test_the_store_going_away_and_coming_back_loses_and_duplicates_nothing(
    store, chdb_dir: Path, store_config: SchemaConfig, tmp_path: Path
) -> None:
    with clickhouse_behind_proxy(chdb_dir) as (server, proxy):
        pipeline = BatchingPipeline.for_store(
            f"http://127.0.0.1:{proxy.port}",
            database=store_config.database,
            config=PipelineConfig(
                max_batch_rows=200,
                max_batch_delay_s=0.02,
                insert_deadline_s=0.5,
                probe_min_s=0.05,
                probe_max_s=0.2,
                spool_dir=tmp_path / "spool",
            ),
        )
        pipeline.start()
        clients = Clients(pipeline)

        def stats() -> dict[str, int]:
            return dict(pipeline.stats())

        def acked_more(count: int) -> Any:
            target = clients.count() + count
            return lambda: clients.count() >= target

        try:
            wait_until(acked_more(10), "acknowledgements with the store up")
            # Requests reach ClickHouse and are executed, but the answers are lost.
            proxy.set_mode("lose_replies")
            wait_until(lambda: not stats()["store_up"], "the pipeline to see the store down")
            # The server is gone: connections are refused; requests are acknowledged from the spool.
            proxy.set_mode("down")
            wait_until(acked_more(10), "acknowledgements with the store down")
            proxy.set_mode("up")
            wait_until(lambda: stats()["store_up"] and not stats()["spool_records"], "the spool to drain")
            # The server hangs: an insert overruns its deadline and its batch is spooled meanwhile.
            spooled = stats()["spooled"]
            proxy.set_mode("stall")
            wait_until(lambda: stats()["spooled"] > spooled, "a batch spooled past its deadline")
            proxy.set_mode("up")
            wait_until(acked_more(10), "acknowledgements after the stall")
        finally:
            acked = clients.stop()
        wait_until(lambda: not stats()["spool_records"], "the last replay")
        assert pipeline.stop(10)

    assert stored_ids(store) == dict.fromkeys(ids_of(acked), 1)
    calls = len(acked) * CALLS_PER_REQUEST
    assert model_call_counts(store) == (calls, calls, calls)
    final = stats()
    assert final["spooled"] > 0
    assert final["replayed"] > 0
    # A batch whose answer was lost was executed by ClickHouse again on replay, and dropped by its token.
    assert max(server.insert_tokens.values()) >= 2


# --- the collector process killed ----------------------------------------------------------------------


def run_writer(store_dir: Path, spool_dir: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(PROCESS), "write", str(store_dir), str(spool_dir), *options],
        stdout=subprocess.PIPE,
        text=True,
    )


def read_until_acked(process: subprocess.Popen[str], count: int) -> tuple[set[int], set[int]]:
    """Read the writer's output until `count` requests are acknowledged; (sent, acked)."""
    sent: set[int] = set()
    acked: set[int] = set()
    assert process.stdout is not None
    for line in process.stdout:
        word, _, rest = line.strip().partition(" ")
        if word == "sent":
            sent.add(int(rest))
        elif word == "acked":
            acked.add(int(rest))
            if len(acked) >= count:
                break
    assert len(acked) >= count, f"the writer stopped early (exit code {process.poll()})"
    return sent, acked


def finish(process: subprocess.Popen[str], sent: set[int], acked: set[int]) -> None:
    """Read what the writer printed until it exited."""
    assert process.stdout is not None
    for line in process.stdout:
        word, _, rest = line.strip().partition(" ")
        if word == "acked":
            acked.add(int(rest))
        elif word == "sent":
            sent.add(int(rest))
    process.stdout.close()


def verify(store_dir: Path, spool_dir: Path, requests: set[int]) -> dict[str, Any]:
    resend = ",".join(str(n) for n in sorted(requests))
    done = subprocess.run(
        [sys.executable, str(PROCESS), "verify", str(store_dir), str(spool_dir), resend],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_collector_killed_mid_batch_and_restarted_stores_every_span_once(tmp_path: Path) -> None:
    store_dir, spool_dir = tmp_path / "store", tmp_path / "spool"
    sent: set[int] = set()
    acked: set[int] = set()
    # A deadline near the insert time sends some batches to the spool while their late inserts still
    # land, so that the kill finds batches in the store, in the spool, and in both.
    for first in (0, 1000):
        writer = run_writer(store_dir, spool_dir, "--first", str(first), "--deadline", "0.03")
        more_sent, more_acked = read_until_acked(writer, 20)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        finish(writer, more_sent, more_acked)
        sent |= more_sent
        acked |= more_acked
    assert writer.returncode == -signal.SIGKILL

    # The restart replays the spool, then every client sends its requests again: those never
    # answered (the kill cut them off) and those answered (as if the answers had been lost).
    result = verify(store_dir, spool_dir, sent)

    assert result["duplicates"] == {}
    stored = {tuple(pair.split("/")) for pair in result["ids"]}
    assert ids_of(acked) <= stored
    assert stored == ids_of(sent)
    calls = len(sent) * CALLS_PER_REQUEST
    assert result["calls"] == [calls, calls, calls]
    assert result["after"]["spool_records"] == 0


def test_sigterm_flushes_everything_acknowledged_to_the_store_before_exiting(tmp_path: Path) -> None:
    store_dir, spool_dir = tmp_path / "store", tmp_path / "spool"
    writer = run_writer(store_dir, spool_dir, "--sigterm")
    sent, acked = read_until_acked(writer, 20)
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=60) == 128 + signal.SIGTERM
    finish(writer, sent, acked)

    result = verify(store_dir, spool_dir, set())

    assert result["before"]["spool_records"] == 0, "the flush went to the store, not to the spool"
    assert result["duplicates"] == {}
    stored = {tuple(pair.split("/")) for pair in result["ids"]}
    assert ids_of(acked) <= stored <= ids_of(sent)
