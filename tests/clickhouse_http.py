"""A ClickHouse server for the fault tests: chdb behind ClickHouse's HTTP interface, and a TCP proxy
in front of it that can refuse connections, stall them, or swallow the answers.

No ClickHouse server runs here, so `ChdbHttpServer` serves the part of the HTTP interface that
clickhouse-connect's HTTP client uses (`GET /ping`, `POST /` with the query in the body or the
`query` parameter, settings and `param_*` as URL parameters, Native bodies, lz4/zstd request
bodies) by running each statement in the test process's chdb. What it executes is real ClickHouse:
deduplication tokens, views and all. The pipeline under test talks to it through `FlakyProxy` with
the real HTTP client over real sockets, so a down store is a refused or reset connection, as it
would be in production.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

# URL parameters of the HTTP interface that are not query settings.
_TRANSPORT = {
    "query",
    "database",
    "query_id",
    "session_id",
    "session_timeout",
    "session_check",
    "compress",
    "decompress",
    "wait_end_of_query",
    "client_protocol_version",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "enable_http_compression",
    "default_format",
}
_INSERT = re.compile(r"^\s*INSERT INTO\s+(\S+)\s*\((.*)\)\s*FORMAT\s+(\w+)\s*$", re.IGNORECASE | re.DOTALL)
_CODE = re.compile(r"Code: (\d+)")


class ChdbHttpServer:
    """ClickHouse's HTTP interface over the chdb engine at `chdb_dir` (one statement at a time)."""

    def __init__(self, chdb_dir: Path) -> None:
        import clickhouse_connect

        self.client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_dir}")
        self.lock = threading.Lock()
        self.insert_tokens: Counter[str] = Counter()
        """How many inserts carrying each deduplication token ClickHouse executed (duplicates included)."""
        server = self

        class Handler(_Handler):
            backend = server

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def execute(self, params: dict[str, str], body: bytes, encoding: str | None) -> bytes:
        from clickhouse_connect.driver._backend.chdb_backend import _decompress

        settings = {k: v for k, v in params.items() if k not in _TRANSPORT and not k.startswith("param_")}
        bind = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        if encoding and body:
            body = _decompress(body, encoding)
        query = params.get("query")
        if query is None and body[:6].upper() == b"INSERT":
            # A data insert sends its statement as the first line of the body.
            first, _, body = body.partition(b"\n")
            query = first.decode()
        with self.lock:
            self.client.database = params.get("database") or "default"
            if query is not None and body:
                insert = _INSERT.match(query)
                if insert is None:
                    raise ValueError(f"the test server takes data only for INSERT ... FORMAT: {query[:80]}")
                table, columns, fmt = insert.groups()
                names = [name.strip().strip("`") for name in columns.split(",")]
                self.client.raw_insert(table, names, insert_block=body, settings=settings, fmt=fmt)
                token = settings.get("insert_deduplication_token")
                if token:
                    self.insert_tokens[token] += 1
                return b""
            sql = query if query is not None else body.decode()
            return self.client.raw_query(sql, parameters=bind or None, settings=settings or None)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.client.close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connections reset by the proxy are the point of the tests, not errors of the server.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    backend: ClassVar[ChdbHttpServer]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/ping"):
            self._answer(200, b"Ok.\n")
            return
        self._run(b"")

    def do_POST(self) -> None:
        self._run(self._body())

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _run(self, body: bytes) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        try:
            data = self.backend.execute(params, body, self.headers.get("Content-Encoding"))
        except Exception as err:
            message = str(err)
            code = _CODE.search(message)
            headers = {"X-ClickHouse-Exception-Code": code.group(1) if code else "1001"}
            self._answer(500, message.encode(), headers)
            return
        self._answer(200, data, {"X-ClickHouse-Timezone": "UTC", "X-ClickHouse-Format": "Native"})

    def _answer(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FlakyProxy:
    """A TCP proxy on 127.0.0.1 to `target_port` with four modes:

    - `up`: forwards both ways;
    - `down`: the port refuses connections and open ones are reset (the server is gone);
    - `stall`: connections are accepted and what they send is held, unanswered, until the mode
      changes (a server too slow to answer); then it is forwarded;
    - `lose_replies`: requests reach the server, which executes them, but every reply is dropped
      and the connection reset (the answer to a successful insert is lost).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "up"
        self._changed = threading.Condition()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.port = self._listen(0)

    def _listen(self, port: int) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener.getsockname()[1]

    def set_mode(self, mode: str) -> None:
        assert mode in ("up", "down", "stall", "lose_replies")
        with self._changed:
            previous, self.mode = self.mode, mode
            self._changed.notify_all()
        if mode == "down":
            listener, self._listener = self._listener, None
            if listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would leave the
                # port listening until that thread returns.
                with contextlib.suppress(OSError):
                    listener.shutdown(socket.SHUT_RDWR)
                listener.close()
            self._reset_all()
        elif previous == "down":
            self._listen(self.port)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._changed:
            while self.mode == "stall":
                self._changed.wait()
        try:
            server = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            _reset(client)
            return
        with self._lock:
            self._sockets.update((client, server))
        threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
        self._pump(server, client, True)

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                with self._changed:
                    while self.mode == "stall":
                        self._changed.wait()
                    mode = self.mode
                if mode == "down":
                    break
                if replies and mode == "lose_replies":
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                _reset(end)
                with self._lock:
                    self._sockets.discard(end)

    def _reset_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for end in sockets:
            _reset(end)

    def close(self) -> None:
        self.set_mode("down")


def _reset(sock: socket.socket) -> None:
    """Cut the connection. shutdown() first: it wakes a thread blocked in recv() on the socket, which
    close() alone would not, leaving the connection open."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextmanager
def clickhouse_behind_proxy(chdb_dir: Path) -> Iterator[tuple[ChdbHttpServer, FlakyProxy]]:
    server = ChdbHttpServer(chdb_dir)
    proxy = FlakyProxy(server.port)
    try:
        yield server, proxy
    finally:
        proxy.close()
        server.close()
