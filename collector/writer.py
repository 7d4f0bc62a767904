"""The writer thread: batches into the store, or into the spool when the store is down or slow; replay.

One writer thread takes batches from the queue and decides where each goes; one store thread makes
the store calls, one at a time, so that the writer can stop waiting for a call that overruns its
deadline. Then the batch goes to the spool, its submitters are released, and the store counts as
down until the late call has ended and a probe (with backoff) succeeds. The late call may still
succeed: if it does, the spooled copy is acknowledged; if the process dies first, the replay
carries the same token and ClickHouse drops it.

While the store is up and the spool holds batches, the oldest is replayed whenever no live batch
is due, and after every `replay_share` live batches even if one is, so that neither starves.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from spancost._log import log_once
from spancost.collector.dedup import RecentSpans, new_token
from spancost.collector.sink import ClickHouseSink, StoreDown
from spancost.collector.spool import Spool, SpoolError, SpoolFull, SpoolRecord
from spancost.collector.tickets import Batch, RequestQueue

logger = logging.getLogger("spancost.collector")


class StoreWorker:
    """A daemon thread running store calls one at a time. Daemon: a call stuck in the store must not
    keep the process from exiting once the pipeline has stopped."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="spancost-store", daemon=True)
        self._thread.start()

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((call, future))
        return future

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            call, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as err:
                future.set_exception(err)

    def close(self, timeout: float) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)


class Late(Exception):
    """A store call overran its deadline (it goes on in the store thread)."""


class Writer:
    """Owns the sink, the spool and the recent-span filter; only its thread touches them."""

    def __init__(
        self,
        *,
        requests: RequestQueue,
        sink: ClickHouseSink,
        spool: Spool,
        recent: RecentSpans,
        count: Callable[..., None],
        insert_deadline_s: float,
        probe_min_s: float,
        probe_max_s: float,
        replay_share: int,
        seed: Callable[[], None],
    ) -> None:
        self.requests = requests
        self.sink = sink
        self.spool = spool
        self.recent = recent
        self._count = count
        self._deadline_s = insert_deadline_s
        self._probe_min_s = probe_min_s
        self._probe_max_s = probe_max_s
        self._replay_share = replay_share
        self._seed = seed
        self.worker = StoreWorker()
        self.store_up = False
        self.spool_full = False
        """The last append found the spool full, and nothing was freed since."""
        self._backoff = probe_min_s
        self._next_probe = 0.0
        self._late: tuple[Future[Any], SpoolRecord | None] | None = None
        self._live_since_replay = 0
        self.stop_at: float | None = None
        self.thread = threading.Thread(target=self._run, name="spancost-writer", daemon=True)

    @property
    def busy(self) -> bool:
        """A store call that overran its deadline has not ended yet."""
        return self._late is not None and not self._late[0].done()

    # --- store calls ------------------------------------------------------------------------------

    def call(self, what: Callable[[], Any], deadline_s: float | None = None) -> Any:
        """Run `what` in the store thread and wait for it at most the deadline; raises `Late`,
        `StoreDown`, or what `what` raised."""
        if self._late is not None:
            raise StoreDown("the store thread is still busy with a late call")
        deadline = self._deadline_s if deadline_s is None else deadline_s
        future = self.worker.submit(what)
        future.add_done_callback(lambda _: self.requests.wake())
        try:
            return future.result(timeout=deadline)
        except TimeoutError:
            self._late = (future, None)
            raise Late(f"the store did not answer within {deadline:g}s") from None

    def _down(self, why: BaseException) -> None:
        if self.store_up:
            logger.warning("spancost: the store is unavailable, spooling batches to disk: %s", why)
        self.store_up = False
        self._next_probe = time.monotonic() + self._backoff

    def _probe(self) -> None:
        if self.store_up or self._late is not None or time.monotonic() < self._next_probe:
            return
        try:
            self.call(self.sink.ping)
            self._seed()
        except Exception as err:
            self._backoff = min(self._backoff * 2, self._probe_max_s)
            self._next_probe = time.monotonic() + self._backoff
            log_once(
                logger, f"writer.probe:{type(err).__name__}", "spancost: the store is still down: %s", err
            )
            return
        if len(self.spool):
            logger.warning("spancost: the store is back; replaying %d spooled batches", len(self.spool))
        self.store_up = True
        self._backoff = self._probe_min_s

    def _check_late(self) -> None:
        """A late call has ended: if it stored a spooled batch, that copy is done."""
        if self._late is None or not self._late[0].done():
            return
        future, record = self._late
        self._late = None
        if record is not None and future.exception() is None and record in set(self.spool.pending()):
            self._ack(record)
            rejected = future.result()
            self._count(replayed=record.rows - rejected, rejected=rejected)

    # --- the loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._check_late()
            stopping = self.requests.closed
            batch = self.requests.take(self._idle_wait(stopping))
            if batch is not None:
                self._guarded(self._write, batch)
            elif stopping and self.requests.empty():
                return
            if not stopping:
                self._guarded(self._probe)
                self._guarded(self._replay)

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        # The writer must outlive any one failure; a batch it could not place is settled with the error.
        try:
            step(*args)
        except Exception as err:
            logger.exception("spancost: the writer failed: %s", err)
            if args:
                self.requests.settle(args[0], _unavailable(f"write batch: {err}", self._backoff))

    def _idle_wait(self, stopping: bool) -> float:
        if stopping:
            return 0.0
        if self.store_up and len(self.spool) and self._late is None:
            return 0.0  # replay work to do
        if not self.store_up and self._late is None:
            return max(0.0, self._next_probe - time.monotonic())
        return 1.0

    def _write(self, batch: Batch) -> None:
        rows = self.recent.fresh(batch.rows)
        self._count(deduplicated=len(batch.rows) - len(rows), batches=1)
        if not rows:
            self.requests.settle(batch)
            return
        token = new_token()
        deadline = self._deadline_s
        if self.stop_at is not None:
            deadline = min(deadline, self.stop_at - time.monotonic())
        if self.store_up and deadline > 0.05:
            try:
                rejected = self.call(lambda: self.sink.insert(rows, token.hex()), deadline)
            except Late as err:
                record = self._to_spool(batch, rows, token)
                if self._late is not None and record is not None:
                    self._late = (self._late[0], record)
                self._down(err)
                return
            except StoreDown as err:
                self._down(err)
            except Exception as err:
                logger.exception("spancost: insert failed unexpectedly; spooling the batch")
                self._down(err)
            else:
                self.recent.remember(rows)
                self._count(stored=len(rows) - rejected, rejected=rejected)
                self._live_since_replay += 1
                self.requests.settle(batch)
                return
        self._to_spool(batch, rows, token)

    def _to_spool(self, batch: Batch, rows: list[list[Any]], token: bytes) -> SpoolRecord | None:
        try:
            record = self.spool.append(token, rows)
        except SpoolError as err:
            full = isinstance(err, SpoolFull)
            self.spool_full = full
            log_once(logger, f"writer.spool:{full}", "spancost: spans refused, the store is down and %s", err)
            self._count(unavailable=len(rows))
            self.requests.settle(batch, _unavailable(str(err), self._backoff))
            return None
        self.spool_full = False
        self.recent.remember(rows)
        self._count(spooled=len(rows))
        self.requests.settle(batch)
        return record

    def _replay(self) -> None:
        if not self.store_up or self._late is not None or not len(self.spool):
            return
        if self.requests.due() and self._live_since_replay < self._replay_share:
            return
        record = self.spool.head()
        assert record is not None
        try:
            rows = self.spool.read(record)
        except SpoolError as err:
            logger.error("spancost: dropping a spooled batch that cannot be read: %s", err)
            self._ack(record)
            return
        self._live_since_replay = 0
        try:
            rejected = self.call(lambda: self.sink.insert(rows, record.token.hex()))
        except Late as err:
            if self._late is not None:
                self._late = (self._late[0], record)
            self._down(err)
            return
        except Exception as err:
            self._down(err)
            return
        self._ack(record)
        self._count(replayed=len(rows) - rejected, rejected=rejected)

    def _ack(self, record: SpoolRecord) -> None:
        self.spool_full = False
        try:
            self.spool.ack(record)
        except SpoolError as err:
            # Forgotten for this run all the same; a restart would replay it, and ClickHouse drop it
            # by its token.
            logger.warning("spancost: %s", err)


def _unavailable(message: str, retry_after_s: float) -> Exception:
    from spancost.collector.ingest import Unavailable

    error = Unavailable(message)
    error.retry_after_s = retry_after_s
    return error
