"""The Grafana provisioning documents (datasource, dashboards provider, contact points, notification
policy) checked against the formats Grafana and the ClickHouse plugin read, and the compose `grafana`
service checked against them: the pinned plugin, the mount the provider's path lives in, the ClickHouse
the datasource points at, the environment the provisioning references. Grafana cannot run here, so
the formats are spelled out below from their sources, and Grafana's own `${NAME}` expansion is
re-implemented to check what the secrets resolve to.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import REPO
from grafana_foundation_sdk.models import alerting as sdk

from spancost.collector.schema import DEFAULT_DATABASE, DISTRIBUTED_TABLES
from spancost.config import GrafanaConfig, NotifyConfig, SpancostConfig
from spancost.dashboards.datasource import (
    CONTAINER_PROVISIONING_DIR,
    DASHBOARD_PROVIDER_FILE,
    DASHBOARDS_DIR,
    DATASOURCE_UID,
    DATASOURCES_FILE,
    FOLDER_TITLE,
    OTEL_SCHEMA_VERSION,
    PLUGIN_ID,
    PLUGIN_VERSION,
    PROVISIONING_DIR,
    TRACE_COLUMNS,
    TRACE_ID_TS_SUFFIX,
    TRACES_TABLE,
    dashboards_provider,
    datasource_provisioning,
)
from spancost.dashboards.notifications import (
    ALERT_LABEL,
    CONTACT_POINT_NAME,
    CONTACT_POINTS_FILE,
    EMAIL_RECEIVER_UID,
    GRAFANA_DEFAULT_RECEIVER,
    POLICIES_FILE,
    SLACK_RECEIVER_UID,
    contact_points,
    notification_policies,
)

COMPOSE_FILE = REPO / "docker-compose.yml"

# --- the formats, from their sources --------------------------------------------------------------------

# Grafana, pkg/services/provisioning/datasources/types.go: upsertDataSourceFromConfigV1's yaml keys.
DATASOURCE_KEYS = {
    "orgId", "orgName", "version", "name", "type", "access", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "correlations", "jsonData", "secureJsonData",
    "editable", "uid",
}  # fmt: skip
# grafana-clickhouse-datasource v4.20.0, src/types/config.ts: CHConfig, CHTracesConfig, the secure keys.
PLUGIN_JSON_DATA_KEYS = {
    "version", "host", "port", "protocol", "secure", "path", "tlsSkipVerify", "tlsAuth", "tlsAuthWithCACert",
    "username", "defaultDatabase", "defaultTable", "connMaxLifetime", "dialTimeout", "maxIdleConns",
    "maxOpenConns", "queryTimeout", "validateSql", "logs", "traces", "aliasTables", "httpHeaders",
    "forwardGrafanaHeaders", "customSettings", "enableSecureSocksProxy", "enableRowLimit", "rowCapacityHint",
    "hideTableNameInAdhocFilters", "enableMapKeysDiscovery", "pdcInjected", "configMode", "signalType",
}  # fmt: skip
PLUGIN_TRACES_KEYS = {
    "defaultDatabase", "defaultTable", "otelEnabled", "otelVersion", "traceIdColumn", "spanIdColumn",
    "operationNameColumn", "parentSpanIdColumn", "serviceNameColumn", "durationColumn", "durationUnit",
    "startTimeColumn", "tagsColumn", "serviceTagsColumn", "kindColumn", "statusCodeColumn",
    "statusMessageColumn", "stateColumn", "instrumentationLibraryNameColumn",
    "instrumentationLibraryVersionColumn", "flattenNested", "traceEventsColumnPrefix",
    "traceLinksColumnPrefix", "showTraceLinks", "traceTimestampTableSuffix",
}  # fmt: skip
PLUGIN_SECURE_KEYS = {"password", "tlsCACert", "tlsClientCert", "tlsClientKey"}
# ...src/otel.ts: the `version` of each schema the plugin knows (getVersion matches on it).
PLUGIN_OTEL_VERSIONS = {"latest", "1.30.0", "1.29.0"}
# ...src/types/queryBuilder.ts TimeUnit.
PLUGIN_DURATION_UNITS = {"seconds", "milliseconds", "microseconds", "nanoseconds"}
# Grafana, pkg/services/provisioning/dashboards/types.go: configs' yaml keys.
PROVIDER_KEYS = {
    "name", "type", "orgId", "folder", "folderUid", "editable", "options", "disableDeletion",
    "updateIntervalSeconds", "allowUiUpdates",
}  # fmt: skip
# Grafana, pkg/services/provisioning/alerting/contact_point_types.go: ContactPointV1, ReceiverV1.
CONTACT_POINT_KEYS = {"orgId", "name", "receivers"}
RECEIVER_KEYS = {"uid", "type", "settings", "disableResolveMessage"}
# grafana/alerting receivers/slack/v1/config.go and the e-mail settings of the provisioning docs.
SLACK_SETTINGS = {
    "endpointUrl", "url", "token", "recipient", "text", "title", "username", "icon_emoji", "icon_url",
    "mentionChannel", "mentionUsers", "mentionGroups", "color", "footer",
}  # fmt: skip
EMAIL_SETTINGS = {"addresses", "singleEmail", "message", "subject"}
# Grafana's notification policy route (Alertmanager's Route plus object_matchers and time intervals).
ROUTE_KEYS = {
    "receiver", "group_by", "continue", "object_matchers", "matchers", "match", "match_re",
    "mute_time_intervals", "active_time_intervals", "group_wait", "group_interval", "repeat_interval",
    "routes",
}  # fmt: skip
MATCH_OPERATORS = {"=", "!=", "=~", "!~"}
UID = re.compile(r"[A-Za-z0-9_-]{1,40}")  # Grafana's rule for provisioned uids

CONFIGS = {
    "defaults": SpancostConfig(),
    "slack and email": SpancostConfig(
        notify=NotifyConfig(slack_channel="#llm-spend", email=("finops@example.com", "cto@example.org"))
    ),
    "email only": SpancostConfig(notify=NotifyConfig(slack_webhook_env="", email=("finops@example.com",))),
    "nothing to notify": SpancostConfig(notify=NotifyConfig(slack_webhook_env="")),
    "another server": SpancostConfig(
        grafana=GrafanaConfig(
            clickhouse_host="ch.example.net",
            clickhouse_port=9440,
            clickhouse_protocol="native",
            clickhouse_secure=True,
            clickhouse_database="telemetry",
            clickhouse_user="reader",
            clickhouse_password_env="CH_READER_PASSWORD",
        )
    ),
}


def all_documents(config: SpancostConfig) -> dict[str, dict[str, Any]]:
    """Every provisioning document, by the file it is written to."""
    return {
        DATASOURCES_FILE: datasource_provisioning(config),
        DASHBOARD_PROVIDER_FILE: dashboards_provider(),
        CONTACT_POINTS_FILE: contact_points(config),
        POLICIES_FILE: notification_policies(config),
    }


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


# --- Grafana's variable expansion in provisioning files ------------------------------------------------

_GRAFANA_VARIABLE = re.compile(r"\$__env\{([^}]*)\}|\$\{([^}]*)\}|\$([A-Za-z0-9_]+)")


def grafana_expand(value: str, environ: Mapping[str, str]) -> str:
    """pkg/services/provisioning/values: split on `$$` (a literal `$`), expand `$__env{NAME}`
    (setting.ExpandVar), then `${NAME}` and `$NAME` (os.ExpandEnv; unset is empty), join with `$`."""

    def expand(match: re.Match[str]) -> str:
        return environ.get(match[1] or match[2] or match[3], "")

    return "$".join(_GRAFANA_VARIABLE.sub(expand, part) for part in value.split("$$"))


def referenced_variables(value: str) -> set[str]:
    names = set()
    for part in value.split("$$"):
        names.update(m[1] or m[2] or m[3] for m in _GRAFANA_VARIABLE.finditer(part))
    return names


def test_the_expansion_model_follows_grafana() -> None:
    env = {"A": "x", "B_2": "y"}
    assert grafana_expand("${A}-$B_2-$__env{A}", env) == "x-y-x"
    assert grafana_expand("${MISSING}", env) == ""
    assert grafana_expand("cost $$5 ${A}", env) == "cost $5 x"


# --- the compose file ----------------------------------------------------------------------------------

_COMPOSE_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}")


def compose_expand(value: Any) -> Any:
    """`docker compose up` with no variable set: `${X:-default}` is its default, `${X}` empty."""
    if isinstance(value, dict):
        return {key: compose_expand(item) for key, item in value.items()}
    if isinstance(value, list):
        return [compose_expand(item) for item in value]
    if not isinstance(value, str):
        return value
    return _COMPOSE_VARIABLE.sub(lambda m: "$" if m[0] == "$$" else (m[2] or ""), value)


RAW_COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
COMPOSE = compose_expand(RAW_COMPOSE)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def service_by_image(repository: str) -> tuple[str, dict[str, Any]]:
    found = [
        (name, service)
        for name, service in SERVICES.items()
        if str(service.get("image", "")).split("@")[0].rsplit(":", 1)[0] == repository
    ]
    assert len(found) == 1, f"{len(found)} services run {repository}"
    return found[0]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of each bind mount in the short syntax."""
    found = []
    for volume in service.get("volumes") or []:
        source, target, *mode = volume.split(":")
        if source.startswith((".", "/")):
            found.append((source, target, mode[0] if mode else "rw"))
    return found


def container_port(mapping: str) -> int:
    return int(str(mapping).split(":")[-1].split("/")[0])


GRAFANA_NAME, GRAFANA = service_by_image("grafana/grafana")
CLICKHOUSE_NAME, CLICKHOUSE = service_by_image("clickhouse/clickhouse-server")


# --- the datasource ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_document_is_plain_data_that_survives_yaml_and_json(name: str) -> None:
    for path, document in all_documents(CONFIGS[name]).items():
        assert document["apiVersion"] == 1, path
        assert yaml.safe_load(yaml.safe_dump(document, sort_keys=False)) == document, path
        assert json.loads(json.dumps(document)) == document, path
        assert path.endswith(".yaml"), f"{path}: Grafana reads datasources only from .yaml/.yml files"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_datasource_is_in_grafanas_format_with_the_plugins_settings(name: str) -> None:
    config = CONFIGS[name]
    document = datasource_provisioning(config)
    assert set(document) == {"apiVersion", "datasources"}
    (datasource,) = document["datasources"]
    assert set(datasource) <= DATASOURCE_KEYS
    assert datasource["uid"] == DATASOURCE_UID == "spancost-clickhouse"
    assert datasource["type"] == PLUGIN_ID == "grafana-clickhouse-datasource"
    assert isinstance(datasource["name"], str)
    assert datasource["name"]
    assert datasource["orgId"] == 1
    assert datasource["access"] == "proxy"
    assert datasource["isDefault"] is True
    assert datasource["editable"] is False

    json_data = datasource["jsonData"]
    assert set(json_data) <= PLUGIN_JSON_DATA_KEYS
    grafana = config.grafana
    assert json_data["host"] == grafana.clickhouse_host
    assert type(json_data["port"]) is int
    assert json_data["port"] == grafana.clickhouse_port
    assert json_data["protocol"] == grafana.clickhouse_protocol
    assert json_data["protocol"] in {"http", "native"}
    assert json_data["secure"] is grafana.clickhouse_secure
    assert json_data["username"] == grafana.clickhouse_user
    assert json_data["defaultDatabase"] == grafana.clickhouse_database
    assert json_data["version"] == PLUGIN_VERSION

    traces = json_data["traces"]
    assert set(traces) <= PLUGIN_TRACES_KEYS
    assert traces["defaultDatabase"] == grafana.clickhouse_database
    assert traces["defaultTable"] == TRACES_TABLE == "otel_traces"
    assert traces["otelEnabled"] is True
    assert traces["otelVersion"] == OTEL_SCHEMA_VERSION
    assert traces["otelVersion"] in PLUGIN_OTEL_VERSIONS
    assert traces["durationUnit"] in PLUGIN_DURATION_UNITS
    assert traces["durationUnit"] == "nanoseconds", "otel_traces.Duration is in nanoseconds"
    assert traces["traceIdColumn"] == "TraceId", "the plugin's 'View trace' link needs the TraceId column"
    assert traces.get("showTraceLinks", True) is not False


def test_the_default_datasource_is_the_compose_stores_database() -> None:
    json_data = datasource_provisioning(SpancostConfig())["datasources"][0]["jsonData"]
    assert json_data["defaultDatabase"] == DEFAULT_DATABASE
    assert TRACES_TABLE in DISTRIBUTED_TABLES
    assert TRACES_TABLE + TRACE_ID_TS_SUFFIX in DISTRIBUTED_TABLES


def test_the_trace_settings_name_columns_the_store_has(store: Any) -> None:
    """The columns and the trace-id lookup table the plugin's trace view reads, in spancost's real schema."""
    traces = datasource_provisioning(SpancostConfig())["datasources"][0]["jsonData"]["traces"]

    def columns(table: str) -> set[str]:
        rows = store.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {table:String}",
            {"db": store.database, "table": table},
        ).rows
        return {name for (name,) in rows}

    traces_columns = columns(traces["defaultTable"])
    assert traces_columns, f"spancost's schema has no table {traces['defaultTable']}"
    named = {value for key, value in traces.items() if key.endswith("Column")}
    assert named == set(TRACE_COLUMNS.values())
    assert named <= traces_columns, f"not in otel_traces: {sorted(named - traces_columns)}"
    for prefix in (traces["traceEventsColumnPrefix"], traces["traceLinksColumnPrefix"]):
        assert any(name.startswith(prefix + ".") for name in traces_columns), prefix
    lookup = columns(traces["defaultTable"] + traces["traceTimestampTableSuffix"])
    assert {"TraceId", "Start", "End"} <= lookup


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_password_is_an_environment_reference(name: str) -> None:
    config = CONFIGS[name]
    (datasource,) = datasource_provisioning(config)["datasources"]
    secure = datasource["secureJsonData"]
    assert set(secure) <= PLUGIN_SECURE_KEYS
    variable = config.grafana.clickhouse_password_env
    assert secure == {"password": "${" + variable + "}"}
    assert grafana_expand(secure["password"], {variable: "s3cret"}) == "s3cret"
    assert "password" not in datasource["jsonData"]


def test_no_password_variable_means_no_secure_settings() -> None:
    config = SpancostConfig(grafana=GrafanaConfig(clickhouse_password_env=""))
    (datasource,) = datasource_provisioning(config)["datasources"]
    assert "secureJsonData" not in datasource


# --- the dashboards provider ---------------------------------------------------------------------------


def test_the_dashboards_provider() -> None:
    document = dashboards_provider()
    assert set(document) == {"apiVersion", "providers"}
    (provider,) = document["providers"]
    assert set(provider) <= PROVIDER_KEYS
    assert provider["type"] == "file"
    assert provider["name"] == "spancost"
    assert provider["orgId"] == 1
    assert provider["folder"] == FOLDER_TITLE == "spancost"
    assert provider["allowUiUpdates"] is False
    assert provider["disableDeletion"] is True
    assert type(provider["updateIntervalSeconds"]) is int
    assert provider["updateIntervalSeconds"] > 0
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards/spancost"
    assert provider["options"]["path"] == f"{CONTAINER_PROVISIONING_DIR}/{DASHBOARDS_DIR}"


def test_the_provider_file_is_where_grafana_looks_and_the_dashboards_are_not() -> None:
    """Grafana reads dashboard providers from the *.yaml files directly in provisioning/dashboards; the
    dashboards' JSON lives in a folder below it, which the provider points at."""
    provider_file = PurePosixPath(DASHBOARD_PROVIDER_FILE)
    assert provider_file.parent == PurePosixPath("dashboards")
    assert provider_file.suffix == ".yaml"
    assert PurePosixPath(DASHBOARDS_DIR).parent == PurePosixPath("dashboards")
    assert PurePosixPath(DATASOURCES_FILE).parent == PurePosixPath("datasources")
    assert PurePosixPath(CONTACT_POINTS_FILE).parent == PurePosixPath("alerting")
    assert PurePosixPath(POLICIES_FILE).parent == PurePosixPath("alerting")


# --- contact points ------------------------------------------------------------------------------------


def receivers_of(config: SpancostConfig) -> dict[str, dict[str, Any]]:
    document = contact_points(config)
    assert set(document) == {"apiVersion", "contactPoints"}
    found: dict[str, dict[str, Any]] = {}
    for point in document["contactPoints"]:
        assert set(point) == CONTACT_POINT_KEYS
        assert point["orgId"] == 1
        assert point["name"] == CONTACT_POINT_NAME
        assert point["receivers"], "a contact point with no integration cannot be provisioned"
        for receiver in point["receivers"]:
            assert set(receiver) <= RECEIVER_KEYS
            assert {"uid", "type", "settings"} <= set(receiver)
            assert UID.fullmatch(receiver["uid"]), receiver["uid"]
            assert isinstance(receiver["settings"], dict)
            assert receiver["settings"]
            assert isinstance(receiver.get("disableResolveMessage", False), bool)
            # the SDK's model of an integration reads and writes the same keys
            assert sdk.ContactPoint.from_json(receiver).to_json() == receiver
            assert receiver["type"] not in found
            found[receiver["type"]] = receiver
    return found


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_contact_points_are_in_grafanas_format(name: str) -> None:
    config = CONFIGS[name]
    receivers = receivers_of(config)
    expected = {"slack"} if config.notify.slack_enabled else set()
    if config.notify.email:
        expected.add("email")
    assert set(receivers) == expected


def test_the_slack_integration_reads_the_webhook_from_the_environment() -> None:
    config = CONFIGS["slack and email"]
    slack = receivers_of(config)["slack"]
    assert slack["uid"] == SLACK_RECEIVER_UID
    assert set(slack["settings"]) <= SLACK_SETTINGS
    assert slack["settings"]["url"] == "${SPANCOST_SLACK_WEBHOOK_URL}"
    assert slack["settings"]["recipient"] == "#llm-spend"
    hook = "https://hooks.slack.com/services/T000/B000/XXXX"
    assert grafana_expand(slack["settings"]["url"], {"SPANCOST_SLACK_WEBHOOK_URL": hook}) == hook
    assert "recipient" not in receivers_of(SpancostConfig())["slack"]["settings"]


def test_the_email_integration_lists_the_addresses() -> None:
    email = receivers_of(CONFIGS["slack and email"])["email"]
    assert email["uid"] == EMAIL_RECEIVER_UID
    assert set(email["settings"]) <= EMAIL_SETTINGS
    assert email["settings"]["addresses"] == "finops@example.com;cto@example.org"


def test_nothing_to_notify_provisions_no_contact_point() -> None:
    assert contact_points(CONFIGS["nothing to notify"])["contactPoints"] == []


# --- the notification policy ---------------------------------------------------------------------------


def walk_routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes") or []:
        yield from walk_routes(child)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_policy_tree_is_in_grafanas_format_and_routes_to_a_real_contact_point(name: str) -> None:
    config = CONFIGS[name]
    document = notification_policies(config)
    assert set(document) == {"apiVersion", "policies"}
    (policy,) = document["policies"]
    assert policy["orgId"] == 1
    tree = {key: value for key, value in policy.items() if key != "orgId"}
    assert (
        json.loads(json.dumps(sdk.NotificationPolicy.from_json(tree), default=lambda m: m.to_json())) == tree
    )
    provisioned = {point["name"] for point in contact_points(config)["contactPoints"]}
    expected = CONTACT_POINT_NAME if provisioned else GRAFANA_DEFAULT_RECEIVER
    assert policy["receiver"] == expected, "the root must name a receiver (Grafana rejects a tree without)"
    assert policy["group_by"][:2] == ["grafana_folder", "alertname"]
    assert "object_matchers" not in policy, "the root route matches every alert"
    labelled = []
    for route in walk_routes(tree):
        assert set(route) <= ROUTE_KEYS
        assert route.get("receiver", policy["receiver"]) in provisioned | {GRAFANA_DEFAULT_RECEIVER}
        for matcher in route.get("object_matchers") or []:
            label, operator, value = matcher
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label)
            assert operator in MATCH_OPERATORS
            assert isinstance(value, str)
            if label == ALERT_LABEL:
                labelled.append(route)
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                assert re.fullmatch(r"\d+[smhd]", route[key]), (key, route[key])
    assert len(labelled) == 1, f"one route for alerts labelled {ALERT_LABEL}"
    assert labelled[0]["receiver"] == expected


# --- no secret in any file ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_no_secret_is_written_and_every_variable_is_a_reference(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = CONFIGS[name]
    secrets = {
        config.grafana.clickhouse_password_env or "CLICKHOUSE_PASSWORD": "pw-0123456789",
        config.notify.slack_webhook_env or "SPANCOST_SLACK_WEBHOOK_URL": "https://hooks.example/T/B/secret",
    }
    for variable, secret in secrets.items():
        monkeypatch.setenv(variable, secret)
    for path, document in all_documents(config).items():
        text = yaml.safe_dump(document)
        for secret in secrets.values():
            assert secret not in text, f"{path} holds a secret"
        for value in strings(document):
            if "$" in value:
                # the whole value is one reference Grafana expands: no stray `$` it would eat
                assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", value), (path, value)


def test_the_expanded_references_are_the_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "pw")
    monkeypatch.setenv("SPANCOST_SLACK_WEBHOOK_URL", "https://hooks.example/x")
    config = SpancostConfig()
    (datasource,) = datasource_provisioning(config)["datasources"]
    assert grafana_expand(datasource["secureJsonData"]["password"], os.environ) == "pw"
    slack = receivers_of(config)["slack"]
    assert grafana_expand(slack["settings"]["url"], os.environ) == "https://hooks.example/x"


# --- the compose grafana service -----------------------------------------------------------------------


def test_grafana_is_a_pinned_12_image() -> None:
    assert re.fullmatch(r"grafana/grafana:12\.\d+\.\d+", GRAFANA["image"]), GRAFANA["image"]


def test_the_plugin_is_preinstalled_at_the_pinned_version() -> None:
    env = environment(GRAFANA)
    entries = [entry.strip() for entry in env["GF_PLUGINS_PREINSTALL_SYNC"].split(",") if entry.strip()]
    plugins = dict(entry.split("@", 1) if "@" in entry else (entry, "") for entry in entries)
    assert plugins.get(PLUGIN_ID) == PLUGIN_VERSION, env["GF_PLUGINS_PREINSTALL_SYNC"]
    assert re.fullmatch(r"4\.\d+\.\d+", PLUGIN_VERSION)
    assert env.get("GF_PLUGINS_PREINSTALL_AUTO_UPDATE") == "false", "a pinned plugin must not auto-update"
    assert "GF_INSTALL_PLUGINS" not in env, "one way of installing plugins"


def test_the_provisioning_directory_is_mounted_where_the_provider_looks() -> None:
    mounts = [m for m in bind_mounts(GRAFANA) if m[1] == CONTAINER_PROVISIONING_DIR]
    assert len(mounts) == 1, bind_mounts(GRAFANA)
    source, target, mode = mounts[0]
    assert (COMPOSE_FILE.parent / source).resolve() == (REPO / PROVISIONING_DIR).resolve()
    assert mode == "ro"
    path = PurePosixPath(dashboards_provider()["providers"][0]["options"]["path"])
    inside = path.relative_to(target)  # raises when the path is outside the mount
    assert inside == PurePosixPath(DASHBOARDS_DIR)
    # and on the host, that is where `spancost dashboards build` writes the dashboards' JSON
    assert (COMPOSE_FILE.parent / source / inside).resolve() == (
        REPO / PROVISIONING_DIR / DASHBOARDS_DIR
    ).resolve()


def test_the_datasource_points_at_the_compose_clickhouse() -> None:
    json_data = datasource_provisioning(SpancostConfig())["datasources"][0]["jsonData"]
    assert json_data["host"] == CLICKHOUSE_NAME
    assert json_data["protocol"] == "http"
    assert json_data["port"] == 8123, "ClickHouse's HTTP port"
    assert json_data["port"] in {container_port(p) for p in CLICKHOUSE.get("ports") or []} | {
        int(p) for p in CLICKHOUSE.get("expose") or []
    }
    clickhouse_env = environment(CLICKHOUSE)
    assert json_data["defaultDatabase"] == clickhouse_env["CLICKHOUSE_DB"]
    assert json_data["username"] == clickhouse_env["CLICKHOUSE_USER"]
    grafana_env = environment(GRAFANA)
    assert grafana_env["CLICKHOUSE_PASSWORD"] == clickhouse_env["CLICKHOUSE_PASSWORD"], (
        "Grafana's password for ClickHouse is ClickHouse's"
    )
    depends = GRAFANA["depends_on"]
    assert depends[CLICKHOUSE_NAME]["condition"] == "service_healthy"
    assert CLICKHOUSE.get("healthcheck"), "grafana waits for a health check clickhouse does not have"


def test_every_variable_the_provisioning_references_reaches_grafana() -> None:
    """Under compose's defaults (nothing set): every `${NAME}` is in the container's environment and
    expands to something Grafana accepts, so Grafana starts without any variable set."""
    env = environment(GRAFANA)
    config = SpancostConfig()
    referenced = set()
    for document in all_documents(config).values():
        for value in strings(document):
            referenced |= referenced_variables(value)
    assert referenced == {"CLICKHOUSE_PASSWORD", "SPANCOST_SLACK_WEBHOOK_URL"}
    for variable in referenced:
        assert env.get(variable), f"{variable} is not passed to the grafana container"
    # Grafana's Slack integration: an empty URL falls back to the chat API, which then needs a token,
    # and a provisioning error stops Grafana from starting
    slack = receivers_of(config)["slack"]
    url = urlsplit(grafana_expand(slack["settings"]["url"], env))
    assert url.scheme in {"http", "https"}
    assert url.netloc
    raw = environment(RAW_COMPOSE["services"][GRAFANA_NAME])["SPANCOST_SLACK_WEBHOOK_URL"]
    assert raw.startswith("${SPANCOST_SLACK_WEBHOOK_URL:-"), "the webhook URL comes from the environment"


def test_grafana_is_reachable_healthy_and_closed() -> None:
    assert 3000 in {container_port(p) for p in GRAFANA.get("ports") or []}
    check = GRAFANA["healthcheck"]["test"]
    check = " ".join(check) if isinstance(check, list) else check
    assert "localhost:3000/api/health" in check
    env = environment(GRAFANA)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    raw = environment(RAW_COMPOSE["services"][GRAFANA_NAME])
    assert re.fullmatch(r"\$\{\w+:-[^}]+\}", raw["GF_SECURITY_ADMIN_PASSWORD"]), (
        "the admin password comes from the environment, with a default for local use only"
    )


def test_grafanas_data_is_on_a_declared_named_volume() -> None:
    named = {}
    for volume in GRAFANA.get("volumes") or []:
        source, target, *_ = volume.split(":")
        if not source.startswith((".", "/")):
            named[target] = source
    assert "/var/lib/grafana" in named
    assert named["/var/lib/grafana"] in (COMPOSE.get("volumes") or {})
