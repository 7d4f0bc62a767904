"""Grafana's ClickHouse datasource and the dashboards provider, as provisioning documents.

`spancost dashboards build` writes them under `dashboards/provisioning/` (the paths below), which
docker-compose.yml mounts at `/etc/grafana/provisioning`:

    datasources/spancost.yaml        datasource_provisioning(config)
    dashboards/spancost.yaml         dashboards_provider()
    dashboards/spancost/*.json       the dashboards themselves

Formats: Grafana's file provisioning (pkg/services/provisioning/datasources and .../dashboards, API
version 1) and the grafana-clickhouse-datasource plugin's jsonData (src/types/config.ts of the pinned
version). Grafana expands `${NAME}` in every provisioned string value from its own environment, so
secrets are referenced by variable name and never written here.
"""

from __future__ import annotations

from typing import Any

from spancost.config import SpancostConfig

PLUGIN_ID = "grafana-clickhouse-datasource"
PLUGIN_VERSION = "4.20.0"
"""The plugin release docker-compose.yml installs (GF_PLUGINS_PREINSTALL_SYNC); it needs Grafana ≥ 11.6."""
DATASOURCE_UID = "spancost-clickhouse"
"""Every panel and alert rule names the datasource by this uid."""
DATASOURCE_NAME = "spancost ClickHouse"

ORG_ID = 1
FOLDER_TITLE = "spancost"
"""The Grafana folder that holds the dashboards and the alert rules."""
FOLDER_UID = "spancost"

CONTAINER_PROVISIONING_DIR = "/etc/grafana/provisioning"
"""Where Grafana reads provisioning (its default paths.provisioning); the repository's
`dashboards/provisioning` directory is mounted there."""
PROVISIONING_DIR = "dashboards/provisioning"
"""The generated files, relative to the repository root."""
DATASOURCES_FILE = "datasources/spancost.yaml"
"""Relative to the provisioning directory; Grafana reads only .yaml/.yml datasource files."""
DASHBOARD_PROVIDER_FILE = "dashboards/spancost.yaml"
"""Relative to the provisioning directory; Grafana reads the provider files directly in dashboards/."""
DASHBOARDS_DIR = "dashboards/spancost"
"""Relative to the provisioning directory: the dashboards' JSON files."""
DASHBOARD_UPDATE_INTERVAL_S = 30

TRACES_TABLE = "otel_traces"
"""spancost's copy of the upstream OpenTelemetry Collector exporter's traces table."""
TRACE_ID_TS_SUFFIX = "_trace_id_ts"
"""`otel_traces_trace_id_ts`: when each trace starts and ends, which the plugin's trace view reads to
bound its scan of otel_traces."""
OTEL_SCHEMA_VERSION = "1.29.0"
"""The plugin's name for the upstream exporter's schema (`otelVersion`; its otel_traces columns are the
same in every version the plugin knows)."""

TRACE_COLUMNS = {
    "traceIdColumn": "TraceId",
    "spanIdColumn": "SpanId",
    "parentSpanIdColumn": "ParentSpanId",
    "operationNameColumn": "SpanName",
    "serviceNameColumn": "ServiceName",
    "startTimeColumn": "Timestamp",
    "durationColumn": "Duration",
    "tagsColumn": "SpanAttributes",
    "serviceTagsColumn": "ResourceAttributes",
    "kindColumn": "SpanKind",
    "statusCodeColumn": "StatusCode",
    "statusMessageColumn": "StatusMessage",
    "stateColumn": "TraceState",
    "instrumentationLibraryNameColumn": "ScopeName",
    "instrumentationLibraryVersionColumn": "ScopeVersion",
}
"""otel_traces' columns for each role in the plugin's trace view (the plugin uses the same ones for
`otelEnabled`; they are spelled out so the view still works with OTel mode switched off)."""


def grafana_env(name: str) -> str:
    """A value Grafana's provisioning replaces with its environment variable `name`."""
    return "${" + name + "}"


def datasource_provisioning(config: SpancostConfig) -> dict[str, Any]:
    """datasources/spancost.yaml: the ClickHouse datasource every spancost panel and rule queries."""
    grafana = config.grafana
    traces: dict[str, Any] = {
        "defaultDatabase": grafana.clickhouse_database,
        "defaultTable": TRACES_TABLE,
        "otelEnabled": True,
        "otelVersion": OTEL_SCHEMA_VERSION,
        "durationUnit": "nanoseconds",
        **TRACE_COLUMNS,
        "flattenNested": False,
        "traceEventsColumnPrefix": "Events",
        "traceLinksColumnPrefix": "Links",
        "traceTimestampTableSuffix": TRACE_ID_TS_SUFFIX,
        "showTraceLinks": True,
    }
    datasource: dict[str, Any] = {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN_ID,
        "orgId": ORG_ID,
        "access": "proxy",
        "isDefault": True,
        "editable": False,
        "jsonData": {
            "version": PLUGIN_VERSION,
            "host": grafana.clickhouse_host,
            "port": grafana.clickhouse_port,
            "protocol": grafana.clickhouse_protocol,
            "secure": grafana.clickhouse_secure,
            "username": grafana.clickhouse_user,
            "defaultDatabase": grafana.clickhouse_database,
            "traces": traces,
        },
    }
    if grafana.clickhouse_password_env:
        datasource["secureJsonData"] = {"password": grafana_env(grafana.clickhouse_password_env)}
    return {"apiVersion": 1, "datasources": [datasource]}


def dashboards_provider() -> dict[str, Any]:
    """dashboards/spancost.yaml: Grafana loads the dashboards' JSON from DASHBOARDS_DIR into the spancost
    folder, read-only in the UI (they are code) and kept when a file disappears."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "spancost",
                "orgId": ORG_ID,
                "type": "file",
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": DASHBOARD_UPDATE_INTERVAL_S,
                "options": {
                    "path": f"{CONTAINER_PROVISIONING_DIR}/{DASHBOARDS_DIR}",
                    "foldersFromFilesStructure": False,
                },
            }
        ],
    }
