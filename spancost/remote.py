"""Read queries through a running `spancost serve` that holds an embedded store.

Only one process can open a chdb directory. While `spancost serve` owns one, it writes a small
file into the directory naming its HTTP address; the read commands (`spancost report`, ...) given
the same store find the file when the lock refuses them and send their queries to the server's
`POST /query`, which runs them read-only. Results travel as JSON with their column types, so a
Decimal stays a Decimal and a Date a date on the other side.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

SERVE_FILE = ".spancost-serve.json"
QUERY_PATH = "/query"


@dataclass(frozen=True)
class ServeInfo:
    """What a running server writes into the embedded store it holds."""

    url: str
    pid: int
    token: str | None = None

    def write(self, store_dir: Path) -> Path:
        path = store_dir / SERVE_FILE
        temporary = path.with_suffix(".tmp")
        # The token lets local read commands through an authenticated server: owner-readable only.
        temporary.write_text(json.dumps({"url": self.url, "pid": self.pid, "token": self.token}))
        os.chmod(temporary, 0o600)
        temporary.replace(path)
        return path

    @classmethod
    def read(cls, store_dir: Path) -> ServeInfo | None:
        try:
            raw = json.loads((store_dir / SERVE_FILE).read_text())
            return cls(url=str(raw["url"]), pid=int(raw["pid"]), token=raw.get("token"))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _parameter(value: Any) -> Any:
    """A query parameter as the server's client will bind it: a time as UTC without an offset, the
    text ClickHouse parses as DateTime/DateTime64 (it refuses ISO's `T` and `+00:00`)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, (list, tuple)):
        return [_parameter(v) for v in value]
    return _plain(value)


def encode_result(columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """The server's answer to a query: columns, their ClickHouse types, and JSON-safe rows."""
    return json.dumps(
        {"columns": list(columns), "types": list(types), "rows": [[_plain(v) for v in row] for row in rows]}
    ).encode()


def _decoder(clickhouse_type: str) -> Any:
    base = clickhouse_type
    for wrapper in ("LowCardinality(", "Nullable("):
        if base.startswith(wrapper):
            base = base[len(wrapper) : -1]
    if base.startswith("Decimal"):
        return lambda v: None if v is None else Decimal(v)
    if base.startswith("DateTime"):
        return lambda v: None if v is None else dt.datetime.fromisoformat(v)
    if base.startswith("Date"):
        return lambda v: None if v is None else dt.date.fromisoformat(v)
    if base.startswith("Tuple"):
        return lambda v: None if v is None else tuple(v)
    return lambda v: v


def decode_result(body: bytes) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    payload = json.loads(body)
    decoders = [_decoder(t) for t in payload["types"]]
    rows = [tuple(decode(v) for decode, v in zip(decoders, row, strict=True)) for row in payload["rows"]]
    return tuple(payload["columns"]), rows


class RemoteQueries:
    """Queries sent to a running server's `POST /query`."""

    def __init__(self, info: ServeInfo, timeout: float = 120.0) -> None:
        self.info = info
        self.timeout = timeout

    def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> tuple[tuple[str, ...], list[Any]]:
        body = json.dumps(
            {"sql": sql, "parameters": {k: _parameter(v) for k, v in (parameters or {}).items()}}
        ).encode()
        request = urllib.request.Request(
            self.info.url.rstrip("/") + QUERY_PATH,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        if self.info.token:
            request.add_header("Authorization", f"Bearer {self.info.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return decode_result(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:2000]
            raise RemoteError(
                f"the server at {self.info.url} refused the query (HTTP {err.code}): {detail}"
            ) from err
        except (urllib.error.URLError, OSError) as err:
            raise RemoteError(f"the server at {self.info.url} did not answer: {err}") from err


class RemoteError(RuntimeError):
    """A query through a running server failed."""
