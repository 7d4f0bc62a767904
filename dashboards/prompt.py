"""One prompt in detail: a prompt edit or a model change shows as a step in what a call costs."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from spancost.config import SpancostConfig
from spancost.dashboards import panels as p

UID = "spancost-prompt"


def build(config: SpancostConfig) -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("LLM prompt detail")
        .uid(UID)
        .description("One prompt's cost per call, tokens in and out, model mix and versions over time.")
        .tags(["spancost", "llm", "prompts"])
        .time("now-30d", "now")
        .timezone("utc")
        .refresh("15m")
        .readonly()
        # no All here: the dashboard is about the prompts picked (the first one until then)
        .with_variable(p.filter_variable("prompt", include_all=False))
    )
    for label in ("service", "workspace", "feature", "model"):
        board = board.with_variable(p.filter_variable(label))
    return (
        board.with_panel(p.timeseries_panel("prompt_cost_per_call", unit=p.USD, interval="1h", span=24))
        .with_panel(p.timeseries_panel("prompt_tokens_per_call", unit=p.COUNT, interval="1h"))
        .with_panel(
            p.timeseries_panel("prompt_model_mix", unit=p.COUNT, bars=True, stacked=True, interval="1h")
        )
        .with_panel(
            p.table_panel(
                "prompt_versions",
                units={
                    "cost_per_call_usd": p.USD,
                    "first_seen": "dateTimeAsIso",
                    "last_seen": "dateTimeAsIso",
                },
                span=24,
            )
        )
    )
