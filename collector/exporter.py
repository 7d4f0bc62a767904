"""`ClickHouseSpanExporter`: an OpenTelemetry SDK span exporter that writes `otel_traces`.

Schema creation is a start-up step (the first export, so that constructing the exporter does no
I/O); the insert is the hot path: spans become rows and one batch insert sends them. A span the
table cannot take does not cost its batch: the batch is split until the bad span is alone, the
span is retried with its strings made valid UTF-8, and if it still fails it is reported (trace and
span id, and why) and left out while the rest is stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spancost._log import log_once
from spancost.collector.rows import span_row
from spancost.collector.schema import DEFAULT_DATABASE, SchemaConfig, apply_schema
from spancost.collector.sink import TRACES_TABLE, StoreDown, insert_rows

logger = logging.getLogger("spancost.collector")

__all__ = ["TRACES_TABLE", "ClickHouseSpanExporter", "span_ids"]


class ClickHouseSpanExporter(SpanExporter):
    """Writes spans to the `otel_traces` table of a ClickHouse store (`chdb:///path` or `http(s)://...`).

    The database is `database`, else the one the DSN names, else `otel`. Put it behind a
    `BatchSpanProcessor`, or pass `store=` to `spancost.instrument()`.
    """

    def __init__(
        self, dsn: str, *, database: str | None = None, create_schema: bool = True, client: Any = None
    ) -> None:
        from spancost.store import dsn_database

        self.dsn = dsn
        self.config = SchemaConfig(database=database or dsn_database(dsn) or DEFAULT_DATABASE)
        self._create_schema = create_schema
        self._client = client
        self._started = False
        self._lock = threading.Lock()
        self.rejected = 0
        """Spans the table could not take (each also logged)."""

    def _ensure_started(self) -> Any:
        if not self._started:
            if self._client is None:
                from spancost.store import open_client

                self._client = open_client(self.dsn)
            if self._create_schema:
                apply_schema(self._client, self.config)
            self._started = True
        return self._client

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            try:
                client = self._ensure_started()
            except Exception as err:
                log_once(logger, f"exporter.start:{self.dsn}", "spancost: cannot open the store: %s", err)
                return SpanExportResult.FAILURE
            rows = []
            for span in spans:
                try:
                    rows.append(span_row(span))
                except Exception as err:
                    self._reject(span_ids(span), f"cannot convert the span: {err}")
            if not rows:
                return SpanExportResult.SUCCESS
            try:
                self._insert(client, rows)
            except StoreDown as err:
                log_once(
                    logger,
                    f"exporter.insert:{self.dsn}",
                    "spancost: cannot write to the store: %s",
                    err.__cause__,
                )
                return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS

    def _insert(self, client: Any, rows: list[list[Any]]) -> None:
        """Insert `rows`; a batch with a bad row is split until the bad row is found and left out."""
        # No deduplication token: the SDK's batch processor never sends a failed batch again.
        insert_rows(client, self.config.database, rows, token=None, reject=self._reject)

    def _reject(self, ids: tuple[str, str], why: str) -> None:
        self.rejected += 1
        logger.warning("spancost: span %s/%s not stored: %s", ids[0], ids[1], why)

    def shutdown(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            self._started = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def span_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.context
    if context is None:
        return ("?", "?")
    return (format(context.trace_id, "032x"), format(context.span_id, "016x"))
