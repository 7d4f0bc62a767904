"""Agent runs: cascading calls, where one user action becomes many model calls."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from spancost.config import SpancostConfig
from spancost.dashboards import panels as p
from spancost.dashboards.overview import with_filters

UID = "spancost-agent-runs"

_RUN_UNITS = {"cost_usd": p.USD, "duration_s": p.SECONDS, "started": "dateTimeAsIso"}


def build(config: SpancostConfig) -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("LLM agent runs")
        .uid(UID)
        .description(
            "Agent and workflow runs: how many model calls one run makes, what a run costs, and the "
            "most expensive and slowest runs, each opening its trace."
        )
        .tags(["spancost", "llm", "agents"])
        .time("now-7d", "now")
        .timezone("utc")
        .refresh("5m")
        .readonly()
    )
    return (
        with_filters(board)
        .with_panel(p.bar_panel("calls_per_agent_run", x_field="calls_per_run", unit=p.COUNT))
        .with_panel(p.timeseries_panel("agent_run_cost_over_time", unit=p.USD, interval="1h"))
        .with_panel(
            p.timeseries_panel(
                "agent_cost_by_name", unit=p.USD, bars=True, stacked=True, interval="1h", span=24
            )
        )
        .with_panel(
            p.table_panel(
                "costliest_agent_runs", units=_RUN_UNITS, trace_id_field="trace_id", span=24, height=10
            )
        )
        .with_panel(
            p.table_panel(
                "slowest_agent_runs", units=_RUN_UNITS, trace_id_field="trace_id", span=24, height=10
            )
        )
    )
