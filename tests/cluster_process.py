"""The clustered schema at work, on an embedded ClickHouse that is a one-node cluster.

    python cluster_process.py STORE_DIR TCP_PORT

chdb reads a server configuration file (`chdb_options={"config-file": ...}`), so this process
declares a cluster `spancost_test` whose one shard is itself (its own TCP port): Distributed tables
then route through the real Distributed engine to the `_local` tables. Two things a cluster has
cannot run in chdb, and are taken out of the rendered DDL here (only here): `ON CLUSTER` (needs the
distributed DDL queue of Keeper) and the Replicated engines (need Keeper; each becomes its plain
MergeTree counterpart, with the non-replicated deduplication window). Everything else, the `_local`
tables, the views between them and the Distributed tables, is the DDL `--cluster` renders.

Prints one JSON line with what the store holds after the collector's sink wrote to it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

CLUSTER = "spancost_test"

CONFIG = """<clickhouse>
  <tcp_port>{port}</tcp_port>
  <remote_servers>
    <{cluster}>
      <shard><replica><host>localhost</host><port>{port}</port></replica></shard>
    </{cluster}>
  </remote_servers>
  <macros><shard>01</shard><replica>r1</replica></macros>
</clickhouse>
"""


def without_keeper(statement: str) -> str:
    statement = re.sub(r" ON CLUSTER `\w+`", "", statement)
    statement = re.sub(r"Replicated(\w*MergeTree)\('[^']*', '\{replica\}'\)", r"\1()", statement)
    return statement.replace("replicated_deduplication_window", "non_replicated_deduplication_window")


def main(store_dir: Path, port: int) -> dict[str, Any]:
    import clickhouse_connect
    from durability_process import request_rows

    from spancost.collector.reprice import reprice
    from spancost.collector.schema import SchemaConfig, render_statements
    from spancost.collector.sink import ClickHouseSink
    from spancost.report import build_report
    from spancost.store import Store, StoreError

    config_file = store_dir.parent / "cluster.xml"
    config_file.write_text(CONFIG.format(port=port, cluster=CLUSTER))
    dsn = f"chdb://{store_dir}"
    client = clickhouse_connect.get_client(dsn=dsn, chdb_options={"config-file": str(config_file)})
    schema = SchemaConfig(cluster=CLUSTER)
    for _name, statement in render_statements(schema):
        client.command(without_keeper(statement))

    sink = ClickHouseSink(dsn, schema=schema, create_schema=False, open_client=lambda _dsn: client)
    first, second = request_rows(0), request_rows(1)
    refused = sink.insert(first, "batch-0")
    refused += sink.insert(first, "batch-0")  # a spool replay of a batch the store had taken
    refused += sink.insert(first, "batch-0-from-elsewhere")  # the same spans again, under another token
    refused += sink.insert(second, "batch-1")

    def value(sql: str) -> Any:
        return client.query(sql).result_rows[0][0]

    store = Store(dsn, config=schema, create=False, client=client)
    report = build_report(store, days=30, now=dt.datetime(2025, 11, 26, tzinfo=dt.timezone.utc))
    try:
        reprice(store, dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
        reprice_error = ""
    except StoreError as err:
        reprice_error = str(err)
    engines = dict(client.query("SELECT name, engine FROM system.tables WHERE database = 'otel'").result_rows)
    return {
        "refused": refused,
        "engines": engines,
        "traces": value("SELECT count() FROM otel.otel_traces"),
        "traces_local": value("SELECT count() FROM otel.otel_traces_local"),
        "distinct_spans": value("SELECT uniqExact(TraceId, SpanId) FROM otel.otel_traces"),
        "trace_lookup": value("SELECT uniqExact(TraceId) FROM otel.otel_traces_trace_id_ts"),
        "calls_final": value("SELECT count() FROM otel.llm_calls FINAL"),
        "cost_final": str(value("SELECT sum(CostUSD) FROM otel.llm_calls FINAL")),
        "report_total": str(report.total_usd),
        "report_calls": report.calls,
        "recent_ids": sorted(map(list, set(sink.recent_span_ids(within_s=600, limit=100_000)))),
        "sent_ids": sorted([row[1], row[2]] for row in first + second),
        "reprice_error": reprice_error,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]))))
