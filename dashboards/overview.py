"""The cost overview: where the money goes, for the person who owns the bill."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from spancost.config import SpancostConfig
from spancost.dashboards import panels as p

UID = "spancost-overview"
FILTERS = ("service", "workspace", "feature", "prompt", "model")


def with_filters(board: dashboard.Dashboard) -> dashboard.Dashboard:
    for label in FILTERS:
        board = board.with_variable(p.filter_variable(label))
    return board


def build(config: SpancostConfig) -> dashboard.Dashboard:
    budget = config.budget.monthly_usd
    board = (
        dashboard.Dashboard("LLM cost overview")
        .uid(UID)
        .description(
            "Where LLM spend goes: by day, prompt, model, workspace, feature and user; against the budget."
        )
        .tags(["spancost", "llm", "cost"])
        .time("now-30d", "now")
        .timezone("utc")
        .refresh("5m")
        .readonly()
    )
    board = with_filters(board).with_variable(
        p.constant_variable("budget_usd", f"{budget:g}", "Monthly budget (USD, from spancost.toml; 0: none)")
    )
    # Budget-relative stats turn amber at pro-rata pace and red over budget.
    budget_steps: list[tuple[float | None, str]] = [(None, "green"), (0.9, "orange"), (1.0, "red")]
    return (
        board.with_row(p.row("Spend"))
        .with_panel(p.stat_panel("spend_today", field="cost_usd", unit=p.USD, decimals=2))
        .with_panel(p.stat_panel("month_to_date", field="cost_usd", unit=p.USD, decimals=2))
        .with_panel(
            p.stat_panel(
                "month_to_date",
                field="projected_usd",
                unit=p.USD,
                decimals=0,
                title="Projected month-end",
            )
        )
        .with_panel(
            p.stat_panel(
                "month_to_date",
                field="projected_share_of_budget",
                unit=p.PERCENT_UNIT,
                title="Projected month-end vs budget",
                thresholds=budget_steps,
            )
        )
        .with_panel(p.timeseries_panel("daily_spend", unit=p.USD, bars=True, interval="1d", span=24))
        .with_row(p.row("Prompts"))
        .with_panel(p.table_panel("spend_by_prompt", units={"cost_usd": p.USD, "share": p.PERCENT_UNIT}))
        .with_panel(p.timeseries_panel("cost_per_call_over_time", unit=p.USD, interval="1h"))
        .with_panel(p.bar_panel("output_tokens_histogram", x_field="bucket", unit=p.COUNT))
        .with_panel(p.table_panel("spend_by_model", units={"cost_usd": p.USD, "share": p.PERCENT_UNIT}))
        .with_row(p.row("Who spends"))
        .with_panel(p.table_panel("spend_by_workspace", units=_share_units(), span=8))
        .with_panel(p.table_panel("spend_by_feature", units=_share_units(), span=8))
        .with_panel(p.table_panel("spend_by_user", units=_share_units(), span=8))
        .with_row(p.row("Savings and gaps"))
        .with_panel(p.stat_panel("cache_savings", field="saved_usd", unit=p.USD, decimals=2, span=4))
        .with_panel(
            p.stat_panel(
                "cache_savings",
                field="cached_share_of_input",
                unit=p.PERCENT_UNIT,
                title="Input tokens from cache",
                span=4,
            )
        )
        .with_panel(
            p.stat_panel(
                "unpriced_models",
                field="calls",
                unit=p.COUNT,
                calc="sum",
                title="Unpriced calls",
                thresholds=[(None, "green"), (1, "red")],
                span=4,
            )
        )
        .with_panel(p.table_panel("unpriced_models", units={}, span=12, height=6))
    )


def _share_units() -> dict[str, str]:
    return {"cost_usd": p.USD, "share_of_cost": p.PERCENT_UNIT, "share_of_calls": p.PERCENT_UNIT}
