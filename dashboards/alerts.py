"""Alert rules: defined once here, provisioned into Grafana and evaluated by spancost itself.

Each rule is a named query that returns one numeric column (`value`) and, for a rule about many
things at once, string columns that label each row (the prompt). Grafana turns such a table into one
alert instance per row: query A, then B reduces each series to its last value, then C compares it
with the rule's threshold. `evaluate` does the same steps against a store, so `spancost alerts check`
and a test can say what Grafana will.

The thresholds and the numbers inside the queries (budget, days, minimum calls) come from
`spancost.toml`; they are written into the generated rules, since alert queries in Grafana have no
dashboard variables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from spancost import queries
from spancost.config import SpancostConfig
from spancost.dashboards.clickhouse import ClickHouseQuery, Format
from spancost.dashboards.datasource import DATASOURCE_UID, FOLDER_TITLE, ORG_ID
from spancost.dashboards.notifications import ALERT_LABEL

RULES_FILE = "alerting/rules.yaml"
GROUP_NAME = "spancost"
EXPRESSION_DATASOURCE = "__expr__"
INTERVAL_MS = 60_000
"""The interval each rule's query is given (its `$__interval`; the rules' queries do not use it)."""
LOOKBACK_S = 35 * 86400
"""The time range each rule's query is given: it ends at the evaluation time, which the queries read
as `$__toTime` to pick their own windows (today, this month, the last two weeks) within five weeks."""


@dataclass(frozen=True)
class AlertRule:
    uid: str
    query: str
    """The named query."""
    threshold: float
    """The rule fires for a row whose `value` is above this."""
    variables: dict[str, str]
    """Config values written into the query."""
    summary: str
    dashboard_uid: str

    @property
    def title(self) -> str:
        return queries.load(self.query).title

    @property
    def description(self) -> str:
        return queries.load(self.query).description

    @property
    def sql(self) -> str:
        return queries.expand_variables(queries.load(self.query).sql, self.variables)


def rules(config: SpancostConfig) -> list[AlertRule]:
    """The rules `config` asks for: the budget rules only when there is a budget."""
    alerts = config.alerts
    budget = {"budget_usd": f"{config.budget.monthly_usd:g}"}
    found = [
        AlertRule(
            uid="spancost-spend-anomaly",
            query="alert_spend_anomaly",
            threshold=alerts.anomaly_sigmas,
            variables={"anomaly_days": str(alerts.anomaly_days)},
            summary=(
                f'Today\'s LLM spend is {{{{ $values.B.Value | printf "%.1f" }}}} standard deviations '
                f"above the mean of the previous {alerts.anomaly_days} days "
                f"(alert above {alerts.anomaly_sigmas:g})."
            ),
            dashboard_uid="spancost-overview",
        ),
        AlertRule(
            uid="spancost-prompt-cost-jump",
            query="alert_prompt_cost_jump",
            threshold=alerts.prompt_jump_pct,
            variables={"prompt_min_calls": str(alerts.prompt_min_calls)},
            summary=(
                'Cost per call of prompt {{ $labels.prompt }} is up {{ $values.B.Value | printf "%.0f" }}% '
                f"week over week (alert above {alerts.prompt_jump_pct:g}%)."
            ),
            dashboard_uid="spancost-prompt",
        ),
    ]
    if config.budget.enabled:
        found += [
            AlertRule(
                uid="spancost-budget-pace",
                query="alert_budget_pace",
                threshold=alerts.pace_ratio,
                variables=budget,
                summary=(
                    'This month\'s LLM spend runs at {{ $values.B.Value | printf "%.2f" }}x the pro-rata '
                    f"pace of the ${config.budget.monthly_usd:,.0f} budget "
                    f"(alert above {alerts.pace_ratio:g}x)."
                ),
                dashboard_uid="spancost-overview",
            ),
            AlertRule(
                uid="spancost-budget-projection",
                query="alert_budget_projection",
                threshold=1.0,
                variables=budget,
                summary=(
                    "At this month's pace, LLM spend ends the month at "
                    "{{ $values.B.Value | humanizePercentage }} "
                    f"of the ${config.budget.monthly_usd:,.0f} budget."
                ),
                dashboard_uid="spancost-overview",
            ),
        ]
    return found


def _expression(ref_id: str, model: dict[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": EXPRESSION_DATASOURCE,
        "model": {
            "refId": ref_id,
            "datasource": {"type": EXPRESSION_DATASOURCE, "uid": EXPRESSION_DATASOURCE},
            **model,
        },
    }


def provisioned_rule(rule: AlertRule, config: SpancostConfig) -> dict[str, Any]:
    """One rule in Grafana's alerting file-provisioning format."""
    query = ClickHouseQuery("A", rule.sql, Format.TABLE).to_json()
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": LOOKBACK_S, "to": 0},
                "datasourceUid": DATASOURCE_UID,
                "model": {**query, "intervalMs": INTERVAL_MS, "maxDataPoints": 43_200},
            },
            _expression(
                "B", {"type": "reduce", "expression": "A", "reducer": "last", "settings": {"mode": ""}}
            ),
            _expression(
                "C",
                {
                    "type": "threshold",
                    "expression": "B",
                    "conditions": [{"evaluator": {"type": "gt", "params": [rule.threshold]}}],
                },
            ),
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        "for": config.alerts.pending,
        "annotations": {
            "summary": rule.summary,
            "description": rule.description,
            "__dashboardUid__": rule.dashboard_uid,
        },
        "labels": {ALERT_LABEL: rule.uid.removeprefix("spancost-"), "severity": "warning"},
        "isPaused": False,
    }


def rules_provisioning(config: SpancostConfig) -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": ORG_ID,
                "name": GROUP_NAME,
                "folder": FOLDER_TITLE,
                "interval": config.alerts.interval,
                "rules": [provisioned_rule(rule, config) for rule in rules(config)],
            }
        ],
    }


@dataclass(frozen=True)
class AlertInstance:
    rule: str
    labels: dict[str, str]
    value: float | None
    firing: bool


def evaluate(rule: AlertRule, store: Any, at: dt.datetime | None = None) -> list[AlertInstance]:
    """Run `rule` against `store` as Grafana would at `at` (default: now): its query over the five
    weeks up to then, one instance per distinct set of labels (string columns), its last value
    compared with the threshold. No rows: no instance (Grafana's NoData, provisioned as OK)."""
    end = at or dt.datetime.now(dt.timezone.utc)
    time_range = queries.TimeRange(end - dt.timedelta(seconds=LOOKBACK_S), end)
    result = store.query(queries.expand(rule.sql, time_range, interval_s=INTERVAL_MS / 1000))
    if not result.rows:
        # an empty result may come without its column names
        return []
    label_columns = [index for index, row_value in enumerate(result.rows[0]) if isinstance(row_value, str)]
    value_column = result.columns.index("value")
    last: dict[tuple[tuple[str, str], ...], Any] = {}
    for row in result.rows:
        labels = tuple((result.columns[index], row[index]) for index in label_columns)
        last[labels] = row[value_column]
    instances = []
    for labels, raw in last.items():
        value = None if raw is None else float(Decimal(str(raw)))
        instances.append(
            AlertInstance(rule.uid, dict(labels), value, firing=value is not None and value > rule.threshold)
        )
    return instances
