"""The OTLP receivers of `spancost serve`: OTLP/HTTP (uvicorn) and OTLP/gRPC (grpcio).

`Receivers(config, pipeline)` runs both (or the one configured) on one shared `Ingest`, so /metrics
counts what arrived over either::

    receivers = Receivers(ReceiverConfig.from_env(host="0.0.0.0"), pipeline)
    receivers.start()          # both listening when it returns; receivers.http.port, receivers.grpc.port
    ...
    receivers.stop(grace=10)   # stop accepting, finish requests in flight, then return
"""

from __future__ import annotations

from spancost.collector.config import ReceiverConfig
from spancost.collector.ingest import IngestPipeline
from spancost.collector.receivers.common import Ingest
from spancost.collector.receivers.grpc import GrpcReceiver
from spancost.collector.receivers.http import HttpReceiver, OtlpHttpApp

__all__ = ["ConfigError", "GrpcReceiver", "HttpReceiver", "Ingest", "OtlpHttpApp", "Receivers"]


class ConfigError(ValueError):
    """The receiver settings are invalid; the message lists every problem."""


class Receivers:
    """Both receivers of one server, sharing one `Ingest` (pricing stage and counters)."""

    def __init__(self, config: ReceiverConfig, pipeline: IngestPipeline) -> None:
        problems = config.validate()
        if problems:
            raise ConfigError("invalid receiver settings: " + "; ".join(problems))
        self.config = config
        self.ingest = Ingest(config, pipeline)
        self.http = (
            HttpReceiver(config, pipeline, ingest=self.ingest) if config.http_port is not None else None
        )
        self.grpc = (
            GrpcReceiver(config, pipeline, ingest=self.ingest) if config.grpc_port is not None else None
        )

    def start(self) -> None:
        """Start listening; if the second receiver cannot start, the first is stopped again."""
        started = []
        try:
            for receiver in (self.grpc, self.http):
                if receiver is not None:
                    receiver.start()
                    started.append(receiver)
        except BaseException:
            for receiver in started:
                receiver.stop(0)
            raise

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting on both, let requests in flight finish (up to `grace` s each), then return."""
        for receiver in (self.http, self.grpc):
            if receiver is not None:
                receiver.stop(grace)
