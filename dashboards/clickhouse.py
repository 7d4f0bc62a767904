"""Queries of the Grafana ClickHouse plugin, as the dashboards and alert rules carry them.

grafana-foundation-sdk has builders for Grafana's own query types but none for this plugin, so its
query model (`CHSqlQuery` / `CHBuilderQuery` in the plugin's `src/types`) is written here as a
`Dataquery` the SDK's panel builders accept.
"""

from __future__ import annotations

import enum
from typing import Any

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants

from spancost import queries
from spancost.collector.schema import DEFAULT_DATABASE
from spancost.dashboards.datasource import (
    DATASOURCE_UID,
    OTEL_SCHEMA_VERSION,
    PLUGIN_ID,
    PLUGIN_VERSION,
    TRACE_ID_TS_SUFFIX,
    TRACES_TABLE,
)

# otel_traces' column for each role the plugin's trace query builder knows (its `ColumnHint`s).
_TRACE_COLUMN_HINTS = {
    "time": "Timestamp",
    "trace_id": "TraceId",
    "trace_span_id": "SpanId",
    "trace_parent_span_id": "ParentSpanId",
    "trace_service_name": "ServiceName",
    "trace_operation_name": "SpanName",
    "trace_duration_time": "Duration",
    "trace_tags": "SpanAttributes",
    "trace_service_tags": "ResourceAttributes",
    "trace_status_code": "StatusCode",
    "trace_kind": "SpanKind",
    "trace_status_message": "StatusMessage",
    "trace_state": "TraceState",
}


class Format(enum.IntEnum):
    """The plugin's result formats (`Format` in its `src/types`)."""

    TIME_SERIES = 0
    TABLE = 1
    LOGS = 2
    TRACE = 3


def datasource_ref() -> dict[str, str]:
    return {"type": PLUGIN_ID, "uid": DATASOURCE_UID}


class ClickHouseQuery(cogvariants.Dataquery):
    """A query in the plugin's SQL editor."""

    def __init__(self, ref_id: str, raw_sql: str, fmt: Format) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format = fmt

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": datasource_ref(),
            "editorType": "sql",
            "format": int(self.format),
            "pluginVersion": PLUGIN_VERSION,
            "queryType": "timeseries" if self.format == Format.TIME_SERIES else "table",
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }


class SqlTarget(cogbuilder.Builder[ClickHouseQuery]):
    """A panel target running the named query `name` (see `spancost.queries`)."""

    def __init__(self, name: str, fmt: Format = Format.TABLE, ref_id: str = "A") -> None:
        self.name = name
        self._query = ClickHouseQuery(ref_id, queries.load(name).sql, fmt)

    def build(self) -> ClickHouseQuery:
        return self._query


def trace_link() -> dict[str, Any]:
    """A data link on a TraceId field that opens the trace in Explore, in the plugin's trace view
    over `otel_traces` (its trace-id mode, which first bounds the scan with `otel_traces_trace_id_ts`)."""
    query = {
        "datasource": datasource_ref(),
        "editorType": "builder",
        "format": int(Format.TRACE),
        "pluginVersion": PLUGIN_VERSION,
        "queryType": "traces",
        "rawSql": "",
        "refId": "Trace ID",
        "builderOptions": {
            "database": DEFAULT_DATABASE,
            "table": TRACES_TABLE,
            "queryType": "traces",
            "columns": [{"name": name, "hint": hint} for hint, name in _TRACE_COLUMN_HINTS.items()],
            "filters": [],
            "orderBy": [],
            "meta": {
                "minimized": True,
                "isTraceIdMode": True,
                "traceId": "${__value.raw}",
                "traceDurationUnit": "nanoseconds",
                "otelEnabled": True,
                "otelVersion": OTEL_SCHEMA_VERSION,
                "traceEventsColumnPrefix": "Events",
                "traceLinksColumnPrefix": "Links",
                "hasTraceTimestampTable": True,
                "traceTimestampTableSuffix": TRACE_ID_TS_SUFFIX,
                "flattenNested": False,
            },
        },
    }
    return {
        "title": "View trace",
        "url": "",
        "internal": {"query": query, "datasourceUid": DATASOURCE_UID, "datasourceName": PLUGIN_ID},
    }
