"""OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export` with grpcio.

The method is registered with no request deserializer: the handler gets the message bytes and parses
them with the loose schema (`collector.otlp`), so a non-UTF-8 string does not fail the call. gzip is
grpcio's (on by default); the message size limit is `max_body_bytes`. Answers follow the OTLP
specification: INVALID_ARGUMENT for undecodable input, UNAUTHENTICATED without the bearer token,
RESOURCE_EXHAUSTED / UNAVAILABLE with a RetryInfo when the pipeline sheds load, `partial_success` in
the response when spans were rejected.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from spancost._log import log_once
from spancost.collector.config import ReceiverConfig
from spancost.collector.ingest import IngestPipeline, Overloaded, Unavailable
from spancost.collector.otlp import DecodeError, parse_protobuf
from spancost.collector.receivers.bodies import export_response
from spancost.collector.receivers.common import Ingest, bearer_matches

logger = logging.getLogger("spancost.collector")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class GrpcReceiver:
    """The OTLP/gRPC receiver on `config.host:config.grpc_port`.

    `start()` returns once the port is listening (`port` then holds it, also for port 0); `stop(grace)`
    refuses new calls and lets calls in flight finish for up to `grace` seconds.
    """

    def __init__(
        self, config: ReceiverConfig, pipeline: IngestPipeline, *, ingest: Ingest | None = None
    ) -> None:
        self.config = config
        self.ingest = ingest or Ingest(config, pipeline)
        self.port: int | None = None
        self._server: grpc.Server | None = None

    def start(self) -> None:
        config = self.config
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=config.grpc_workers, thread_name_prefix="spancost-otlp-grpc"
            ),
            options=[
                ("grpc.max_receive_message_length", config.max_body_bytes),
                ("grpc.max_send_message_length", 4 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
            # Calls beyond this are refused with RESOURCE_EXHAUSTED: memory stays bounded under overload.
            maximum_concurrent_rpcs=config.max_concurrent_requests,
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self._export, request_deserializer=None, response_serializer=_serialize
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        address = f"[{config.host}]" if ":" in config.host else config.host
        try:
            self.port = server.add_insecure_port(f"{address}:{config.grpc_port or 0}")
        except RuntimeError as err:
            raise RuntimeError(f"listen for OTLP/gRPC on {config.host}:{config.grpc_port}: {err}") from err
        server.start()
        self._server = server

    def stop(self, grace: float = 10.0) -> None:
        if self._server is not None:
            self._server.stop(grace).wait(grace + 5.0)
            self._server = None

    def _export(self, body: bytes, context: grpc.ServicerContext) -> Any:
        config = self.config
        if config.auth_token is not None:
            metadata = dict(context.invocation_metadata())
            if not bearer_matches(metadata.get("authorization"), config.auth_token):
                self._abort(context, grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")
        if not self.ingest.pipeline.has_room():
            self._abort(
                context, grpc.StatusCode.RESOURCE_EXHAUSTED, "the ingest queue is full", config.retry_after_s
            )
        try:
            converted = self.ingest.convert(parse_protobuf(body), "grpc")
        except DecodeError as err:
            self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except Exception as err:
            logger.exception("spancost: converting an OTLP/gRPC request failed")
            self._abort(
                context, grpc.StatusCode.INTERNAL, f"the collector could not convert the request: {err}"
            )
        if converted.rows:
            remaining = context.time_remaining()
            timeout = (
                config.submit_timeout_s if remaining is None else min(config.submit_timeout_s, remaining)
            )
            try:
                self.ingest.pipeline.submit(converted.rows, timeout=max(timeout, 0.0))
            except Overloaded as err:
                self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(err), err.retry_after_s)
            except Unavailable as err:
                self._abort(context, grpc.StatusCode.UNAVAILABLE, str(err), err.retry_after_s)
            except Exception as err:
                log_once(logger, "grpc.submit", "spancost: the pipeline failed a request", exc_info=True)
                self._abort(
                    context, grpc.StatusCode.UNAVAILABLE, f"the pipeline failed: {err}", config.retry_after_s
                )
        self.ingest.count_request("grpc", grpc.StatusCode.OK.name)
        return export_response(converted.rejected, converted.error_message)

    def _abort(
        self,
        context: grpc.ServicerContext,
        code: grpc.StatusCode,
        message: str,
        retry_after_s: float | None = None,
    ) -> NoReturn:
        self.ingest.count_request("grpc", code.name)
        if retry_after_s is not None:
            context.set_trailing_metadata(_retry_metadata(code, message, retry_after_s))
        context.abort(code, message)
        raise AssertionError("unreachable: grpc's abort raises")


def _serialize(response: Any) -> bytes:
    return response.SerializeToString()


def _retry_metadata(code: grpc.StatusCode, message: str, seconds: float) -> tuple[tuple[str, bytes], ...]:
    """RetryInfo twice: in the standard `grpc-status-details-bin` (a google.rpc.Status, which Go and Java
    clients read) and as `google.rpc.retryinfo-bin`, the key the Python OTLP exporter reads."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(max(seconds, 0.0) * 1e9))
    retry = error_details_pb2.RetryInfo(retry_delay=delay)
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", retry.SerializeToString()),
    )
