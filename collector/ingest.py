"""The interface between the OTLP receivers and the durable ingest pipeline, and the simplest pipeline.

The receivers decode and convert a request, then hand its rows to an `IngestPipeline` and answer the
client only once `submit` returns: the spans are then in ClickHouse or fsynced in the spool. A pipeline
that cannot take them says how long the client should wait before retrying (`Overloaded` when it
sheds load, `Unavailable` when neither the store nor the spool can take them); the receivers turn that
into 429/503 with `Retry-After` on OTLP/HTTP and RESOURCE_EXHAUSTED/UNAVAILABLE with RetryInfo on gRPC.

`DirectPipeline` stores each request synchronously, without a queue or a spool: what `spancost serve`
runs when spooling is off, and what the receivers' tests run on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from spancost.collector.sink import StoreDown, insert_rows

logger = logging.getLogger("spancost.collector")


class Overloaded(Exception):
    """The pipeline sheds load: the client should retry after `retry_after_s` seconds."""

    def __init__(self, message: str = "the collector is overloaded", retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(Exception):
    """Neither the store nor the spool can take the rows now: retry after `retry_after_s` seconds."""

    def __init__(self, message: str = "the store is unavailable", retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IngestPipeline(Protocol):
    def submit(self, rows: list[list[Any]], *, timeout: float) -> None:
        """Return once every row is stored in ClickHouse or fsynced in the spool; raise Overloaded /
        Unavailable otherwise. `rows` are in `collector.rows.COLUMNS` order; treat them as read-only
        (rows of one resource share its ResourceAttributes dict)."""

    async def submit_async(self, rows: list[list[Any]], *, timeout: float) -> None:
        """`submit` for the HTTP receiver's event loop: the same guarantee, without blocking the loop."""

    def stats(self) -> Mapping[str, int]:
        """Counters and gauges for /metrics: received, stored, spooled, replayed, rejected,
        deduplicated, queue_depth, ..."""

    def healthy(self) -> bool:
        """Whether the pipeline and its store can take spans now (GET /health)."""

    def has_room(self) -> bool:
        """Whether a request would be queued now: asked before decoding a body, so that refusing
        under overload costs no conversion work (`submit` may still raise Overloaded)."""


class DirectPipeline:
    """Stores every submission in ClickHouse before returning, one at a time.

    No queue and no spool: when the store does not answer, the request fails with `Unavailable` and
    the client retries it. A request that waits longer than its timeout for the one before it fails
    with `Overloaded`. Rows the table refuses are left out, counted in `rejected` and logged.
    """

    def __init__(self, client: Any, database: str, *, retry_after_s: float = 5.0) -> None:
        self.client = client
        self.database = database
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._healthy = True
        self._stats = {"received": 0, "stored": 0, "spooled": 0, "rejected": 0, "queue_depth": 0}

    def submit(self, rows: list[list[Any]], *, timeout: float) -> None:
        if not rows:
            return
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            raise Overloaded(f"the store is still busy with earlier requests after {timeout:g} s", 1.0)
        try:
            self._stats["received"] += len(rows)
            try:
                refused = insert_rows(self.client, self.database, rows, token=None, reject=self._refused)
            except StoreDown as err:
                self._healthy = False
                raise Unavailable(f"the store did not take the spans: {err}", self.retry_after_s) from err
            self._healthy = True
            self._stats["stored"] += len(rows) - refused
            self._stats["rejected"] += refused
        finally:
            self._lock.release()

    async def submit_async(self, rows: list[list[Any]], *, timeout: float) -> None:
        await asyncio.to_thread(self.submit, rows, timeout=timeout)

    def _refused(self, ids: tuple[str, str], why: str) -> None:
        logger.warning("spancost: span %s/%s not stored: %s", ids[0], ids[1], why)

    def stats(self) -> Mapping[str, int]:
        return dict(self._stats)

    def healthy(self) -> bool:
        return self._healthy

    def has_room(self) -> bool:
        return True  # a request waits for the one before it, up to its timeout
