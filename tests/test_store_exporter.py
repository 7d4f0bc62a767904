"""Spans into real ClickHouse (chdb): otel_traces as upstream writes it, typed llm_calls, daily rollup."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import anthropic_client, openai_client, pretend_schema_version
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

import spancost
from spancost import queries
from spancost.collector.exporter import ClickHouseSpanExporter
from spancost.collector.rows import attribute_string
from spancost.collector.schema import (
    COMPUTED_COLUMNS,
    DAILY_PARTITION_KEY,
    SCHEMA_VERSION,
    SchemaConfig,
    SchemaError,
    apply_schema,
    render_schema,
    render_statements,
)
from spancost.instrumentation.processor import installed_processor

MESSAGES = [{"role": "user", "content": "Say this is a test"}]
T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z in ns


def make_span(
    name: str = "chat gpt-4o", *, span_id: int = 0x1111, attributes: dict | None = None, **kwargs: object
) -> ReadableSpan:
    context = SpanContext(trace_id=0xABC, span_id=span_id, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name=name,
        context=context,
        parent=SpanContext(trace_id=0xABC, span_id=0x2222, is_remote=False),
        resource=Resource.create({"service.name": "checkout", "service.version": "1.2.3"}),
        attributes=attributes if attributes is not None else {"gen_ai.operation.name": "chat"},
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, "boom"),
        start_time=T0,
        end_time=T0 + 1_500_000,
        instrumentation_scope=InstrumentationScope("tests", "0.1"),
        **kwargs,
    )


def exporter_for(chdb_dir: Path, config: SchemaConfig) -> ClickHouseSpanExporter:
    return ClickHouseSpanExporter(f"chdb://{chdb_dir}", database=config.database)


def test_instrumented_calls_arrive_typed_in_llm_calls(
    instrumented, tracer_provider, store, chdb_dir: Path, store_config: SchemaConfig, replay
) -> None:
    exporter = exporter_for(chdb_dir, store_config)
    processor = SimpleSpanProcessor(exporter)
    stage = installed_processor(tracer_provider)
    stage.add_span_processor(processor)
    try:
        with spancost.tags(
            prompt="qa", user_id="u-1", workspace_id="acme", feature="support", experiment_variant="A"
        ):
            openai_client(replay("openai-v2", "test_chat_completion_with_content")).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES
            )
            anthropic_client(replay("anthropic", "test_sync_messages_create_basic")).messages.create(
                model="claude-sonnet-4-20250514", max_tokens=100, messages=MESSAGES
            )
    finally:
        stage._downstream = tuple(p for p in stage.downstream if p is not processor)
        exporter.shutdown()

    rows = store.query(
        "SELECT Provider, Model, RequestModel, Operation, PromptName, UserId, WorkspaceId, Feature,"
        " ExperimentVariant,"
        " InputTokens, OutputTokens, CostUSD, CostInputUSD, CostOutputUSD, CostStatus, CostSource, PriceKey,"
        " ServiceName, ServiceVersion, StatusCode, FinishReason, DurationNs > 0 AS timed"
        " FROM llm_calls ORDER BY Provider DESC"
    ).dicts()
    tags = {
        "PromptName": "qa",
        "UserId": "u-1",
        "WorkspaceId": "acme",
        "Feature": "support",
        "ExperimentVariant": "A",
        "CostStatus": "priced",
        "CostSource": "local",
        "ServiceName": "spancost-tests",
        "ServiceVersion": "9.9.9",
        "Operation": "chat",
        "timed": 1,
    }
    assert rows == [
        {
            **tags,
            "Provider": "openai",
            "Model": "gpt-4o-mini-2024-07-18",
            "RequestModel": "gpt-4o-mini",
            "InputTokens": 12,
            "OutputTokens": 5,
            "CostUSD": Decimal("0.000004800"),
            "CostInputUSD": Decimal("0.0000018"),
            "CostOutputUSD": Decimal("0.000003"),
            "PriceKey": "openai/gpt-4o-mini",
            "StatusCode": "Unset",
            "FinishReason": "stop",
        },
        {
            **tags,
            "Provider": "anthropic",
            "Model": "claude-sonnet-4-20250514",
            "RequestModel": "claude-sonnet-4-20250514",
            "InputTokens": 13,
            "OutputTokens": 5,
            "CostUSD": Decimal("0.000114"),
            "CostInputUSD": Decimal("0.000039"),
            "CostOutputUSD": Decimal("0.000075"),
            "PriceKey": "anthropic/claude-sonnet-4",
            "StatusCode": "Ok",
            "FinishReason": "end_turn",
        },
    ]
    daily = store.query("SELECT sum(Calls), sum(CostUSD), sum(InputTokens) FROM llm_daily").first()
    assert daily == (2, Decimal("0.000118800"), 25)
    kinds = store.query("SELECT DISTINCT SpanKind, ScopeName FROM otel_traces ORDER BY ScopeName").rows
    assert kinds == [("Client", "com.anthropic.sdk.python"), ("Client", "spancost.instrumentation.openai")]
    lookups = store.query("SELECT count() FROM otel_traces_trace_id_ts").single_value()
    assert lookups == 2


def test_row_is_written_the_way_the_upstream_exporter_writes_it(
    store, chdb_dir: Path, store_config: SchemaConfig
) -> None:
    span = make_span(
        attributes={"flag": True, "count": 12, "ratio": 0.00001, "reasons": ("stop", "length"), "name": "x"},
        events=[Event("retry", {"attempt": 2}, timestamp=T0 + 10)],
        links=[Link(SpanContext(trace_id=0xDEF, span_id=0x3333, is_remote=True), {"why": "batch"})],
    )
    exporter = exporter_for(chdb_dir, store_config)
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    row = store.query(
        "SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, ParentSpanId, SpanName, SpanKind,"
        " ServiceName, ResourceAttributes['service.version'], ScopeName, ScopeVersion, SpanAttributes,"
        " Duration, StatusCode,"
        " StatusMessage, Events.Name, Events.Attributes, Links.TraceId, Links.SpanId, Links.Attributes"
        " FROM otel_traces"
    ).first()
    assert row == (
        T0,
        f"{0xABC:032x}",
        f"{0x1111:016x}",
        f"{0x2222:016x}",
        "chat gpt-4o",
        "Client",
        "checkout",
        "1.2.3",
        "tests",
        "0.1",
        {"flag": "true", "count": "12", "ratio": "0.00001", "reasons": '["stop","length"]', "name": "x"},
        1_500_000,
        "Error",
        "boom",
        ["retry"],
        [{"attempt": "2"}],
        [f"{0xDEF:032x}"],
        [f"{0x3333:016x}"],
        [{"why": "batch"}],
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (3, "3"),
        (2.5e-07, "0.00000025"),
        (1e16, "10000000000000000"),
        (0.1, "0.1"),
        (100.0, "100"),
        ("héllo", "héllo"),
        ((1, 2), "[1,2]"),
        ((), "[]"),
    ],
)
def test_attribute_values_are_rendered_like_pdata_as_string(value: object, text: str) -> None:
    assert attribute_string(value) == text


class _BrokenAttributes(ReadableSpan):
    @property
    def attributes(self):  # type: ignore[override]
        raise RuntimeError("attributes cannot be read")


class _BadEventTime(ReadableSpan):
    @property
    def events(self):  # type: ignore[override]
        return (
            Event("e", {}, timestamp=T0),
            type("Odd", (), {"name": "odd", "timestamp": "not a time", "attributes": {}})(),
        )


def test_a_bad_span_does_not_drop_its_batch(
    store, chdb_dir: Path, store_config: SchemaConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spancost")
    good = [make_span(span_id=i) for i in range(1, 6)]
    surrogate = make_span(span_id=0x77, attributes={"note": "bad \udcff byte"})
    unreadable = _BrokenAttributes(
        **{
            k: getattr(make_span(span_id=0x88), "_" + k)
            for k in ("name", "context", "parent", "resource", "kind", "status", "start_time", "end_time")
        }
    )
    bad_event = _BadEventTime(
        **{
            k: getattr(make_span(span_id=0x99), "_" + k)
            for k in ("name", "context", "parent", "resource", "kind", "status", "start_time", "end_time")
        }
    )
    batch = [good[0], unreadable, good[1], surrogate, good[2], bad_event, good[3], good[4]]

    exporter = exporter_for(chdb_dir, store_config)
    assert exporter.export(batch) is SpanExportResult.SUCCESS

    stored = store.query("SELECT SpanId, SpanAttributes['note'] FROM otel_traces ORDER BY SpanId").rows
    assert [s for s, _ in stored] == sorted([f"{i:016x}" for i in range(1, 6)] + [f"{0x77:016x}"])
    # A lone surrogate cannot be UTF-8: the span is stored with the character replaced.
    note = dict(stored)["0000000000000077"]
    assert note.startswith("bad ")
    assert note.endswith(" byte")
    assert exporter.rejected == 2
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert f"{0x88:016x}" in messages
    assert f"{0x99:016x}" in messages


def test_the_dsn_can_name_the_database(store, chdb_dir: Path, store_config: SchemaConfig) -> None:
    exporter = ClickHouseSpanExporter(f"chdb://{chdb_dir}?database={store_config.database}")
    assert exporter.config.database == store_config.database
    assert exporter.export([make_span()]) is SpanExportResult.SUCCESS
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1


def test_a_down_store_fails_the_export_without_raising() -> None:
    exporter = ClickHouseSpanExporter("http://127.0.0.1:9/")
    assert exporter.export([make_span()]) is SpanExportResult.FAILURE


# --- schema -------------------------------------------------------------------------------------------


def test_schema_is_idempotent_and_versioned(store) -> None:
    assert apply_schema(store.client, store.config) == SCHEMA_VERSION
    assert apply_schema(store.client, store.config) == SCHEMA_VERSION
    assert store.query("SELECT Version FROM spancost_schema").rows == [(SCHEMA_VERSION,)]
    tables = {
        r[0] for r in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()").rows
    }
    assert tables >= {
        "otel_traces",
        "otel_traces_trace_id_ts",
        "otel_traces_trace_id_ts_mv",
        "llm_calls",
        "llm_calls_mv",
        "llm_daily",
        "llm_daily_mv",
        "spancost_schema",
    }


def test_a_version_1_store_is_migrated(store, chdb_dir: Path, store_config: SchemaConfig) -> None:
    """Schema 2 recreates llm_calls_mv so that spans marked as duplicates stay out of llm_calls."""
    store.command("DROP VIEW llm_calls_mv")
    store.command(
        "CREATE MATERIALIZED VIEW llm_calls_mv TO llm_calls"
        " AS SELECT Timestamp, TraceId, SpanId FROM otel_traces"
    )
    pretend_schema_version(store, 1)

    assert apply_schema(store.client, store.config) == SCHEMA_VERSION
    view = store.query(
        "SELECT create_table_query FROM system.tables WHERE database = currentDatabase()"
        " AND name = 'llm_calls_mv'"
    ).single_value()
    assert "spancost.duplicate_of" in view
    assert max(v for (v,) in store.query("SELECT Version FROM spancost_schema").rows) == SCHEMA_VERSION

    duplicate = make_span(
        span_id=0x5,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "x",
            "spancost.duplicate_of": "0000000000000004",
        },
    )
    exporter_for(chdb_dir, store_config).export([make_span(span_id=0x4), duplicate])
    assert store.query("SELECT SpanId FROM llm_calls").rows == [("0000000000000004",)]


def _monthly_layout(store) -> None:
    """Turn a fresh store's llm_calls and agent_runs back into schema 4's: partitioned by month."""
    views = {name: sql for name, sql in render_statements(store.config) if name.endswith("_mv.sql")}
    for view in ("llm_daily_mv", "llm_calls_mv", "agent_runs_mv"):
        store.command(f"DROP VIEW {view}")
    for table in ("llm_calls", "agent_runs"):
        ddl = store.query(
            "SELECT create_table_query FROM system.tables"
            " WHERE database = currentDatabase() AND name = {t:String}",
            {"t": table},
        ).single_value()
        monthly = ddl.replace(f".{table} ", f".{table}_m ", 1).replace(
            "PARTITION BY toDate(Timestamp)", "PARTITION BY toYYYYMM(Timestamp)"
        )
        assert monthly != ddl
        store.command(monthly)
        store.command(f"INSERT INTO {table}_m SELECT * FROM {table}")
        store.command(f"DROP TABLE {table}")
        store.command(f"RENAME TABLE {table}_m TO {table}")
    for sql in views.values():
        store.command(sql)
    pretend_schema_version(store, 4)


def _layout(store) -> dict[str, object]:
    return {
        "partitions": dict(
            store.query(
                "SELECT name, partition_key FROM system.tables WHERE database = currentDatabase()"
                " AND name IN ('llm_calls', 'agent_runs')"
            ).rows
        ),
        "calls": store.query("SELECT count(), sum(CostUSD), groupArray(SpanId) FROM llm_calls").rows[0],
        "daily": store.query("SELECT sum(Calls), sum(CostUSD) FROM llm_daily").rows[0],
        "runs": store.query("SELECT count() FROM agent_runs").single_value(),
        "tables": sorted(
            name
            for (name,) in store.query(
                "SELECT name FROM system.tables WHERE database = currentDatabase()"
            ).rows
        ),
    }


def test_a_version_4_store_gets_daily_partitions_and_keeps_its_rows(
    store, chdb_dir: Path, store_config: SchemaConfig
) -> None:
    """Schema 5 moves llm_calls and agent_runs to daily partitions: every row is kept, llm_daily (fed
    by llm_calls) counts nothing twice, and the views write the new tables."""
    priced = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
              "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}  # fmt: skip
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    exporter_for(chdb_dir, store_config).export(
        [
            make_span(span_id=0x10, attributes=priced),
            make_span("invoke_agent planner", span_id=0x11, attributes=agent),
        ]
    )
    fresh = _layout(store)
    assert fresh["partitions"] == {"llm_calls": DAILY_PARTITION_KEY, "agent_runs": DAILY_PARTITION_KEY}
    _monthly_layout(store)
    assert _layout(store)["partitions"] == {
        "llm_calls": "toYYYYMM(Timestamp)",
        "agent_runs": "toYYYYMM(Timestamp)",
    }

    assert apply_schema(store.client, store.config) == SCHEMA_VERSION
    assert _layout(store) == fresh  # same rows, same tables, nothing left behind
    assert apply_schema(store.client, store.config) == SCHEMA_VERSION
    assert _layout(store) == fresh

    exporter_for(chdb_dir, store_config).export([make_span(span_id=0x12, attributes=priced)])
    after = _layout(store)
    assert after["calls"][0] == 2
    assert after["daily"][0] == 2
    assert after["calls"][1] == after["daily"][1] == 2 * fresh["calls"][1]


def _columns(store) -> list[tuple[object, ...]]:
    return store.query(
        "SELECT table, position, name, type, default_kind, default_expression, compression_codec"
        " FROM system.columns WHERE database = currentDatabase() AND table IN ('llm_calls', 'agent_runs')"
        " ORDER BY table, position"
    ).rows


def test_a_version_5_store_gets_computed_columns_and_codecs_for_its_stored_rows(
    store, chdb_dir: Path, store_config: SchemaConfig
) -> None:
    """Schema 6 adds TraceKey to llm_calls and agent_runs: rows stored before it get the key of their
    trace id too, rows stored after get it on insert, and an agent run's calls are found by it."""
    priced = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
              "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}  # fmt: skip
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    exporter = exporter_for(chdb_dir, store_config)
    exporter.export(
        [
            make_span(span_id=0x20, attributes=priced),
            make_span("invoke_agent planner", span_id=0x21, attributes=agent),
        ]
    )
    fresh = _columns(store)
    for table, columns in COMPUTED_COLUMNS.items():
        for column, _, _ in columns:
            store.command(f"ALTER TABLE {table} DROP COLUMN {column}")
        store.command(
            f"ALTER TABLE {table} MODIFY COLUMN Timestamp CODEC(Delta(8), ZSTD(1)),"
            " MODIFY COLUMN UserId CODEC(ZSTD(1))"
        )
    assert _columns(store) != fresh
    pretend_schema_version(store, 5)

    assert apply_schema(store.client, store.config) == SCHEMA_VERSION
    assert _columns(store) == fresh, "the same columns, kinds and codecs as a store made new"
    exporter.export([make_span(span_id=0x22, attributes=priced)])
    for table, rows in (("llm_calls", 2), ("agent_runs", 1)):
        keys = store.query(
            f"SELECT count(), countIf(TraceKey = reinterpretAsUInt128(unhex(TraceId)) AND TraceKey != 0)"
            f" FROM {table}"
        ).rows[0]
        assert keys == (rows, rows), table
    assert store.query("SELECT DISTINCT ProviderModel FROM llm_calls").rows == [("\x1fgpt-4o-mini",)]
    trace_id = store.query("SELECT any(TraceId) FROM agent_runs").single_value()
    around = dt.datetime.fromtimestamp(T0 / 1e9, dt.timezone.utc)
    time_range = queries.TimeRange(around - dt.timedelta(hours=1), around + dt.timedelta(hours=1))
    runs = store.query(queries.render("costliest_agent_runs", time_range, variables=queries.ALL_FILTERS)).rows
    assert [(run[0], run[4]) for run in runs] == [(trace_id, 2)], "both calls in the run, found by key"


def test_past_days_of_llm_calls_and_agent_runs_become_one_part(store) -> None:
    """A day's partition of one part is read with FINAL without merging; the tables ask ClickHouse to
    merge each day into one part an hour after its last insert."""
    for table in ("llm_calls", "agent_runs"):
        ddl = store.query(
            "SELECT create_table_query FROM system.tables"
            " WHERE database = currentDatabase() AND name = {t:String}",
            {"t": table},
        ).single_value()
        assert "PARTITION BY toDate(Timestamp)" in ddl
        assert "min_age_to_force_merge_seconds = 3600" in ddl
        assert "min_age_to_force_merge_on_partition_only = 1" in ddl


def test_an_interrupted_repartition_is_finished_on_the_next_start(store, store_config: SchemaConfig) -> None:
    """A copy left behind by a run that died is dropped; a table already by day is left alone."""
    store.command("CREATE TABLE llm_calls_by_day AS llm_calls")
    store.command("CREATE TABLE agent_runs_by_month AS agent_runs")
    pretend_schema_version(store, 4)
    assert apply_schema(store.client, store.config) == SCHEMA_VERSION
    tables = {
        name for (name,) in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    }
    assert not {"llm_calls_by_day", "agent_runs_by_month"} & tables


def test_a_store_with_a_newer_schema_is_refused(store) -> None:
    store.client.insert(
        "spancost_schema",
        [[SCHEMA_VERSION + 1, "spancost 99"]],
        column_names=["Version", "AppliedBy"],
        database=store.database,
    )
    with pytest.raises(SchemaError, match="newer than this spancost"):
        apply_schema(store.client, store.config)


def test_otel_traces_has_exactly_the_upstream_columns(store) -> None:
    columns = store.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'otel_traces'"
        " AND default_kind != 'ALIAS' ORDER BY position"
    ).rows
    assert columns == [
        ("Timestamp", "DateTime64(9)"),
        ("TraceId", "String"),
        ("SpanId", "String"),
        ("ParentSpanId", "String"),
        ("TraceState", "String"),
        ("SpanName", "LowCardinality(String)"),
        ("SpanKind", "LowCardinality(String)"),
        ("ServiceName", "LowCardinality(String)"),
        ("ResourceAttributes", "Map(LowCardinality(String), String)"),
        ("ScopeName", "String"),
        ("ScopeVersion", "String"),
        ("SpanAttributes", "Map(LowCardinality(String), String)"),
        ("Duration", "UInt64"),
        ("StatusCode", "LowCardinality(String)"),
        ("StatusMessage", "String"),
        ("Events.Timestamp", "Array(DateTime64(9))"),
        ("Events.Name", "Array(LowCardinality(String))"),
        ("Events.Attributes", "Array(Map(LowCardinality(String), String))"),
        ("Links.TraceId", "Array(String)"),
        ("Links.SpanId", "Array(String)"),
        ("Links.TraceState", "Array(String)"),
        ("Links.Attributes", "Array(Map(LowCardinality(String), String))"),
    ]


@pytest.mark.parametrize(
    ("config", "expected", "absent"),
    [
        pytest.param(
            SchemaConfig(),
            [
                "CREATE DATABASE IF NOT EXISTS `otel`",
                "ENGINE = MergeTree()",
                "ENGINE = AggregatingMergeTree()",
            ],
            ["ON CLUSTER", "TTL "],
            id="single server",
        ),
        pytest.param(
            SchemaConfig(database="llm", cluster="prod", ttl_days=90),
            [
                "CREATE DATABASE IF NOT EXISTS `llm` ON CLUSTER `prod`",
                "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/llm/otel_traces_local',"
                " '{replica}')",
                "TTL toDateTime(Timestamp) + toIntervalDay(90)",
                "TTL Date + toIntervalDay(90)",
            ],
            ["ENGINE = MergeTree()"],
            id="cluster with TTL",
        ),
    ],
)
def test_rendered_ddl_per_configuration(config: SchemaConfig, expected: list[str], absent: list[str]) -> None:
    ddl = render_schema(config)
    for text in expected:
        assert text in ddl
    for text in absent:
        assert text not in ddl


def test_invalid_schema_configuration_lists_every_problem() -> None:
    with pytest.raises(SchemaError) as raised:
        render_schema(SchemaConfig(database="my-db", cluster="a b", ttl_days=-1))
    assert "database 'my-db'" in str(raised.value)
    assert "cluster 'a b'" in str(raised.value)
    assert "ttl_days -1" in str(raised.value)


def test_timestamps_are_utc(store, chdb_dir: Path, store_config: SchemaConfig) -> None:
    exporter_for(chdb_dir, store_config).export([make_span()])
    day = store.query("SELECT toString(toDate(Timestamp)), toString(Timestamp) FROM llm_calls").first()
    expected = dt.datetime.fromtimestamp(T0 / 1e9, dt.timezone.utc)
    assert day == (expected.date().isoformat(), expected.strftime("%Y-%m-%d %H:%M:%S.000000000"))
