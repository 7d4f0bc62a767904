"""Rows into `otel_traces`: the insert every writer shares, and the sink the ingest pipeline drives.

`insert_rows` is the hot path. Every insert carries an `insert_deduplication_token`, so that sending
the same batch again (a replay from the spool, an insert whose answer was lost) is dropped by
ClickHouse in `otel_traces` and, table by table, in the views' targets (`llm_calls`, `llm_daily`,
`otel_traces_trace_id_ts`): each keeps the hashes of its last blocks (`dedup_window` in schema.py).
A batch the table refuses is split until the refused row is alone; each half gets a token derived
from the batch's, so a replay splits the same way and is dropped the same way.

`StoreDown` tells a store that did not answer (nothing is known about the batch: keep it, send it
again later) from a row the table refused (leave the row out, keep the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from spancost.collector.rows import COLUMNS, sanitised
from spancost.collector.schema import DEFAULT_DATABASE, SchemaConfig, apply_schema, storage_table

logger = logging.getLogger("spancost.collector")

TRACES_TABLE = "otel_traces"

# Settings of every insert. Deduplication is on by default in ClickHouse but stated here because
# exactly-once rests on it; async_insert is off because the pipeline batches itself, and a server
# (or chdb, whose default is on) merging our blocks with others' would change what a token covers.
_INSERT_SETTINGS = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "async_insert": 0,
    # On a cluster `otel_traces` is a Distributed table: answer once the shards have the rows, not
    # once they wait in its local queue, so that an acknowledgement still means "stored". (The old
    # name, which servers before the rename accept too.)
    "insert_distributed_sync": 1,
}

# ClickHouse error codes that say the store cannot take any batch now, not that this batch is bad:
# bisecting would reject every row of a good batch.
TRANSIENT_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE (a cut connection)
        60,  # UNKNOWN_TABLE (the schema is not there: not the rows' fault)
        81,  # UNKNOWN_DATABASE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)


class StoreDown(Exception):
    """The store did not take the batch and nothing is known to be wrong with it; the cause is chained."""


def is_unavailable(error: BaseException) -> bool:
    """Connection-level and transient server failures, as opposed to a batch the table refused."""
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    if isinstance(error, (OperationalError, OSError)):
        return True
    if isinstance(error, DatabaseError):
        code = getattr(error, "code", None)
        if code is None:
            # No ClickHouse code: an HTTP-level failure (a proxy's 502), unless the client itself
            # refused a value (a DatabaseError subclass such as DataError), which is the rows' problem.
            return type(error) is DatabaseError
        return code in TRANSIENT_CODES
    return False


Reject = Callable[[tuple[str, str], str], None]
"""Called with (TraceId, SpanId) and the reason for each row the table refused."""


def insert_rows(
    client: Any,
    database: str,
    rows: list[list[Any]],
    *,
    token: str | None,
    reject: Reject,
    column_types: Sequence[str] | None = None,
) -> int:
    """Insert `rows` (in `COLUMNS` order); returns how many rows the table refused (each reported to
    `reject` and left out). Raises `StoreDown` when the store did not answer. Without `column_types`
    (see `describe_columns`), every insert first asks the server for them."""
    return _insert(client, database, rows, token, reject, column_types)


def describe_columns(client: Any, database: str) -> list[str]:
    """The types of `COLUMNS` in the store's otel_traces, asked once instead of before every insert."""
    result = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String}",
        parameters={"db": database, "table": TRACES_TABLE},
    )
    types = dict(result.result_rows)
    missing = [name for name in COLUMNS if name not in types]
    if missing:
        raise RuntimeError(f"describe {database}.{TRACES_TABLE}: columns missing: {', '.join(missing)}")
    return [types[name] for name in COLUMNS]


def _insert(
    client: Any,
    database: str,
    rows: list[list[Any]],
    token: str | None,
    reject: Reject,
    types: Sequence[str] | None,
) -> int:
    try:
        _send(client, database, rows, token, types)
        return 0
    except StoreDown:
        raise
    except Exception as err:
        failure = err
    if len(rows) > 1:
        middle = len(rows) // 2
        left = _insert(client, database, rows[:middle], _part(token, "a"), reject, types)
        return left + _insert(client, database, rows[middle:], _part(token, "b"), reject, types)
    try:
        # A lone surrogate cannot be UTF-8: a second attempt with the strings made valid.
        _send(client, database, [sanitised(rows[0])], _part(token, "s"), types)
        return 0
    except StoreDown:
        raise
    except Exception:
        reject((str(rows[0][1]), str(rows[0][2])), f"insert into {TRACES_TABLE} refused it: {failure}")
        return 1


def _part(token: str | None, suffix: str) -> str | None:
    """The token of a half (or of the sanitised retry): derived, so that a replay derives the same."""
    return f"{token}{suffix}" if token else None


def _send(
    client: Any, database: str, rows: list[list[Any]], token: str | None, types: Sequence[str] | None
) -> None:
    settings = dict(_INSERT_SETTINGS)
    if token:
        settings["insert_deduplication_token"] = token
    try:
        client.insert(
            TRACES_TABLE,
            rows,
            column_names=COLUMNS,
            database=database,
            column_type_names=types,
            settings=settings,
        )
    except Exception as err:
        if is_unavailable(err):
            raise StoreDown(f"insert into {TRACES_TABLE}: {err}") from err
        raise


class ClickHouseSink:
    """The store as the pipeline sees it: open (connect, create the schema), insert a batch, ping.

    Not thread-safe: the pipeline calls it from one thread. The client is opened lazily and dropped
    after a failure, so that the next call reconnects.
    """

    def __init__(
        self,
        dsn: str,
        *,
        database: str | None = None,
        schema: SchemaConfig | None = None,
        create_schema: bool = True,
        read_timeout_s: float | None = None,
        open_client: Callable[[str], Any] | None = None,
    ) -> None:
        self.dsn = dsn
        self.config = schema or SchemaConfig(database=database or DEFAULT_DATABASE)
        self._create_schema = create_schema
        self._read_timeout_s = read_timeout_s
        self._open_client = open_client
        self._client: Any = None
        self._types: list[str] | None = None
        self.rejected: list[tuple[str, str, str]] = []
        """The last refused rows (TraceId, SpanId, why), newest last, at most 100."""

    @property
    def database(self) -> str:
        return self.config.database

    def open(self) -> None:
        """Connect and create the schema; raises `StoreDown` when the store does not answer."""
        if self._client is not None:
            return
        from spancost.store import StoreError, chdb_path, open_client, redact

        try:
            client = (self._open_client or open_client)(self.dsn)
        except StoreError as err:
            if chdb_path(self.dsn) is not None:
                raise  # an embedded store that cannot open (locked, missing chdb) will not come back
            raise StoreDown(f"connect to {redact(self.dsn)}: {err}") from err
        if self._read_timeout_s and hasattr(client, "timeout"):
            from urllib3 import Timeout

            # A stalled connection must not hold the pipeline's store thread for the default 300 s.
            client.timeout = Timeout(connect=min(10.0, self._read_timeout_s), read=self._read_timeout_s)
        try:
            if self._create_schema:
                apply_schema(client, self.config)
            self._types = describe_columns(client, self.database)
        except Exception as err:
            client.close()
            cause = err.__cause__ or err
            if is_unavailable(cause):
                raise StoreDown(f"create the schema in {redact(self.dsn)}: {err}") from err
            raise
        self._client = client

    def insert(self, rows: list[list[Any]], token: str) -> int:
        """Insert one batch under its deduplication token; returns the number of refused rows."""
        self.open()
        try:
            return insert_rows(
                self._client, self.database, rows, token=token, reject=self._reject, column_types=self._types
            )
        except StoreDown:
            self._drop_client()
            raise

    def ping(self) -> None:
        """A cheap round trip; raises `StoreDown` when the store does not answer."""
        self.open()
        try:
            self._client.query("SELECT 1")
        except Exception as err:
            self._drop_client()
            raise StoreDown(f"ping: {err}") from err

    def recent_span_ids(self, within_s: float, limit: int) -> list[tuple[str, str]]:
        """(TraceId, SpanId) of the rows in parts written in the last `within_s` seconds: what a
        client may still be retrying after a restart of the collector."""
        self.open()
        # On a cluster, the parts of every shard's local table. Part names repeat across shards, so
        # this may return more spans than were written lately: all of them stored, which is what
        # matters to the caller.
        parts = (
            f"clusterAllReplicas('{self.config.cluster}', system.parts)"
            if self.config.cluster
            else "system.parts"
        )
        sql = (
            f"SELECT TraceId, SpanId FROM `{self.database}`.{TRACES_TABLE}"
            f" WHERE _part IN (SELECT name FROM {parts} WHERE database = {{db:String}}"
            " AND table = {table:String} AND active"
            " AND modification_time >= now() - toIntervalSecond({within:UInt32}))"
            " AND TraceId != '' AND SpanId != '' LIMIT {limit:UInt64}"
        )
        try:
            result = self._client.query(
                sql,
                parameters={
                    "db": self.database,
                    "table": storage_table(self.config, TRACES_TABLE),
                    "within": int(within_s),
                    "limit": limit,
                },
            )
        except Exception as err:
            if is_unavailable(err):
                self._drop_client()
                raise StoreDown(f"read recent span ids: {err}") from err
            raise
        return [(row[0], row[1]) for row in result.result_rows]

    def close(self) -> None:
        self._drop_client()

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as err:  # closing a broken connection may fail too; it is gone either way
                logger.debug("spancost: closing the store client failed: %s", err)

    def _reject(self, ids: tuple[str, str], why: str) -> None:
        logger.warning("spancost: span %s/%s not stored: %s", ids[0], ids[1], why)
        self.rejected.append((ids[0], ids[1], why))
        del self.rejected[:-100]
