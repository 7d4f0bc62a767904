"""`spancost serve`: the OTLP receivers, the durable pipeline and the store, in one process.

Start order: the pipeline (spool opened and replayed first, store connected and its schema
created), then the receivers. Stop order, on SIGTERM or SIGINT: the receivers stop accepting and
finish the requests in flight, then the pipeline flushes what is queued to the store (or the spool).
While it holds an embedded store, the server answers read-only queries on `POST /query` and leaves
its address in the store's directory, so that `spancost report` on the same store reads through it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from spancost.collector.config import ReceiverConfig
from spancost.collector.pipeline import BatchingPipeline, PipelineConfig
from spancost.collector.receivers import Receivers
from spancost.collector.schema import DEFAULT_DATABASE, SchemaConfig
from spancost.remote import SERVE_FILE, ServeInfo, encode_result
from spancost.store import chdb_path, dsn_database, open_client, redact

logger = logging.getLogger("spancost.collector")


@dataclass
class ServeConfig:
    """Everything `spancost serve` is told; defaults in the parts' own config classes."""

    dsn: str
    receivers: ReceiverConfig = field(default_factory=ReceiverConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    cluster: str | None = None
    ttl_days: int = 0
    shutdown_grace_s: float = 30.0

    @property
    def schema(self) -> SchemaConfig:
        return SchemaConfig(
            database=dsn_database(self.dsn) or DEFAULT_DATABASE, cluster=self.cluster, ttl_days=self.ttl_days
        )

    def validate(self) -> list[str]:
        return [*self.receivers.validate(), *self.pipeline.validate(), *self.schema.validate()]


class ReadQueries:
    """`POST /query` of a server that holds an embedded store: read-only statements on its own client."""

    def __init__(self, dsn: str, database: str) -> None:
        self._client = open_client(dsn)
        self._client.database = database
        self._lock = threading.Lock()

    def __call__(self, sql: str, parameters: Mapping[str, Any]) -> bytes:
        with self._lock:
            result = self._client.query(sql, parameters=dict(parameters), settings={"readonly": 2})
        types = [column_type.name for column_type in result.column_types]
        return encode_result(result.column_names, types, result.result_rows)

    def close(self) -> None:
        self._client.close()


class Server:
    def __init__(self, config: ServeConfig) -> None:
        problems = config.validate()
        if problems:
            raise ValueError("invalid settings: " + "; ".join(problems))
        self.config = config
        schema = config.schema
        self.pipeline = BatchingPipeline.for_store(config.dsn, schema=schema, config=config.pipeline)
        self.receivers: Receivers | None = None
        self._queries: ReadQueries | None = None
        self._store_dir = chdb_path(config.dsn)
        self._stopped = threading.Event()

    @property
    def http_port(self) -> int | None:
        return self.receivers.http.port if self.receivers and self.receivers.http else None

    @property
    def grpc_port(self) -> int | None:
        return self.receivers.grpc.port if self.receivers and self.receivers.grpc else None

    def start(self) -> None:
        self.pipeline.start()
        try:
            if self._store_dir is not None and self.config.receivers.http_port is not None:
                self._queries = ReadQueries(self.config.dsn, self.config.schema.database)
            self.receivers = Receivers(self.config.receivers, self.pipeline)
            if self.receivers.http is not None and self._queries is not None:
                self.receivers.http.query = self._queries
            self.receivers.start()
        except BaseException:
            self.pipeline.stop(self.config.shutdown_grace_s)
            raise
        if self._store_dir is not None and self.http_port is not None:
            host = self.config.receivers.host
            local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            ServeInfo(
                f"http://{local}:{self.http_port}", os.getpid(), self.config.receivers.auth_token
            ).write(self._store_dir)
        logger.info("%s", self.describe())

    def stop(self) -> bool:
        """Stop accepting, finish requests in flight, flush the queue; True when all of it is durable."""
        grace = self.config.shutdown_grace_s
        if self.receivers is not None:
            self.receivers.stop(grace)
        flushed = self.pipeline.stop(grace)
        if self._queries is not None:
            self._queries.close()
        if self._store_dir is not None:
            (self._store_dir / SERVE_FILE).unlink(missing_ok=True)
        self._stopped.set()
        return flushed

    def describe(self) -> str:
        """Where it listens and what it writes to, for the console."""
        host = self.config.receivers.host
        parts = []
        if self.grpc_port is not None:
            parts.append(f"OTLP/gRPC on {host}:{self.grpc_port}")
        if self.http_port is not None:
            parts.append(f"OTLP/HTTP on http://{host}:{self.http_port}/v1/traces")
        parts.append(f"store {redact(self.config.dsn)} (database {self.config.schema.database})")
        parts.append(f"spool {self.pipeline.spool.directory}")
        return "spancost serve: " + ", ".join(parts)

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT, then shut down gracefully; the exit status (0: all durable)."""
        stopping = threading.Event()

        def handler(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            # A plain wait() would not wake for the signal handler on every platform; a timeout does.
            while not stopping.wait(1.0):
                pass
            logger.info("spancost serve: stopping; finishing requests and flushing the queue")
            return 0 if self.stop() else 1
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


def spool_dir(path: str | None) -> Path | None:
    return Path(path).expanduser().resolve() if path else None
