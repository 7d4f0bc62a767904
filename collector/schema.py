"""The store's schema: DDL templates rendered for a configuration, applied idempotently.

Each statement is its own file in `sql/`. Templates take identifiers and clauses only (database,
`ON CLUSTER`, engine, TTL), each made by one small helper here; no value is ever spliced into SQL.
`apply_schema` is a start-up step: CREATE ... IF NOT EXISTS throughout, then the schema version is
recorded, so running it again changes nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import spancost

logger = logging.getLogger("spancost.collector")

SCHEMA_VERSION = 6
"""Bump with every change to the DDL below, and add the migration that takes a store there."""

MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("llm_calls_mv_drop",),
    3: (
        "traces_dedup_window_alter",
        "traces_trace_id_ts_dedup_window_alter",
        "llm_calls_dedup_window_alter",
        "llm_daily_dedup_window_alter",
    ),
    4: (),  # agent_runs and its view: new, made by the CREATE statements
    5: (),  # llm_calls and agent_runs by day: their rows move, see _repartition_by_day
    6: (),  # computed columns and codecs on llm_calls and agent_runs: see _computed_columns_and_codecs
}
"""Statements (template names) that take a store from the version before to this one; they run
before the CREATE ... IF NOT EXISTS statements, which then recreate what they dropped (so an ALTER
here may only touch a table that every earlier version created)."""

READ_CODEC = "CODEC(LZ4)"
"""The codec of the llm_calls and agent_runs columns a panel reads for every call in its range besides
the numbers (Timestamp, UserId): LZ4 decompresses several times faster than ZSTD, which at ten million
calls was a fifth of a panel's time (and barely shrinks nanosecond timestamps)."""
READ_CODEC_COLUMNS = ("Timestamp", "UserId")

TRACE_KEY_COLUMN = "TraceKey UInt128 MATERIALIZED reinterpretAsUInt128(unhex(TraceId))"
"""The trace id as the 128-bit number it is, beside its 32 hex digits, on llm_calls and agent_runs.

Finding a run's calls means testing every call in the range against the runs' trace ids and grouping
by trace: on a 16-byte integer that costs about half what it does on the 32-character string. The
two are one to one (OTLP trace ids are 16 bytes, stored as 32 hex digits), so grouping by the key is
grouping by the trace; queries show TraceId. MATERIALIZED: computed on every insert, whoever writes."""

PROVIDER_MODEL_SEPARATOR = r"\x1f"
"""Between provider and model in ProviderModel (ASCII's unit separator, in SQL's escape): no name has it."""
PROVIDER_MODEL_COLUMN = (
    f"ProviderModel LowCardinality(String) MATERIALIZED concat(Provider, '{PROVIDER_MODEL_SEPARATOR}', Model)"
)
"""Provider and model as one LowCardinality value on llm_calls: grouping ten million calls by one such
column takes about half the time of grouping by the two (spend by model)."""

COMPUTED_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "llm_calls": (
        ("TraceKey", TRACE_KEY_COLUMN, "TraceId"),
        ("ProviderModel", PROVIDER_MODEL_COLUMN, "Model"),
    ),
    "agent_runs": (("TraceKey", TRACE_KEY_COLUMN, "TraceId"),),
}
"""Schema 6's computed columns of each table: (name, definition, the column it follows)."""

DEDUP_WINDOW_BLOCKS = 10_000
"""How many recently inserted blocks each MergeTree table remembers (by deduplication token) to drop
a block inserted again: a batch replayed from the collector's spool after ClickHouse took it but
before the spool knew. The collector replays such a batch within a few blocks of the first attempt;
at 5 batches a second this window is half an hour."""

DEFAULT_DATABASE = "otel"
"""The upstream collector exporter's default database, so both can share one store."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SchemaError(RuntimeError):
    """The store's schema cannot be used by this version of spancost."""


@dataclass(frozen=True)
class SchemaConfig:
    """How the tables are created."""

    database: str = DEFAULT_DATABASE
    """Database holding otel_traces and spancost's tables."""
    cluster: str | None = None
    """Cluster name: tables are created ON CLUSTER with Replicated engines. Default: a single server."""
    ttl_days: int = 0
    """Drop data older than this many days (0: keep everything)."""

    def validate(self) -> list[str]:
        problems = []
        if not _IDENTIFIER.match(self.database):
            problems.append(f"database {self.database!r}: use letters, digits and underscores")
        if self.cluster is not None and not _IDENTIFIER.match(self.cluster):
            problems.append(f"cluster {self.cluster!r}: use letters, digits and underscores")
        if self.ttl_days < 0:
            problems.append(f"ttl_days {self.ttl_days}: must be 0 (no TTL) or more")
        return problems


def _sql(name: str) -> str:
    return (resources.files("spancost.collector") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def on_cluster(config: SchemaConfig) -> str:
    return f"ON CLUSTER `{config.cluster}`" if config.cluster else ""


def storage_table(config: SchemaConfig, table: str) -> str:
    """Where `table`'s rows live: the table itself on one server; on a cluster, `{table}_local` on each
    shard, behind a Distributed table that keeps the public name."""
    return f"{table}_local" if config.cluster else table


def engine(config: SchemaConfig, family: str, table: str) -> str:
    """`MergeTree()`-family engine, replicated when a cluster is configured."""
    if not config.cluster:
        return f"{family}()"
    path = f"'/clickhouse/tables/{{shard}}/{config.database}/{table}'"
    return f"Replicated{family}({path}, '{{replica}}')"


def dedup_window(config: SchemaConfig) -> str:
    """The table setting that keeps the last `DEDUP_WINDOW_BLOCKS` block ids. Non-replicated MergeTree
    keeps none by default; every table a view writes needs its own, since each view's block is
    deduplicated in its target table."""
    name = "replicated_deduplication_window" if config.cluster else "non_replicated_deduplication_window"
    return f"{name} = {DEDUP_WINDOW_BLOCKS}"


def ttl(config: SchemaConfig, time_expression: str) -> str:
    return f"TTL {time_expression} + toIntervalDay({config.ttl_days})" if config.ttl_days else ""


DISTRIBUTED_TABLES: dict[str, str] = {
    "spancost_schema": "rand()",
    "otel_traces": "cityHash64(TraceId)",
    "otel_traces_trace_id_ts": "cityHash64(TraceId)",
    "llm_calls": "cityHash64(TraceId)",
    "llm_daily": "rand()",
    "agent_runs": "cityHash64(TraceId)",
}
"""The tables a cluster serves through Distributed tables, with their sharding keys. Sharding by trace
keeps a trace on one shard, and with it any copy of a span: `llm_calls FINAL`, which merges copies
shard by shard, then counts each span once."""

# (template, table, engine family, TTL time expression or None), in the order they must be created.
_STATEMENTS: tuple[tuple[str, str | None, str | None, str | None], ...] = (
    ("database", None, None, None),
    ("schema_version_table", "spancost_schema", "ReplacingMergeTree", None),
    ("traces_table", "otel_traces", "MergeTree", "toDateTime(Timestamp)"),
    ("traces_trace_id_ts_table", "otel_traces_trace_id_ts", "AggregatingMergeTree", "toDateTime(Start)"),
    ("traces_trace_id_ts_mv", None, None, None),
    ("llm_calls_table", "llm_calls", "ReplacingMergeTree", "toDateTime(Timestamp)"),
    ("llm_daily_table", "llm_daily", "SummingMergeTree", "Date"),
    ("llm_calls_mv", None, None, None),
    ("llm_daily_mv", None, None, None),
    ("agent_runs_table", "agent_runs", "ReplacingMergeTree", "toDateTime(Timestamp)"),
    ("agent_runs_mv", None, None, None),
)


def render_statements(config: SchemaConfig, upgrade_from: int | None = None) -> list[tuple[str, str]]:
    """Every DDL statement for `config`, in order, each with the name of its template file; with
    `upgrade_from`, first the migrations from that version."""
    problems = config.validate()
    if problems:
        raise SchemaError("invalid schema configuration: " + "; ".join(problems))
    migrations: list[tuple[str, str | None, str | None, str | None]] = []
    if upgrade_from:
        for version in range(upgrade_from + 1, SCHEMA_VERSION + 1):
            migrations.extend((template, None, None, None) for template in MIGRATIONS.get(version, ()))
    statements = [
        (f"{template}.sql", _render(config, template, table, family, time_expression))
        for template, table, family, time_expression in [*migrations, *_STATEMENTS]
    ]
    tables = {table: storage_table(config, table) for table in DISTRIBUTED_TABLES}
    if config.cluster:
        for table, key in DISTRIBUTED_TABLES.items():
            values = {
                "database": f"`{config.database}`",
                "on_cluster": on_cluster(config),
                "table": table,
                "local": tables[table],
                "engine": f"Distributed('{config.cluster}', '{config.database}', '{tables[table]}', {key})",
            }
            statements.append(("distributed_table.sql", _sql("distributed_table").format_map(values).strip()))
    return statements


def _render(
    config: SchemaConfig,
    template: str,
    table: str | None,
    family: str | None,
    time_expression: str | None,
    renamed: dict[str, str] | None = None,
) -> str:
    """One statement; `renamed` puts other names in place of the schema's table names."""
    values = {
        **{name: storage_table(config, name) for name in DISTRIBUTED_TABLES},
        **(renamed or {}),
        "database": f"`{config.database}`",
        "on_cluster": on_cluster(config),
        "engine": engine(config, family, storage_table(config, table)) if family and table else "",
        "ttl": ttl(config, time_expression) if time_expression else "",
        "dedup_window": dedup_window(config),
        "trace_key": TRACE_KEY_COLUMN,
        "provider_model": PROVIDER_MODEL_COLUMN,
        "read_codec": READ_CODEC,
    }
    return _sql(template).format_map(values).strip()


def render_schema(config: SchemaConfig) -> str:
    """The whole DDL for `config` as one script, for teams that create their schema themselves."""
    return "".join(f"-- {name}\n{sql};\n\n" for name, sql in render_statements(config))


def current_version(client: Any, config: SchemaConfig) -> int:
    """The schema version the store has (0 for a store spancost has not set up)."""
    if not _table_exists(client, config, "spancost_schema"):
        return 0
    rows = client.query(f"SELECT max(Version) FROM `{config.database}`.spancost_schema").result_rows
    return int(rows[0][0] or 0)


def _table_exists(client: Any, config: SchemaConfig, name: str) -> bool:
    return bool(
        client.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {table:String}",
            parameters={"db": config.database, "table": name},
        ).result_rows[0][0]
    )


def apply_schema(client: Any, config: SchemaConfig = SchemaConfig()) -> int:
    """Create whatever is missing and record the schema version; returns the version now in the store.

    A store whose schema is newer than this spancost is refused rather than written with old DDL.
    """
    found = current_version(client, config)
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"the store's schema is version {found}, newer than this spancost's ({SCHEMA_VERSION}); "
            "upgrade spancost"
        )
    if config.cluster and found:
        _check_cluster_layout(client, config)
    if 0 < found < BY_DAY_SINCE:
        _repartition_by_day(client, config)
    if 0 < found < COMPUTED_COLUMNS_SINCE:
        _computed_columns_and_codecs(client, config)
    for name, statement in render_statements(config, upgrade_from=found or None):
        try:
            client.command(statement)
        except Exception as err:
            raise SchemaError(f"creating the schema failed at {name}: {err}") from err
    if found < SCHEMA_VERSION:
        client.insert(
            "spancost_schema",
            [[SCHEMA_VERSION, f"spancost {spancost.__version__}"]],
            column_names=["Version", "AppliedBy"],
            database=config.database,
            # on a cluster the row goes through a Distributed table: wait until a shard has it
            settings={"distributed_foreground_insert": 1} if config.cluster else None,
        )
    return SCHEMA_VERSION


def _check_cluster_layout(client: Any, config: SchemaConfig) -> None:
    """A store first created for one server (tables under their public names, no `_local` tables)
    cannot be turned into a sharded one by DDL: its data would have to move."""
    engine_name = client.query(
        "SELECT engine FROM system.tables WHERE database = {db:String} AND name = 'otel_traces'",
        parameters={"db": config.database},
    ).result_rows
    if engine_name and engine_name[0][0] != "Distributed":
        raise SchemaError(
            f"`{config.database}`.otel_traces is a {engine_name[0][0]} table, not the Distributed table "
            f"that --cluster {config.cluster} expects: this store was created without --cluster. Create "
            "the clustered schema in a new database (…/DATABASE in the DSN) and move the data with "
            "INSERT ... SELECT, or serve it without --cluster"
        )


COMPUTED_COLUMNS_SINCE = 6
"""The schema version from which llm_calls and agent_runs carry COMPUTED_COLUMNS and READ_CODEC."""


def _computed_columns_and_codecs(client: Any, config: SchemaConfig) -> None:
    """Schema 6 adds COMPUTED_COLUMNS to llm_calls and agent_runs where they exist (a table that does
    not is created with them), and gives READ_CODEC_COLUMNS their codec. New rows get both on insert;
    rows already stored compute the columns when read until ClickHouse rewrites their parts in the
    background (MATERIALIZE COLUMN), so queries are right at once and fast once that is done, and keep
    their old codec until their part is next merged. On a cluster, the Distributed tables get the
    columns too."""
    database = f"`{config.database}`"
    for table, columns in COMPUTED_COLUMNS.items():
        name = storage_table(config, table)
        if not _table_exists(client, config, name):
            continue
        added = ", ".join(
            f"ADD COLUMN IF NOT EXISTS {definition} AFTER {after}" for _, definition, after in columns
        )
        client.command(f"ALTER TABLE {database}.`{name}` {on_cluster(config)} {added}")
        for column, _, _ in columns:
            client.command(
                f"ALTER TABLE {database}.`{name}` {on_cluster(config)} MATERIALIZE COLUMN {column}"
            )
        codecs = ", ".join(f"MODIFY COLUMN {column} {READ_CODEC}" for column in READ_CODEC_COLUMNS)
        client.command(f"ALTER TABLE {database}.`{name}` {on_cluster(config)} {codecs}")
        if config.cluster:
            client.command(f"ALTER TABLE {database}.`{table}` {on_cluster(config)} {added}")


DAILY_PARTITION_KEY = "toDate(Timestamp)"
BY_DAY_SINCE = 5
"""The schema version from which llm_calls and agent_runs are partitioned by day."""
_BY_DAY = {
    # table: (its CREATE template, the views to drop while its rows move: those writing it or fed by it)
    "llm_calls": ("llm_calls_table", ("llm_calls_mv", "llm_daily_mv")),
    "agent_runs": ("agent_runs_table", ("agent_runs_mv",)),
}


def _repartition_by_day(client: Any, config: SchemaConfig) -> None:
    """Schema 5 partitions llm_calls and agent_runs by day (they were by month). A partition key cannot
    be altered, so each table's rows are copied into a new table that then takes its name; the views
    that write it are dropped first (the CREATE statements after this recreate them), so that nothing
    is counted twice meanwhile, and spans another writer stores into otel_traces in that time do not
    reach llm_calls (upgrade before the apps write). Safe to run again after an interruption, which
    leaves the version below 5: a table already by day is left alone and a copy left behind dropped."""
    database = f"`{config.database}`"
    for table, (template, views) in _BY_DAY.items():
        name = storage_table(config, table)
        copy, old = f"{name}_by_day", f"{name}_by_month"
        key = client.query(
            "SELECT partition_key FROM system.tables WHERE database = {db:String} AND name = {table:String}",
            parameters={"db": config.database, "table": name},
        ).result_rows
        if not key or key[0][0] == DAILY_PARTITION_KEY:
            for leftover in (copy, old):
                client.command(f"DROP TABLE IF EXISTS {database}.`{leftover}` {on_cluster(config)}")
            continue
        if config.cluster:
            # the rows would have to move on every shard; the monthly layout stays correct, only slower
            logger.warning(
                "%s.%s stays partitioned by month on cluster %s: copy it into a new database to get "
                "the faster daily layout",
                config.database,
                name,
                config.cluster,
            )
            continue
        for view in views:
            client.command(f"DROP VIEW IF EXISTS {database}.`{view}`")
        client.command(f"DROP TABLE IF EXISTS {database}.`{copy}`")
        _, _, family, time_expression = next(entry for entry in _STATEMENTS if entry[0] == template)
        client.command(_render(config, template, table, family, time_expression, {table: copy}))
        client.command(
            f"INSERT INTO {database}.`{copy}` SELECT * FROM {database}.`{name}`",
            settings={"max_partitions_per_insert_block": 0, "insert_deduplicate": 0},
        )
        client.command(
            f"RENAME TABLE {database}.`{name}` TO {database}.`{old}`, "
            f"{database}.`{copy}` TO {database}.`{name}`"
        )
        client.command(f"DROP TABLE {database}.`{old}`")
