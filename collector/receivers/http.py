"""OTLP/HTTP: `POST /v1/traces` (protobuf or JSON, gzip or not), `GET /health`, `GET /metrics`, and
`POST /query` when the server holds an embedded store (see `spancost.remote`).

A plain ASGI callable served by uvicorn (with httptools), on a thread of its own so that a server can
run it next to the gRPC receiver. Answers follow the OTLP specification: 200 with an
`ExportTraceServiceResponse` in the request's encoding (`partial_success` when spans were rejected);
400 for a body that cannot be decoded, 401 without the bearer token, 413 over the size limit, 415 for
another content type or encoding, 429/503 with `Retry-After` when the pipeline sheds load; error
bodies are a `google.rpc.Status` in the request's encoding.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn
from google.rpc import code_pb2, status_pb2

from spancost._log import log_once
from spancost.collector.config import ReceiverConfig
from spancost.collector.ingest import IngestPipeline, Overloaded, Unavailable
from spancost.collector.otlp import DecodeError
from spancost.collector.receivers.bodies import (
    CONTENT_TYPES,
    JSON,
    PROTOBUF,
    TooLarge,
    UnsupportedEncoding,
    decode,
    decompress,
    encode,
    export_response,
)
from spancost.collector.receivers.common import Ingest, bearer_matches, retry_after_header
from spancost.remote import QUERY_PATH

logger = logging.getLogger("spancost.collector")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
# Runs one read-only statement with its parameters; answers the encoded result (spancost.remote).
QueryRunner = Callable[[str, dict[str, Any]], bytes]

_GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    500: code_pb2.INTERNAL,
    503: code_pb2.UNAVAILABLE,
}


class _Refused(Exception):
    """Answer the request with this status, message and extra headers."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []


class OtlpHttpApp:
    """The ASGI application. `ingest` does the decoding work and holds the pipeline and counters."""

    def __init__(self, ingest: Ingest, query: QueryRunner | None = None) -> None:
        self.ingest = ingest
        self.config = ingest.config
        self.query = query
        self._inflight = 0
        # Decoding is CPU work: off the event loop (so /health answers during a large body), on
        # threads of its own (so that requests waiting on the pipeline cannot starve it).
        self._decoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="spancost-otlp-decode")
        # Reports can take seconds: one thread of their own, so they never hold up span decoding.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spancost-query")

    def close(self) -> None:
        self._decoder.shutdown(wait=False)
        self._reader.shutdown(wait=False)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/v1/traces":
            if method != "POST":
                await _plain(send, 405, "use POST", [(b"allow", b"POST")])
            else:
                await self._export(scope, receive, send)
        elif path == QUERY_PATH:
            if method != "POST":
                await _plain(send, 405, "use POST", [(b"allow", b"POST")])
            else:
                await self._query(scope, receive, send)
        elif path in ("/health", "/metrics"):
            if method not in ("GET", "HEAD"):
                await _plain(send, 405, "use GET", [(b"allow", b"GET, HEAD")])
            elif path == "/health":
                healthy = self.ingest.healthy()
                body = json.dumps({"status": "ok" if healthy else "unavailable", "pipeline": healthy})
                await _respond(send, 200 if healthy else 503, b"application/json", body.encode())
            else:
                text = self.ingest.metrics().encode()
                await _respond(send, 200, b"text/plain; version=0.0.4; charset=utf-8", text)
        else:
            await _plain(send, 404, f"no such path {path!r}: OTLP traces go to POST /v1/traces")

    async def _query(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        try:
            if self.query is None:
                raise _Refused(404, "this server holds no embedded store, so it answers no queries")
            if not bearer_matches(headers.get("authorization"), self.config.auth_token):
                raise _Refused(
                    401,
                    "a valid bearer token is required",
                    [(b"www-authenticate", b'Bearer realm="spancost"')],
                )
            body = await _read_body(receive, headers.get("content-length"), self.config.max_body_bytes)
            sql, parameters = _query_request(body)
            loop = asyncio.get_running_loop()
            try:
                answer = await loop.run_in_executor(self._reader, self.query, sql, parameters)
            except Exception as err:
                # The store's own message (syntax, readonly refusal, unknown table) is the useful part.
                raise _Refused(400, f"the query failed: {err}") from None
        except _Refused as refused:
            await _plain(send, refused.status, str(refused), refused.headers)
            return
        await _respond(send, 200, b"application/json", answer)

    async def _export(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        content_type = CONTENT_TYPES.get(media, PROTOBUF)
        try:
            code, rejected, message = await self._accept(headers, media, content_type, receive)
        except _Refused as refused:
            self.ingest.count_request("http", str(refused.status))
            status = status_pb2.Status(
                code=_GRPC_CODES.get(refused.status, code_pb2.UNKNOWN), message=str(refused)
            )
            await _respond(
                send, refused.status, content_type.encode(), encode(status, content_type), refused.headers
            )
            return
        self.ingest.count_request("http", str(code))
        body = encode(export_response(rejected, message), content_type)
        await _respond(send, code, content_type.encode(), body)

    async def _accept(
        self, headers: dict[str, str], media: str, content_type: str, receive: Receive
    ) -> tuple[int, int, str]:
        config = self.config
        if not bearer_matches(headers.get("authorization"), config.auth_token):
            raise _Refused(
                401, "a valid bearer token is required", [(b"www-authenticate", b'Bearer realm="spancost"')]
            )
        if media not in CONTENT_TYPES:
            raise _Refused(415, f"Content-Type {media or 'none'!r}: send {PROTOBUF} or {JSON}")
        encoding = headers.get("content-encoding")
        if (encoding or "").strip().lower() not in ("", "identity", "gzip"):
            raise _Refused(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none")
        if self._inflight >= config.max_concurrent_requests:
            retry = retry_after_header(config.retry_after_s)
            raise _Refused(503, "too many requests in progress", [(b"retry-after", retry.encode())])
        if not self.ingest.pipeline.has_room():
            raise _Refused(429, "the ingest queue is full", _retry(config.retry_after_s))
        self._inflight += 1
        try:
            body = await _read_body(receive, headers.get("content-length"), config.max_body_bytes)
            loop = asyncio.get_running_loop()
            converted = await loop.run_in_executor(self._decoder, self._convert, body, encoding, content_type)
            if converted.rows:
                await self._submit(converted.rows)
        finally:
            self._inflight -= 1
        return 200, converted.rejected, converted.error_message

    def _convert(self, body: bytes, encoding: str | None, content_type: str) -> Any:
        try:
            request = decode(decompress(body, encoding, self.config.max_body_bytes), content_type)
            return self.ingest.convert(request, "http")
        except DecodeError as err:
            raise _Refused(400, str(err)) from None
        except TooLarge as err:
            raise _Refused(413, str(err)) from None
        except UnsupportedEncoding as err:
            raise _Refused(415, str(err)) from None
        except Exception as err:
            logger.exception("spancost: converting an OTLP/HTTP request failed")
            raise _Refused(500, f"the collector could not convert the request: {err}") from None

    async def _submit(self, rows: list[list[Any]]) -> None:
        try:
            await self.ingest.pipeline.submit_async(rows, timeout=self.config.submit_timeout_s)
        except Overloaded as err:
            raise _Refused(429, str(err), _retry(err.retry_after_s)) from None
        except Unavailable as err:
            raise _Refused(503, str(err), _retry(err.retry_after_s)) from None
        except Exception as err:
            # The spans are not stored: a retry may succeed once whatever failed recovers.
            log_once(logger, "http.submit", "spancost: the pipeline failed a request", exc_info=True)
            raise _Refused(503, f"the pipeline failed: {err}", _retry(self.config.retry_after_s)) from None


def _query_request(body: bytes) -> tuple[str, dict[str, Any]]:
    try:
        payload = json.loads(body)
    except ValueError as err:
        raise _Refused(400, f"the query body is not JSON: {err}") from None
    sql = payload.get("sql") if isinstance(payload, dict) else None
    parameters = payload.get("parameters", {}) if isinstance(payload, dict) else None
    if not isinstance(sql, str) or not sql.strip():
        raise _Refused(400, 'the query body needs "sql", a non-empty string')
    if not isinstance(parameters, dict):
        raise _Refused(400, '"parameters" must be an object of name to value')
    return sql, parameters


def _retry(seconds: float) -> list[tuple[bytes, bytes]]:
    return [(b"retry-after", retry_after_header(seconds).encode())]


async def _read_body(receive: Receive, length: str | None, limit: int) -> bytes:
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise _Refused(413, f"the body is {int(length)} bytes, over the {limit}-byte limit")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Refused(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"the body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    head = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _plain(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _respond(send, status, b"text/plain; charset=utf-8", text.encode(), headers)


class HttpReceiver:
    """The OTLP/HTTP receiver on `config.host:config.http_port`, served on a thread by uvicorn.

    `start()` returns once the port is listening (`port` then holds it, also for port 0); `stop(grace)`
    stops accepting, lets requests in flight finish for up to `grace` seconds, then returns.
    """

    def __init__(
        self, config: ReceiverConfig, pipeline: IngestPipeline, *, ingest: Ingest | None = None
    ) -> None:
        self.config = config
        self.ingest = ingest or Ingest(config, pipeline)
        self.query: QueryRunner | None = None
        self.app = OtlpHttpApp(self.ingest)
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.app = OtlpHttpApp(self.ingest, self.query)  # fresh (and its threads) for every start
        sock = _listening_socket(self.config.host, self.config.http_port or 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http="httptools",
            loop="asyncio",
            lifespan="off",
            log_config=None,  # leave the application's logging alone
            access_log=False,
            server_header=False,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="spancost-otlp-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(
                    f"start the OTLP/HTTP receiver on {self.config.host}:{self.port}: it did not start"
                )
            time.sleep(0.01)

    def stop(self, grace: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.config.timeout_graceful_shutdown = max(grace, 0.1)
        self._server.should_exit = True
        self._thread.join(grace + 5.0)
        self.app.close()
        self._server = self._thread = None


def _listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket (uvicorn listens on it), so that port 0 yields a known port before start returns."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        raise RuntimeError(f"listen for OTLP/HTTP on {host}:{port}: {err}") from err
    return sock
