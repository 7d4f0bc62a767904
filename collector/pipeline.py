"""`BatchingPipeline`: the durable middle of `spancost serve`, between the receivers and ClickHouse.

A request's rows are queued (bounded: a full queue answers `Overloaded` at once), batched by size
and time, and inserted by one writer thread; `submit` returns once they are durable, stored in
ClickHouse or fsynced in the spool. What guarantees what:

- acknowledged means durable: a request is acknowledged only after its batch's insert returned or
  its batch was appended to the spool and fsynced;
- nothing acknowledged is lost: a spooled batch is deleted only after an insert of it returned;
  after a crash the restarted pipeline replays the spool, oldest batch first;
- nothing is stored twice by a replay: every batch has one token, kept in the spool with it, sent
  as ClickHouse's `insert_deduplication_token` on every attempt (each table remembers the last
  `DEDUP_WINDOW_BLOCKS` tokens, views included);
- nothing is stored twice by a client retry of a request whose answer was lost: spans are dropped
  when their (TraceId, SpanId) is among the last `recent_spans` made durable; at start that memory
  is filled from the spool and from the parts ClickHouse wrote in the last `recent_window_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from spancost.collector.dedup import RecentSpans
from spancost.collector.ingest import Overloaded, Unavailable
from spancost.collector.schema import SchemaConfig
from spancost.collector.sink import ClickHouseSink, StoreDown
from spancost.collector.spool import Spool, SpoolError
from spancost.collector.tickets import Closed, Full, RequestQueue, Ticket
from spancost.collector.writer import Late, Writer

logger = logging.getLogger("spancost.collector")


@dataclass(frozen=True)
class PipelineConfig:
    """How the pipeline batches, buffers, spools and replays. Every field has its default here."""

    max_batch_rows: int = 10_000
    """A batch is inserted once it holds this many rows (default 10,000)."""
    max_batch_delay_s: float = 0.5
    """... or once its oldest row has waited this long (default 0.5 s)."""
    max_queue_rows: int = 50_000
    """Rows held in memory, queued or being written; beyond it `submit` raises Overloaded (default 50,000)."""
    insert_deadline_s: float = 5.0
    """An insert or probe slower than this counts as a store outage: its batch goes to the spool (5 s).
    With `max_batch_delay_s` it bounds how long `submit` takes: keep the receivers' timeout above both."""
    probe_min_s: float = 0.5
    """First wait before probing a store that went down; doubled after each failed probe (0.5 s)."""
    probe_max_s: float = 30.0
    """Longest wait between probes (30 s)."""
    replay_share: int = 4
    """While live batches keep coming, one spooled batch is replayed after every this many (4)."""
    recent_spans: int = 1_000_000
    """Span ids remembered to drop a client's retry of spans already durable (1,000,000; ~60 MB full)."""
    recent_window_s: float = 600.0
    """At start, span ids of the parts ClickHouse wrote in this many seconds are remembered (600 s)."""
    retry_after_s: float = 1.0
    """What `Overloaded` tells a client to wait (1 s)."""
    spool_dir: Path | None = None
    """Where the spool lives (default: beside an embedded store, else .spancost/spool)."""
    spool_max_bytes: int = 1 << 30
    """Spool size limit; beyond it, with the store down, `submit` raises Unavailable (1 GiB)."""
    spool_segment_bytes: int = 64 << 20
    """Size at which a spool segment is closed and a new one started (64 MiB)."""
    startup_deadline_s: float = 60.0
    """How long start() waits for the store to connect and create its schema (60 s)."""

    def validate(self) -> list[str]:
        """Every problem with the configuration (empty when there is none)."""
        problems = []
        for name in ("max_batch_rows", "max_queue_rows", "replay_share", "recent_spans"):
            if getattr(self, name) < 1:
                problems.append(f"{name} {getattr(self, name)}: must be at least 1")
        for name in ("max_batch_delay_s", "insert_deadline_s", "probe_min_s", "retry_after_s"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} {getattr(self, name)}: must be more than 0")
        if self.recent_window_s < 0:
            problems.append(f"recent_window_s {self.recent_window_s}: must be 0 or more")
        if self.max_queue_rows < self.max_batch_rows:
            problems.append(
                f"max_queue_rows {self.max_queue_rows}: must be at least max_batch_rows"
                f" ({self.max_batch_rows})"
            )
        if self.probe_max_s < self.probe_min_s:
            problems.append(
                f"probe_max_s {self.probe_max_s}: must be at least probe_min_s ({self.probe_min_s})"
            )
        if self.spool_segment_bytes < 1 << 16:
            problems.append(f"spool_segment_bytes {self.spool_segment_bytes}: must be at least 64 KiB")
        if self.spool_max_bytes < self.spool_segment_bytes:
            problems.append(
                f"spool_max_bytes {self.spool_max_bytes}: must be at least spool_segment_bytes"
                f" ({self.spool_segment_bytes})"
            )
        return problems


def default_spool_dir(dsn: str) -> Path:
    """Beside an embedded store (`<store>.spool`), so that both move together; else .spancost/spool."""
    from spancost.store import chdb_path

    path = chdb_path(dsn)
    if path is not None:
        return path.with_name(f"{path.name}.spool")
    return (Path.cwd() / ".spancost" / "spool").resolve()


class BatchingPipeline:
    """Implements `IngestPipeline`. `start()` before the first `submit`, `stop()` to flush."""

    def __init__(self, sink: ClickHouseSink, spool: Spool, config: PipelineConfig = PipelineConfig()) -> None:
        problems = config.validate()
        if problems:
            raise ValueError("invalid pipeline configuration: " + "; ".join(problems))
        self.config = config
        self.sink = sink
        self.spool = spool
        self._requests = RequestQueue(
            max_queue_rows=config.max_queue_rows,
            max_batch_rows=config.max_batch_rows,
            max_batch_delay_s=config.max_batch_delay_s,
        )
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("received", "stored", "spooled", "replayed", "rejected", "deduplicated", "unavailable"), 0
        )
        self._counts.update(batches=0, overloaded_requests=0, timed_out_requests=0)
        self._recent = RecentSpans(config.recent_spans)
        self._seeded = False
        self._writer = Writer(
            requests=self._requests,
            sink=sink,
            spool=spool,
            recent=self._recent,
            count=self._count,
            insert_deadline_s=config.insert_deadline_s,
            probe_min_s=config.probe_min_s,
            probe_max_s=config.probe_max_s,
            replay_share=config.replay_share,
            seed=self._seed_from_store,
        )
        self._started = False
        self._stopped = False
        self._flushed = False
        self._stop_lock = threading.Lock()

    @classmethod
    def for_store(
        cls,
        dsn: str,
        *,
        database: str | None = None,
        schema: SchemaConfig | None = None,
        config: PipelineConfig = PipelineConfig(),
    ) -> BatchingPipeline:
        """The pipeline for a store DSN (its schema made as `schema` says, or plainly in `database`),
        with its spool where `config` says (or the default place)."""
        sink = ClickHouseSink(
            dsn, database=database, schema=schema, read_timeout_s=max(30.0, 3 * config.insert_deadline_s)
        )
        spool = Spool(
            config.spool_dir or default_spool_dir(dsn),
            max_bytes=config.spool_max_bytes,
            segment_bytes=config.spool_segment_bytes,
        )
        return cls(sink, spool, config)

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spool (remembering the span ids it holds), connect to the store and create its
        schema, then start writing. A store that does not answer is not an error (the spool takes
        the batches until it does); a spool that cannot be opened, or a schema refused, is."""
        if self._started:
            raise RuntimeError("the pipeline is already started (a stopped one cannot start again)")
        self.spool.open()
        for record in self.spool.pending():
            try:
                self._recent.remember(self.spool.read(record))
            except SpoolError as err:  # the replay will meet it again, and drop it
                logger.error("spancost: %s", err)
        try:
            self._writer.call(self.sink.open, self.config.startup_deadline_s)
            self._seed_from_store()
            self._writer.store_up = True
        except (StoreDown, Late) as err:
            logger.warning("spancost: the store is not answering yet, spooling until it does: %s", err)
        except BaseException:
            self._writer.worker.close(0)
            self.spool.close()
            raise
        self._started = True
        self._writer.thread.start()

    def _seed_from_store(self) -> None:
        if self._seeded or not self.config.recent_window_s:
            return
        ids = self._writer.call(
            lambda: self.sink.recent_span_ids(self.config.recent_window_s, self.config.recent_spans // 2)
        )
        self._recent.remember_ids(ids)
        self._seeded = True

    def stop(self, timeout: float = 30.0) -> bool:
        """Refuse new requests and flush the queue to the store (or the spool) within `timeout`;
        True when everything queued was made durable. Safe to call more than once, from any thread."""
        with self._stop_lock:
            if not self._started:
                return True
            if self._stopped:
                return self._flushed
            self._stopped = True
            self._writer.stop_at = time.monotonic() + max(0.0, timeout - 0.5)
            self._requests.close()
            self._writer.thread.join(timeout)
            if self._writer.thread.is_alive():
                logger.error(
                    "spancost: the queue was not flushed within %ss; queued spans may be lost", timeout
                )
                return False
            self.spool.close()
            self._writer.worker.close(min(1.0, timeout))
            if not self._writer.busy:
                self.sink.close()
            self._flushed = True
            return True

    def install_sigterm_handler(self, timeout: float = 30.0) -> None:
        """On SIGTERM, flush (`stop(timeout)`) in a thread of its own, then let the handler installed
        before run (a server's graceful shutdown), or exit with status 143 once the flush is done.

        The handler itself does not wait: it runs in the main thread, which may be the one holding
        the queue (an event loop in `submit_async`). The flush thread is not a daemon, so the
        interpreter waits for it before exiting. Call from the main thread."""
        previous = signal.getsignal(signal.SIGTERM)

        def handler(signum: int, frame: FrameType | None) -> None:
            threading.Thread(target=self.stop, args=(timeout,), name="spancost-shutdown").start()
            if callable(previous):
                previous(signum, frame)
            elif previous in (signal.SIG_DFL, None):
                raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, handler)

    # --- the receivers' side ------------------------------------------------------------------------

    def submit(self, rows: list[list[Any]], *, timeout: float) -> None:
        ticket = self._enqueue(rows)
        if ticket is None:
            return
        if not ticket.done.wait(timeout):
            self._give_up(ticket, timeout)
        self._raise_for(ticket)

    async def submit_async(self, rows: list[list[Any]], *, timeout: float) -> None:
        ticket = self._enqueue(rows)
        if ticket is None:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            # A closed loop (RuntimeError) has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, waiter)

        ticket.on_done(wake)
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            self._give_up(ticket, timeout)
        self._raise_for(ticket)

    def _enqueue(self, rows: list[list[Any]]) -> Ticket | None:
        if not rows:
            return None
        if not self._started:
            raise _error(Unavailable, "the pipeline is not started", self.config.retry_after_s)
        try:
            ticket = self._requests.put(rows)
        except Full:
            self._count(overloaded_requests=1)
            raise _error(
                Overloaded,
                f"the ingest queue is full ({self.config.max_queue_rows} spans)",
                self.config.retry_after_s,
            ) from None
        except Closed:
            raise _error(Unavailable, "the collector is shutting down", self.config.retry_after_s) from None
        self._count(received=len(rows))
        return ticket

    def _give_up(self, ticket: Ticket, timeout: float) -> None:
        self._count(timed_out_requests=1)
        error = _error(
            Unavailable, f"the spans were not stored within {timeout:g}s", self.config.retry_after_s
        )
        self._requests.abandon(ticket, error)
        if not ticket.done.is_set():
            # Some rows are in a batch being written: they will be durable, and a retry dropped as a
            # duplicate; the client must still hear that this request did not complete.
            raise error

    @staticmethod
    def _raise_for(ticket: Ticket) -> None:
        if ticket.error is not None:
            raise ticket.error

    # --- state ----------------------------------------------------------------------------------------

    def _count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._counts[name] += amount

    GAUGES = frozenset(
        {
            "queue_depth",
            "rows_inflight",
            "spool_records",
            "spool_rows_pending",
            "spool_bytes",
            "spool_skipped_bytes",
            "store_up",
            "recent_ids_size",
        }
    )
    """The keys of `stats()` that are levels (gauges); every other key is a running total (counter)."""

    def stats(self) -> Mapping[str, int]:
        """Counters (rows unless named otherwise): received, stored (by live inserts), spooled,
        replayed (stored from the spool), rejected (refused by the table), deduplicated (dropped as
        client retries), unavailable (refused: store down and spool full), batches,
        overloaded_requests, timed_out_requests; and the levels in `GAUGES`."""
        with self._lock:
            counts = dict(self._counts)
        counts.update(
            queue_depth=self._requests.queued_rows,
            rows_inflight=self._requests.held_rows,
            spool_records=len(self.spool),
            spool_rows_pending=self.spool.pending_rows,
            spool_bytes=self.spool.total_bytes,
            spool_skipped_bytes=self.spool.skipped_bytes,
            store_up=int(self._writer.store_up),
            recent_ids_size=len(self._recent),
        )
        return counts

    def has_room(self) -> bool:
        """Whether a request would be queued now: a receiver can ask before decoding a body, so that
        refusing under overload costs no conversion work (a `submit` may still raise Overloaded)."""
        return self._requests.held_rows < self.config.max_queue_rows

    def healthy(self) -> bool:
        """Running and able to take spans: the store is up, or the spool is not refusing batches."""
        if not self._started or self._stopped or not self._writer.thread.is_alive():
            return False
        return self._writer.store_up or not self._writer.spool_full


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _error(kind: type[Exception], message: str, retry_after_s: float) -> Exception:
    error = kind(message)
    error.retry_after_s = retry_after_s  # type: ignore[attr-defined]
    return error
