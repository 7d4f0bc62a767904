"""One door to the store: a DSN becomes a clickhouse-connect client, queries come back as `Results`.

`chdb:///path` (or `chdb://relative/path`) is ClickHouse embedded in this process through chdb;
`http(s)://user:password@host:8123/database` is a ClickHouse server or cluster. The database
defaults to `otel` (`chdb:///path?database=name` picks another). Only one process can open a chdb
directory at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from spancost.collector.schema import DEFAULT_DATABASE, SchemaConfig, apply_schema
from spancost.remote import RemoteError, RemoteQueries, ServeInfo

STORE_ENV = "SPANCOST_STORE"
DEFAULT_STORE_DIR = Path(".spancost") / "store"
_SETTINGS = {"session_timezone": "UTC"}


class StoreError(RuntimeError):
    """The store cannot be reached or a query failed; the message names the store (never its password)."""


def default_dsn() -> str:
    """`SPANCOST_STORE`, else an embedded store in `.spancost/store` under the working folder."""
    return os.environ.get(STORE_ENV) or f"chdb://{(Path.cwd() / DEFAULT_STORE_DIR).resolve()}"


def redact(dsn: str) -> str:
    """The DSN with its password replaced, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def chdb_path(dsn: str) -> Path | None:
    """The directory of an embedded store's DSN, or None for a server DSN."""
    if not dsn.startswith("chdb:"):
        return None
    rest = re.sub(r"^chdb:(//)?", "", dsn).split("?", 1)[0]
    return Path(rest).expanduser().resolve()


@dataclass(frozen=True)
class Results:
    """Rows of one query with their column names."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def single_value(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def open_client(dsn: str) -> Any:
    """A clickhouse-connect client for `dsn`, connected without a database (the schema step may have
    to create it), without touching the schema."""
    try:
        import clickhouse_connect
    except ImportError as err:
        raise StoreError("the store needs clickhouse-connect: pip install 'spancost[collector]'") from err
    path = chdb_path(dsn)
    try:
        if path is not None:
            try:
                import chdb  # noqa: F401 - checked here to give the install hint
            except ImportError as err:
                raise StoreError(
                    "an embedded (chdb://) store needs chdb: pip install 'spancost[embedded]'"
                ) from err
            path.mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(dsn=f"chdb://{path}", settings=_SETTINGS)
        return clickhouse_connect.get_client(dsn=without_database(dsn), settings=_SETTINGS)
    except StoreError:
        raise
    except Exception as err:
        hint = ""
        if path is not None and "lock" in str(err).lower():
            hint = " (another process, such as a running `spancost serve`, has this embedded store open)"
        raise StoreError(f"cannot open the store {redact(dsn)}: {err}{hint}") from err


class Store:
    """A connected store with spancost's schema in place."""

    def __init__(
        self,
        dsn: str | None = None,
        *,
        config: SchemaConfig | None = None,
        create: bool = True,
        client: Any = None,
    ) -> None:
        """`client`: a clickhouse-connect client already open on `dsn` (one opened with options the
        DSN cannot carry, such as a chdb configuration file), used instead of opening one."""
        self.dsn = dsn or default_dsn()
        self.config = config or SchemaConfig(database=dsn_database(self.dsn) or DEFAULT_DATABASE)
        # An embedded store held by a running `spancost serve` is read through the server: asked
        # first, because chdb prints its lock refusal on stderr before failing.
        self._remote: RemoteQueries | None = None if client is not None else _running_server(self.dsn)
        if self._remote is not None:
            return
        self.client = client if client is not None else open_client(self.dsn)
        if create:
            try:
                apply_schema(self.client, self.config)
            except Exception as err:
                self.client.close()
                raise StoreError(f"cannot set up the schema in {redact(self.dsn)}: {err}") from err
        self.client.database = self.config.database

    @property
    def database(self) -> str:
        return self.config.database

    @property
    def remote(self) -> bool:
        """Whether queries go through a running server that holds this embedded store."""
        return self._remote is not None

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Results:
        if self._remote is not None:
            try:
                columns, rows = self._remote.query(sql, parameters)
            except RemoteError as err:
                raise StoreError(f"query failed on {redact(self.dsn)}: {err}\n{sql}") from err
            return Results(columns, rows)
        try:
            result = self.client.query(sql, parameters=parameters)
        except Exception as err:
            raise StoreError(f"query failed on {redact(self.dsn)}: {err}\n{sql}") from err
        return Results(tuple(result.column_names), list(result.result_rows))

    def view_select(self, view: str) -> str:
        """The SELECT of one of the schema's materialized views, as the store holds it: the one query
        that fills its table, for whatever must fill it again (a re-price) or ask it of raw spans."""
        select = self.query(
            "SELECT as_select FROM system.tables WHERE database = {db:String} AND name = {view:String}",
            {"db": self.database, "view": view},
        ).single_value()
        if not select:
            raise StoreError(
                f"{redact(self.dsn)} has no {view}; open it with spancost once to create the schema"
            )
        return str(select)

    def require_local(self, what: str) -> None:
        """Refuse `what` (a command that writes) while a running server holds this embedded store."""
        if self._remote is not None:
            raise StoreError(
                f"{what} needs the store to itself, and {redact(self.dsn)} is held by the spancost serve at "
                f"{self._remote.info.url} (pid {self._remote.info.pid}); stop it first"
            )

    def command(
        self, sql: str, parameters: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None
    ) -> None:
        self.require_local("this command")
        try:
            self.client.command(sql, parameters=parameters, settings=settings)
        except Exception as err:
            raise StoreError(f"command failed on {redact(self.dsn)}: {err}\n{sql}") from err

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        self.require_local("writing")
        try:
            self.client.insert(table, rows, column_names=list(columns), database=self.database)
        except Exception as err:
            raise StoreError(f"insert into {table} failed on {redact(self.dsn)}: {err}") from err

    def close(self) -> None:
        if self._remote is None:
            self.client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _running_server(dsn: str) -> RemoteQueries | None:
    """The server holding the embedded store of `dsn`, if one runs (its pid alive, its file present)."""
    path = chdb_path(dsn)
    info = ServeInfo.read(path) if path is not None else None
    if info is None:
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None  # a file left behind by a server that died
    except PermissionError:
        pass  # alive, under another user
    return RemoteQueries(info)


def without_database(dsn: str) -> str:
    if dsn.startswith("chdb:"):
        return dsn.split("?", 1)[0]
    return urlunsplit(urlsplit(dsn)._replace(path=""))


def dsn_database(dsn: str) -> str | None:
    """The database a DSN names: `http://host:8123/otel`, or `chdb:///path?database=otel`."""
    if dsn.startswith("chdb:"):
        query = dsn.split("?", 1)[1] if "?" in dsn else ""
        return parse_qs(query).get("database", [None])[0]
    path = urlsplit(dsn).path.strip("/")
    return path or None
