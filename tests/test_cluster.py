"""`--cluster NAME`: every table ON CLUSTER, rows in Replicated `_local` tables, Distributed tables
under the public names.

A cluster with Keeper cannot run here (chdb has no Keeper and no distributed DDL queue), so the
rendered DDL is checked in two ways: every statement is parsed by ClickHouse itself and has the
cluster's shape; and, in `cluster_process.py`, the same DDL (less ON CLUSTER and replication) runs
on a chdb configured as a one-node cluster, where the collector's sink writes through the real
Distributed engine.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from spancost.collector.reprice import reprice
from spancost.collector.schema import (
    DISTRIBUTED_TABLES,
    SchemaConfig,
    SchemaError,
    apply_schema,
    render_statements,
)

CLUSTER = SchemaConfig(database="otel", cluster="analytics")
PROCESS = Path(__file__).with_name("cluster_process.py")


def _parsed(store: Any, statement: str) -> str:
    return store.query("SELECT formatQuery({sql:String})", {"sql": statement}).single_value()


def test_every_clustered_statement_parses_and_runs_on_the_cluster(store) -> None:
    statements = render_statements(CLUSTER, upgrade_from=1)
    for name, statement in statements:
        formatted = _parsed(store, statement)  # raises on a syntax error, naming the statement
        assert "ON CLUSTER analytics" in formatted, name


def test_rows_live_in_replicated_local_tables(store) -> None:
    created = {}
    for name, statement in render_statements(CLUSTER):
        match = re.search(r"CREATE TABLE IF NOT EXISTS `otel`\.(\w+) ON CLUSTER `analytics` \(", statement)
        if match:
            created[match.group(1)] = (name, statement)
    assert sorted(created) == sorted(f"{table}_local" for table in DISTRIBUTED_TABLES)
    for table, (_name, statement) in created.items():
        engine = re.search(r"ENGINE = (\w+)\('([^']*)', '\{replica\}'\)", statement)
        assert engine is not None, table
        assert engine.group(1).startswith("Replicated"), table
        assert engine.group(2) == f"/clickhouse/tables/{{shard}}/otel/{table}"
        assert "replicated_deduplication_window = 10000" in statement or table == "spancost_schema_local"


def test_public_names_are_distributed_tables_sharded_by_trace() -> None:
    distributed = {}
    for name, statement in render_statements(CLUSTER):
        if name == "distributed_table.sql":
            match = re.search(
                r"CREATE TABLE IF NOT EXISTS `otel`\.(\w+) ON CLUSTER `analytics`\s+AS `otel`\.(\w+)\s+"
                r"ENGINE = Distributed\('analytics', 'otel', '(\w+)', (.+)\)",
                statement,
            )
            assert match is not None, statement
            table, copied, local, key = match.groups()
            assert copied == local == f"{table}_local"
            distributed[table] = key
    assert distributed == {
        "spancost_schema": "rand()",
        "otel_traces": "cityHash64(TraceId)",
        "otel_traces_trace_id_ts": "cityHash64(TraceId)",
        "llm_calls": "cityHash64(TraceId)",
        "llm_daily": "rand()",
        "agent_runs": "cityHash64(TraceId)",
    }


def test_views_and_migrations_work_on_the_local_tables() -> None:
    rendered = dict(render_statements(CLUSTER, upgrade_from=1))
    views = {
        "traces_trace_id_ts_mv.sql": ("otel_traces_trace_id_ts_local", "otel_traces_local"),
        "llm_calls_mv.sql": ("llm_calls_local", "otel_traces_local"),
        "llm_daily_mv.sql": ("llm_daily_local", "llm_calls_local"),
        "agent_runs_mv.sql": ("agent_runs_local", "otel_traces_local"),
    }
    for name, (target, source) in views.items():
        assert f"TO `otel`.{target}\n" in rendered[name], name
        assert f"FROM `otel`.{source}\n" in rendered[name], name
    alters = [
        statement for name, statement in render_statements(CLUSTER, upgrade_from=2) if "ALTER" in statement
    ]
    assert len(alters) == 4
    assert all(re.search(r"ALTER TABLE `otel`\.\w+_local ON CLUSTER `analytics`", alter) for alter in alters)


def test_a_single_server_schema_has_no_cluster_parts() -> None:
    script = "\n".join(statement for _, statement in render_statements(SchemaConfig(), upgrade_from=1))
    for word in ("_local", "Distributed", "Replicated", "ON CLUSTER"):
        assert word not in script


def test_a_store_created_without_cluster_is_refused_with_cluster(store) -> None:
    before = store.query(
        "SELECT name FROM system.tables WHERE database = {db:String}", {"db": store.database}
    )
    with pytest.raises(SchemaError, match=r"otel_traces is a MergeTree table, not the Distributed table"):
        apply_schema(store.client, SchemaConfig(database=store.database, cluster="analytics"))
    after = store.query("SELECT name FROM system.tables WHERE database = {db:String}", {"db": store.database})
    assert sorted(after) == sorted(before)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store_dir = tmp_path_factory.mktemp("cluster") / "store"
    done = subprocess.run(
        [sys.executable, str(PROCESS), str(store_dir), str(_free_port())],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROCESS.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_sink_writes_through_distributed_tables(clustered) -> None:
    assert clustered["refused"] == 0
    engines = clustered["engines"]
    for table in DISTRIBUTED_TABLES:
        assert engines[table] == "Distributed"
        assert engines[f"{table}_local"].endswith("MergeTree")
    # request 0 (40 spans) stored, its replay under the same token dropped, then stored again under
    # another token (as a second collector would); request 1 (40 spans) once.
    assert (clustered["traces"], clustered["traces_local"], clustered["distinct_spans"]) == (120, 120, 80)
    assert clustered["trace_lookup"] == 2


def test_a_span_stored_twice_on_a_cluster_counts_once(clustered) -> None:
    # 2 requests x 20 model calls at $0.000021 each
    expected = Decimal("0.000021") * 40
    assert clustered["calls_final"] == 40
    assert Decimal(clustered["cost_final"]) == expected
    assert (Decimal(clustered["report_total"]), clustered["report_calls"]) == (expected, 40)


def test_recent_span_ids_are_read_from_every_shard(clustered) -> None:
    assert clustered["recent_ids"] == clustered["sent_ids"]


def test_reprice_refuses_a_clustered_store(clustered) -> None:
    assert "Distributed table (a store made with --cluster)" in clustered["reprice_error"]
    assert "nothing was changed" in clustered["reprice_error"]


def test_reprice_runs_on_a_single_server_store(store) -> None:
    # the refusal is for clusters only: an empty single-server store reprices (nothing) without error
    assert reprice(store, dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)).repriced == 0
