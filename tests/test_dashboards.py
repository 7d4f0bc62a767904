"""The dashboards and alert rules, run as Grafana would run them: every panel's and variable's SQL, with
the ClickHouse plugin's macros and the template variables expanded, against an embedded store filled
with a generated month of traffic; every alert rule quiet on that month and firing once its anomaly is
planted; the generated files checked against Grafana's provisioning formats and against a fresh build.

Grafana cannot run here; what it needs of a query result is spelled out below from its panel types:
a time series panel needs a time column first and numbers, a stat panel a numeric field its reducer
names, a bar chart the string field its x axis names, a table the columns its overrides name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, record_calls

from spancost import queries
from spancost.cli.app import cli
from spancost.collector.schema import SchemaConfig
from spancost.config import AlertsConfig, BudgetConfig, SpancostConfig, load_config
from spancost.dashboards import alerts, build, grafana
from spancost.dashboards.clickhouse import Format
from spancost.dashboards.datasource import DASHBOARDS_DIR, DATASOURCE_UID, FOLDER_TITLE, PLUGIN_ID
from spancost.demo.traffic import GROWN_PROMPT, TrafficPlan, generate
from spancost.store import Store

_values = grafana.variable_values

UTC = dt.timezone.utc
END = dt.datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
"""A Wednesday afternoon in the middle of a month: 'today', 'this month' and 'last week' all have data."""
PLAN = TrafficPlan(calls=30_000, days=36, end=END, seed=11)
ANOMALIES = ("spend_spike", "fast_burn", "prompt_grew")
BUDGET_HEADROOM = 1.3
"""The test budget: this much above the month-end the plain traffic projects to."""

PROVISIONING = REPO / "dashboards" / "provisioning"
NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*)\)?$")
TIME = re.compile(r"^(Nullable\()?(Date|Date32|DateTime|DateTime64)(\(.*\))?\)?$")
STRING = re.compile(r"^(Nullable\()?(LowCardinality\()?(String|FixedString\(\d+\))\)?\)?$")


# --- the stores ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stores(chdb_dir: Path) -> Iterator[dict[str, Store]]:
    """The plain month, and the same month with each anomaly planted (the plain part is identical)."""
    opened: dict[str, Store] = {}
    try:
        for name in ("plain", *ANOMALIES):
            store = Store(f"chdb://{chdb_dir}", config=SchemaConfig(database=f"dash_{name}"))
            anomalies = frozenset() if name == "plain" else frozenset({name})
            generate(store, dataclasses.replace(PLAN, anomalies=anomalies))
            opened[name] = store
        yield opened
    finally:
        for name, store in opened.items():
            store.command(f"DROP DATABASE IF EXISTS `dash_{name}`")
            store.close()


@pytest.fixture(scope="module")
def plain(stores: dict[str, Store]) -> Store:
    return stores["plain"]


@pytest.fixture(scope="module")
def config(plain: Store) -> SpancostConfig:
    """The defaults, with a budget the plain month stays inside and a fast burn does not."""
    projected = _run(
        plain, queries.load("month_to_date").sql, _month_range(), {**queries.ALL_FILTERS, "budget_usd": "0"}
    )
    budget = round(float(projected.rows[0][projected.columns.index("projected_usd")]) * BUDGET_HEADROOM)
    return dataclasses.replace(SpancostConfig(), budget=BudgetConfig(monthly_usd=budget))


def _month_range() -> queries.TimeRange:
    return queries.TimeRange(END - dt.timedelta(days=30), END)


@dataclasses.dataclass
class Typed:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]

    def column(self, name: str) -> list[Any]:
        return [row[self.columns.index(name)] for row in self.rows]


def _run(
    store: Store,
    sql: str,
    time_range: queries.TimeRange,
    variables: dict[str, Any],
    interval_s: float | None = None,
) -> Typed:
    expanded = queries.expand(sql, time_range, interval_s=interval_s, variables=variables)
    result = store.client.query(expanded)
    return Typed(list(result.column_names), [t.name for t in result.column_types], list(result.result_rows))


# --- the dashboards as Grafana reads them -------------------------------------------------------------------


def _models() -> dict[str, dict[str, Any]]:
    return build.dashboard_models(load_config(REPO / "spancost.toml"))


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [
        (stem, panel)
        for stem, model in _models().items()
        for panel in model["panels"]
        if panel["type"] != "row"
    ]


PANELS = _panels()
PANEL_IDS = [f"{stem}:{panel['title']}" for stem, panel in PANELS]


def _stem(stem: str) -> dict[str, Any]:
    return _models()[stem]


def test_the_committed_provisioning_is_a_fresh_build() -> None:
    """Edit the code or spancost.toml without running `spancost dashboards build` and this fails."""
    assert build.differences(load_config(REPO / "spancost.toml"), PROVISIONING) == []


def test_dashboards_build_writes_and_check_finds_a_stale_file(tmp_path: Path) -> None:
    runner = CliRunner()
    config = str(REPO / "spancost.toml")
    written = runner.invoke(cli, ["dashboards", "build", "--config", config, "--out", str(tmp_path)])
    assert written.exit_code == 0, written.output
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        p.relative_to(PROVISIONING).as_posix() for p in PROVISIONING.rglob("*") if p.is_file()
    )
    fresh = runner.invoke(cli, ["dashboards", "build", "--config", config, "--out", str(tmp_path), "--check"])
    assert fresh.exit_code == 0, fresh.output

    stale = tmp_path / DASHBOARDS_DIR / "overview.json"
    stale.write_text(stale.read_text().replace("LLM cost overview", "Edited by hand"))
    (tmp_path / DASHBOARDS_DIR / "old.json").write_text("{}")
    checked = runner.invoke(
        cli, ["dashboards", "build", "--config", config, "--out", str(tmp_path), "--check"]
    )
    assert checked.exit_code == 1
    assert "overview.json: differs from a fresh build" in checked.output
    assert "old.json: not made by the build any more" in checked.output

    rebuilt = runner.invoke(cli, ["dashboards", "build", "--config", config, "--out", str(tmp_path)])
    assert rebuilt.exit_code == 0
    assert not (tmp_path / DASHBOARDS_DIR / "old.json").exists()
    assert build.differences(load_config(config), tmp_path) == []


def test_the_budget_in_spancost_toml_lands_in_the_dashboard_and_the_rules(tmp_path: Path) -> None:
    toml = tmp_path / "spancost.toml"
    toml.write_text("[budget]\nmonthly_usd = 2500\n[alerts]\nanomaly_days = 14\nprompt_jump_pct = 35\n")
    files = build.render(load_config(toml))
    overview = yaml.safe_load(files[f"{DASHBOARDS_DIR}/overview.json"])
    budget = next(v for v in overview["templating"]["list"] if v["name"] == "budget_usd")
    assert budget["type"] == "constant"
    assert budget["query"] == "2500"
    rules = {r["uid"]: r for r in yaml.safe_load(files[alerts.RULES_FILE])["groups"][0]["rules"]}
    assert "2500" in rules["spancost-budget-pace"]["data"][0]["model"]["rawSql"]
    assert "toIntervalDay(14)" in rules["spancost-spend-anomaly"]["data"][0]["model"]["rawSql"]
    jump = rules["spancost-prompt-cost-jump"]["data"][2]["model"]["conditions"][0]["evaluator"]
    assert jump == {"type": "gt", "params": [35.0]}


def test_the_dashboard_models_are_in_grafanas_format() -> None:
    models = _models()
    assert {m["uid"] for m in models.values()} == {
        "spancost-overview",
        "spancost-agent-runs",
        "spancost-prompt",
    }
    for stem, model in models.items():
        assert model["schemaVersion"] >= 39, stem
        assert model["title"], stem
        assert len(model["uid"]) <= 40, stem
        ids = [panel["id"] for panel in model["panels"]]
        assert ids == list(range(1, len(ids) + 1)), stem
        names = {variable["name"] for variable in model["templating"]["list"]}
        assert {"service", "workspace", "feature", "prompt", "model"} <= names, stem
        for panel in model["panels"]:
            grid = panel["gridPos"]
            assert 0 <= grid["x"] < grid["x"] + grid["w"] <= 24, (stem, panel["title"])
            assert grid["h"] > 0, (stem, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": PLUGIN_ID, "uid": DATASOURCE_UID}
            (target,) = panel["targets"]
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["editorType"] == "sql"
            wanted = Format.TIME_SERIES if panel["type"] == "timeseries" else Format.TABLE
            assert target["format"] == wanted, (stem, panel["title"])
            assert "{{" not in target["rawSql"], "an unresolved query fragment"
            used = set(re.findall(r"\$(?!__)\{?(\w+)", target["rawSql"]))
            assert used <= names, (stem, panel["title"], used - names)


# --- every panel against a month of traffic -----------------------------------------------------------------


def _check_fits(panel: dict[str, Any], result: Typed) -> None:
    kind, where = panel["type"], panel["title"]
    assert result.rows, f"{where}: no rows on a month of traffic"
    numeric = [c for c, t in zip(result.columns, result.types, strict=True) if NUMERIC.match(t)]
    if kind == "timeseries":
        assert TIME.match(result.types[0]), f"{where}: first column {result.types[0]} is not a time"
        assert numeric, f"{where}: no numeric column"
        others = [t for t in result.types[1:] if not NUMERIC.match(t)]
        assert all(STRING.match(t) for t in others), f"{where}: {others} neither numbers nor labels"
        times = result.column(result.columns[0])
        assert times == sorted(times), f"{where}: not in time order (Grafana needs ascending time)"
    elif kind == "stat":
        field = panel["options"]["reduceOptions"]["fields"].strip("/^$")
        assert field in numeric, f"{where}: {field} is not a numeric column of {result.columns}"
        assert result.column(field)[-1] is not None, f"{where}: {field} is NULL"
    elif kind == "barchart":
        x_field = panel["options"]["xField"]
        assert STRING.match(result.types[result.columns.index(x_field)]), f"{where}: x axis {x_field}"
        assert numeric, f"{where}: nothing to draw"
    elif kind == "table":
        for override in panel["fieldConfig"]["overrides"]:
            assert override["matcher"]["options"] in result.columns, (where, override["matcher"])
    else:
        raise AssertionError(f"{where}: no check for panel type {kind}")


def _choices(plain: Store) -> dict[str, str]:
    """A value of each filter that the traffic has (its busiest)."""
    picks = {}
    for label, column in (
        ("service", "ServiceName"),
        ("workspace", "WorkspaceId"),
        ("feature", "Feature"),
        ("prompt", "PromptName"),
        ("model", "Model"),
    ):
        picks[label] = plain.query(
            f"SELECT {column} FROM llm_calls WHERE {column} != '' "
            f"GROUP BY {column} ORDER BY count() DESC LIMIT 1"
        ).single_value()
    return picks


@pytest.mark.parametrize(("stem", "panel"), PANELS, ids=PANEL_IDS)
def test_every_panel_query_runs_and_gives_its_panel_what_it_needs(
    plain: Store, stem: str, panel: dict[str, Any]
) -> None:
    model = _stem(stem)
    time_range = grafana.time_range(model, END)
    chosen = {"prompt": [_choices(plain)["prompt"]]} if stem == "prompt" else {}
    result = _run(
        plain,
        panel["targets"][0]["rawSql"],
        time_range,
        _values(model, chosen),
        grafana.interval_seconds(panel, time_range),
    )
    _check_fits(panel, result)


@pytest.mark.parametrize(("stem", "panel"), PANELS, ids=PANEL_IDS)
def test_every_panel_honours_every_filter(plain: Store, stem: str, panel: dict[str, Any]) -> None:
    """Each filter set to one value, then two, narrows the panel's query (and still fits its panel)."""
    model = _stem(stem)
    time_range = grafana.time_range(model, END)
    sql = panel["targets"][0]["rawSql"]
    picks = _choices(plain)
    base = {"prompt": [picks["prompt"]]} if stem == "prompt" else {}
    for label, value in picks.items():
        for chosen in ([value], [value, "no-such-value"]):
            result = _run(plain, sql, time_range, _values(model, base | {label: chosen}), 86400)
            if result.rows:
                _check_fits(panel, result)
    nothing = _run(
        plain,
        sql,
        time_range,
        _values(model, {"service": ["no-such-service"], "prompt": ["none"]}),
        86400,
    )
    if panel["type"] in ("timeseries", "table", "barchart"):
        assert nothing.rows == [], f"{panel['title']}: a filter matching nothing still shows rows"
    else:
        field = panel["options"]["reduceOptions"]["fields"].strip("/^$")
        values = nothing.column(field)
        assert all(not v for v in values), f"{panel['title']}: a filter matching nothing gives {values}"


def test_a_filtered_panel_adds_up_to_the_store(plain: Store) -> None:
    """Daily spend for one service and two workspaces equals what llm_calls holds for them."""
    model = _stem("overview")
    time_range = _month_range()
    picks = _choices(plain)
    workspaces = [
        r[0]
        for r in plain.query(
            "SELECT WorkspaceId FROM llm_calls GROUP BY WorkspaceId ORDER BY WorkspaceId LIMIT 2"
        )
    ]
    chosen = {"service": [picks["service"]], "workspace": workspaces}
    daily = _run(plain, queries.load("daily_spend").sql, time_range, _values(model, chosen), 86400)
    expected = plain.query(
        "SELECT sum(CostUSD), count() FROM llm_calls FINAL WHERE ServiceName = {s:String} "
        "AND WorkspaceId IN {w:Array(String)} AND Timestamp >= {a:DateTime} AND Timestamp <= {b:DateTime}",
        {"s": picks["service"], "w": workspaces, "a": time_range.start, "b": time_range.end},
    ).rows[0]
    assert sum(daily.column("cost_usd")) == expected[0]
    assert sum(daily.column("calls")) == expected[1] > 0


@pytest.mark.parametrize("stem", ["overview", "agent-runs", "prompt"])
def test_every_variable_lists_the_values_the_traffic_has(plain: Store, stem: str) -> None:
    model = _stem(stem)
    time_range = grafana.time_range(model, END)
    columns = {"service": "ServiceName", "workspace": "WorkspaceId", "feature": "Feature"}
    columns |= {"prompt": "PromptName", "model": "Model"}
    for variable in model["templating"]["list"]:
        if variable["type"] != "query":
            continue
        assert variable["datasource"]["uid"] == DATASOURCE_UID
        assert variable["multi"] is True
        listed = _run(plain, variable["query"]["rawSql"], time_range, {})
        assert len(listed.columns) == 1, variable["name"]
        assert STRING.match(listed.types[0]), variable["name"]
        column = columns[variable["name"]]
        expected = plain.query(
            f"SELECT DISTINCT {column} FROM llm_calls WHERE {column} != '' AND toDate(Timestamp) >= "
            "{a:Date} AND toDate(Timestamp) <= {b:Date} ORDER BY 1",
            {"a": time_range.start.date(), "b": time_range.end.date()},
        )
        assert [r[0] for r in listed.rows] == [r[0] for r in expected] != [], variable["name"]


def test_the_agent_run_tables_open_traces_the_store_has(plain: Store) -> None:
    model = _stem("agent-runs")
    time_range = grafana.time_range(model, END)
    tables = [p for p in model["panels"] if p["type"] == "table"]
    assert len(tables) == 2
    for panel in tables:
        (link_override,) = [
            o for o in panel["fieldConfig"]["overrides"] if o["properties"][0]["id"] == "links"
        ]
        field = link_override["matcher"]["options"]
        link = link_override["properties"][0]["value"][0]
        query = link["internal"]["query"]
        assert link["internal"]["datasourceUid"] == DATASOURCE_UID
        assert query["queryType"] == "traces"
        assert query["format"] == Format.TRACE
        options = query["builderOptions"]
        assert options["table"] == "otel_traces"
        assert options["meta"]["isTraceIdMode"] is True
        assert options["meta"]["traceId"] == "${__value.raw}"
        result = _run(plain, panel["targets"][0]["rawSql"], time_range, _values(model), 3600)
        trace_ids = result.column(field)
        assert len(trace_ids) == 50
        assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in trace_ids)
        found = plain.query(
            "SELECT count(DISTINCT TraceId) FROM otel_traces_trace_id_ts WHERE TraceId IN {t:Array(String)}",
            {"t": trace_ids},
        ).single_value()
        assert found == 50
    costliest = _run(plain, tables[0]["targets"][0]["rawSql"], time_range, _values(model), 3600)
    costs = costliest.column("cost_usd")
    assert costs == sorted(costs, reverse=True)
    top = costliest.rows[0]
    spans = plain.query(
        "SELECT sum(CostUSD), count() FROM llm_calls FINAL WHERE TraceId = {t:String}", {"t": top[0]}
    ).rows[0]
    assert (top[costliest.columns.index("cost_usd")], top[costliest.columns.index("calls")]) == spans


# --- cache savings, by hand ---------------------------------------------------------------------------------


def test_cache_savings_are_the_cached_tokens_at_the_input_rate_less_their_cost(
    store: Store, chdb_dir: Path
) -> None:
    at = dt.datetime(2026, 11, 10, 12, tzinfo=UTC)
    cache_read, cache_write = "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_write.input_tokens"
    record_calls(
        f"chdb://{chdb_dir}",
        store.database,
        [
            # claude-sonnet-4-5: $3/M input, $0.30/M cache read. 8,000 of 10,000 input tokens from the
            # cache: they would have cost 8,000 x $3/M = $0.024 and cost 8,000 x $0.30/M = $0.0024.
            {"at": at, "provider": "anthropic", "model": "claude-sonnet-4-5", "input": 10_000, "output": 0,
             "attributes": {cache_read: 8_000}},
            # gpt-4.1-mini: $0.40/M input, $0.10/M cached: 4,096 x $0.30/M = $0.0012288 saved.
            {"at": at, "model": "gpt-4.1-mini", "input": 5_000, "output": 10,
             "attributes": {cache_read: 4_096}},
            # a cache write saves nothing yet
            {"at": at, "provider": "anthropic", "model": "claude-sonnet-4-5", "input": 3_000, "output": 5,
             "attributes": {cache_write: 1_000}},
        ],
    )  # fmt: skip
    time_range = queries.TimeRange(at - dt.timedelta(days=1), at + dt.timedelta(days=1))
    result = _run(store, queries.load("cache_savings").sql, time_range, dict(queries.ALL_FILTERS))
    row = dict(zip(result.columns, result.rows[0], strict=True))
    assert row["cache_read_tokens"] == 12_096
    assert Decimal(str(row["saved_usd"])).quantize(Decimal("1e-12")) == Decimal("0.0228288")
    assert row["cache_read_cost_usd"] == Decimal("0.0024") + Decimal("0.0004096")
    assert row["cached_share_of_input"] == pytest.approx(12_096 / 18_000)


# --- alert rules --------------------------------------------------------------------------------------------

FIRES_ON = {
    "spancost-spend-anomaly": "spend_spike",
    "spancost-budget-pace": "fast_burn",
    "spancost-budget-projection": "fast_burn",
    "spancost-prompt-cost-jump": "prompt_grew",
}


def _rule(config: SpancostConfig, uid: str) -> alerts.AlertRule:
    (rule,) = [r for r in alerts.rules(config) if r.uid == uid]
    return rule


@pytest.mark.parametrize("uid", sorted(FIRES_ON))
def test_each_alert_is_quiet_on_plain_traffic_and_fires_on_its_anomaly(
    stores: dict[str, Store], config: SpancostConfig, uid: str
) -> None:
    rule = _rule(config, uid)
    quiet = alerts.evaluate(rule, stores["plain"], at=END)
    assert quiet, f"{uid}: no data at all on a month of traffic"
    assert not [i for i in quiet if i.firing], quiet
    fired = [i for i in alerts.evaluate(rule, stores[FIRES_ON[uid]], at=END) if i.firing]
    assert fired, f"{uid} stays quiet with {FIRES_ON[uid]} planted"
    if uid == "spancost-prompt-cost-jump":
        assert [i.labels for i in fired] == [{"prompt": GROWN_PROMPT}]
        assert len(quiet) >= 5, "every busy prompt is an instance of its own"


def test_the_alert_values_mean_what_the_rules_say(stores: dict[str, Store], config: SpancostConfig) -> None:
    """Pace and projection from the store's own numbers; the spike's sigmas from its daily spend."""
    plain = stores["plain"]
    month = plain.query(
        "SELECT toFloat64(sum(CostUSD)) FROM llm_calls FINAL "
        "WHERE Timestamp >= {a:DateTime} AND Timestamp <= {b:DateTime}",
        {"a": END.replace(day=1, hour=0), "b": END},
    ).single_value()
    elapsed = (END - END.replace(day=1, hour=0)).total_seconds() / (30 * 86400)  # November
    (pace,) = alerts.evaluate(_rule(config, "spancost-budget-pace"), plain, at=END)
    assert pace.value == pytest.approx(month / (config.budget.monthly_usd * elapsed), rel=1e-9)
    (projection,) = alerts.evaluate(_rule(config, "spancost-budget-projection"), plain, at=END)
    assert projection.value == pytest.approx(month / elapsed / config.budget.monthly_usd, rel=1e-9)
    assert 0.6 < projection.value < 0.9, "the test budget sits above the plain month's projection"

    spiked = stores["spend_spike"]
    daily = dict(
        spiked.query(
            "SELECT toDate(Timestamp), toFloat64(sum(CostUSD)) FROM llm_calls FINAL "
            "WHERE Timestamp >= {a:DateTime} AND Timestamp <= {b:DateTime} GROUP BY 1",
            {"a": END.replace(hour=0) - dt.timedelta(days=30), "b": END},
        ).rows
    )
    before = [daily.get(END.date() - dt.timedelta(days=k), 0.0) for k in range(1, 31)]
    mean = sum(before) / 30
    std = (sum((x - mean) ** 2 for x in before) / 30) ** 0.5
    (anomaly,) = alerts.evaluate(_rule(config, "spancost-spend-anomaly"), spiked, at=END)
    assert anomaly.value == pytest.approx((daily[END.date()] - mean) / std, rel=1e-9)


def test_without_a_budget_there_are_no_budget_rules() -> None:
    assert [r.uid for r in alerts.rules(SpancostConfig())] == [
        "spancost-spend-anomaly",
        "spancost-prompt-cost-jump",
    ]


def test_the_thresholds_come_from_the_config(stores: dict[str, Store], config: SpancostConfig) -> None:
    """A prompt jump threshold above the planted jump keeps the rule quiet; a minimum call count above
    any prompt's leaves it without data."""
    grew = stores["prompt_grew"]
    (jump,) = [
        i for i in alerts.evaluate(_rule(config, "spancost-prompt-cost-jump"), grew, at=END) if i.firing
    ]
    assert jump.value is not None
    assert jump.value > 20
    higher = dataclasses.replace(config, alerts=AlertsConfig(prompt_jump_pct=jump.value + 1))
    assert not [
        i for i in alerts.evaluate(_rule(higher, "spancost-prompt-cost-jump"), grew, at=END) if i.firing
    ]
    fewer = dataclasses.replace(config, alerts=AlertsConfig(prompt_min_calls=10**9))
    assert alerts.evaluate(_rule(fewer, "spancost-prompt-cost-jump"), grew, at=END) == []


# --- the rules file in Grafana's format ---------------------------------------------------------------------

# Grafana, pkg/services/provisioning/alerting/rules_types.go: the keys of a rule group and a rule (v1).
GROUP_KEYS = {"orgId", "name", "folder", "interval", "rules"}
RULE_KEYS = {
    "uid", "title", "condition", "data", "dashboardUid", "panelId", "noDataState", "execErrState", "for",
    "keepFiringFor", "annotations", "labels", "isPaused", "notification_settings", "record",
    "missing_series_evals_to_resolve",
}  # fmt: skip
QUERY_KEYS = {"refId", "queryType", "relativeTimeRange", "datasourceUid", "model"}
NO_DATA_STATES = {"Alerting", "NoData", "OK", "KeepLast"}
EXEC_ERROR_STATES = {"Alerting", "Error", "OK", "KeepLast"}


def test_the_rules_file_is_in_grafanas_alerting_format() -> None:
    document = yaml.safe_load((PROVISIONING / alerts.RULES_FILE).read_text())
    assert document["apiVersion"] == 1
    (group,) = document["groups"]
    assert set(group) == GROUP_KEYS
    assert group["folder"] == FOLDER_TITLE
    assert re.fullmatch(r"\d+[smh]", group["interval"])
    dashboards = {m["uid"] for m in _models().values()}
    uids = [rule["uid"] for rule in group["rules"]]
    assert len(set(uids)) == len(uids) == 4
    for rule in group["rules"]:
        assert set(rule) <= RULE_KEYS, set(rule) - RULE_KEYS
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", rule["uid"])
        assert rule["title"]
        assert rule["noDataState"] in NO_DATA_STATES
        assert rule["execErrState"] in EXEC_ERROR_STATES
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["annotations"]["__dashboardUid__"] in dashboards
        refs = {query["refId"]: query for query in rule["data"]}
        assert set(refs) == {"A", "B", "C"}
        assert rule["condition"] == "C"
        for query in rule["data"]:
            assert set(query) <= QUERY_KEYS
            assert query["model"]["refId"] == query["refId"]
            assert set(query["relativeTimeRange"]) == {"from", "to"}
        source = refs["A"]
        assert source["datasourceUid"] == DATASOURCE_UID
        assert source["relativeTimeRange"]["from"] > 0
        assert source["model"]["format"] == Format.TABLE
        assert "$" not in source["model"]["rawSql"].replace("$__toTime", ""), (
            "alert queries get no template variables: only the plugin's macros may remain"
        )
        reduce, threshold = refs["B"], refs["C"]
        for expression in (reduce, threshold):
            assert expression["datasourceUid"] == "__expr__"
            assert expression["model"]["datasource"] == {"type": "__expr__", "uid": "__expr__"}
        assert reduce["model"]["type"] == "reduce"
        assert reduce["model"]["expression"] == "A"
        assert reduce["model"]["reducer"] in {"last", "max", "mean", "min", "sum", "count"}
        assert threshold["model"]["type"] == "threshold"
        assert threshold["model"]["expression"] == "B"
        (condition,) = threshold["model"]["conditions"]
        assert condition["evaluator"]["type"] == "gt"
        assert len(condition["evaluator"]["params"]) == 1


def test_every_rule_query_runs_as_provisioned(plain: Store) -> None:
    """The SQL in the file (not the Python definitions) runs, with the macros Grafana's back end expands."""
    document = yaml.safe_load((PROVISIONING / alerts.RULES_FILE).read_text())
    time_range = queries.TimeRange(END - dt.timedelta(seconds=alerts.LOOKBACK_S), END)
    for rule in document["groups"][0]["rules"]:
        result = _run(plain, rule["data"][0]["model"]["rawSql"], time_range, {}, 60)
        assert "value" in result.columns
        assert NUMERIC.match(result.types[result.columns.index("value")])
        labels = [t for c, t in zip(result.columns, result.types, strict=True) if c != "value"]
        assert all(STRING.match(t) for t in labels), (rule["uid"], labels)


# --- the expansion of template variables --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expanded"),
    [
        (queries.ALL, "1=1"),
        ("", "1=1"),
        ([], "1=1"),
        ([queries.ALL], "1=1"),
        (["a"], "Feature IN ('a')"),
        (["a", "b"], "Feature IN ('a','b')"),
        ("single", "Feature IN (single)"),
    ],
)
def test_conditional_all_and_the_plugins_variable_format(value: Any, expanded: str) -> None:
    assert (
        queries.expand_variables("$__conditionalAll(Feature IN ($feature), $feature)", {"feature": value})
        == expanded
    )


def test_conditional_all_keeps_nested_parentheses_and_quotes() -> None:
    sql = "x AND $__conditionalAll(lower(Model) IN (${model:singlequote}, 'a,)'), $model) AND y"
    assert queries.expand_variables(sql, {"model": ["O'x"]}) == "x AND lower(Model) IN ('O\\'x', 'a,)') AND y"


def test_a_variable_left_as_all_outside_conditional_all_is_an_error() -> None:
    with pytest.raises(queries.QueryError, match=r"\$prompt is All"):
        queries.expand_variables("PromptName IN ($prompt)", {"prompt": queries.ALL})
    with pytest.raises(queries.QueryError, match=r"\$model has no value"):
        queries.expand_variables("Model IN ($model)", {})


def test_variants_are_named_queries_of_their_own() -> None:
    costliest, slowest = queries.load("costliest_agent_runs"), queries.load("slowest_agent_runs")
    assert costliest.title == "Agent runs by cost"
    assert slowest.title == "Agent runs by duration"
    assert "ORDER BY cost_usd DESC" in costliest.sql
    assert "ORDER BY duration_s DESC" in slowest.sql
    assert "{{" not in costliest.sql + slowest.sql
    assert {"service_values", "prompt_values", "spend_by_workspace", "spend_by_user"} <= set(queries.names())
