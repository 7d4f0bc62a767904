"""Panel and variable builders shared by the dashboards: each panel runs one named query.

A panel's title and description come from its query's `-- title:` / `-- description:` lines unless
a dashboard gives its own, so the words on a dashboard and in `spancost report` agree too.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import barchart, common, dashboard, stat, table, timeseries
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models

from spancost import queries
from spancost.dashboards.clickhouse import Format, SqlTarget, datasource_ref, trace_link

USD = "currencyUSD"
PERCENT_UNIT = "percentunit"
SECONDS = "s"
COUNT = "short"
NANOSECONDS = "ns"

QUERY_FORMAT: dict[str, Format] = {}
"""The result format each panel asks its query for, filled as panels are built (the tests check
each query's columns against what its panel needs)."""


def _datasource() -> common_models.DataSourceRef:
    ref = datasource_ref()
    return common_models.DataSourceRef(type_val=ref["type"], uid=ref["uid"])


def _texts(name: str, title: str | None) -> tuple[str, str]:
    query = queries.load(name)
    return title or query.title, query.description


def _target(name: str, fmt: Format) -> SqlTarget:
    QUERY_FORMAT[name] = fmt
    return SqlTarget(name, fmt)


def stat_panel(
    name: str,
    *,
    field: str,
    unit: str,
    title: str | None = None,
    calc: str = "lastNotNull",
    decimals: int | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    span: int = 6,
) -> stat.Panel:
    """One number: `calc` of the query's `field`."""
    title, description = _texts(name, title)
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(_datasource())
        .with_target(_target(name, Format.TABLE))
        .unit(unit)
        .reduce_options(common.ReduceDataOptions().calcs([calc]).fields(f"/^{field}$/").values(False))
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .color_mode(common_models.BigValueColorMode.VALUE)
        .height(4)
        .span(span)
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if thresholds:
        steps = [
            dashboard_models.Threshold(value=value, color=color)  # type: ignore[arg-type]
            for value, color in thresholds
        ]
        panel = panel.thresholds(
            dashboard.ThresholdsConfig().mode(dashboard_models.ThresholdsMode.ABSOLUTE).steps(steps)
        )
    return panel


def timeseries_panel(
    name: str,
    *,
    unit: str,
    title: str | None = None,
    bars: bool = False,
    stacked: bool = False,
    interval: str | None = None,
    span: int = 12,
) -> timeseries.Panel:
    """A line (or bar) per numeric column, or per value of the query's string column."""
    title, description = _texts(name, title)
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(_datasource())
        .with_target(_target(name, Format.TIME_SERIES))
        .unit(unit)
        .fill_opacity(80 if bars else 10)
        .line_width(1)
        .legend(
            common.VizLegendOptions().show_legend(True).display_mode(common_models.LegendDisplayMode.TABLE)
        )
        .height(8)
        .span(span)
    )
    if bars:
        panel = panel.draw_style(common_models.GraphDrawStyle.BARS)
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(common_models.StackingMode.NORMAL))
    if interval:
        # the smallest bucket Grafana may pick for $__timeInterval: daily questions stay daily
        panel = panel.interval(interval)
    return panel


def bar_panel(
    name: str, *, x_field: str, unit: str, title: str | None = None, span: int = 12
) -> barchart.Panel:
    """Bars per value of the query's `x_field` (a category, such as a bucket of tokens)."""
    title, description = _texts(name, title)
    return (
        barchart.Panel()
        .title(title)
        .description(description)
        .datasource(_datasource())
        .with_target(_target(name, Format.TABLE))
        .x_field(x_field)
        .unit(unit)
        .x_tick_label_rotation(-45)
        .show_value(common_models.VisibilityMode.NEVER)
        .height(8)
        .span(span)
    )


def table_panel(
    name: str,
    *,
    units: dict[str, str],
    title: str | None = None,
    trace_id_field: str | None = None,
    span: int = 12,
    height: int = 8,
) -> table.Panel:
    """The query's rows; `units` by column; a `trace_id_field` opens the trace view."""
    title, description = _texts(name, title)
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(_datasource())
        .with_target(_target(name, Format.TABLE))
        .height(height)
        .span(span)
    )
    for column, unit in units.items():
        panel = panel.override_by_name(
            column, [dashboard_models.DynamicConfigValue(id_val="unit", value=unit)]
        )
    if trace_id_field:
        panel = panel.override_by_name(
            trace_id_field, [dashboard_models.DynamicConfigValue(id_val="links", value=[trace_link()])]
        )
    return panel


def filter_variable(
    label: str, *, include_all: bool = True, current: str | None = None
) -> dashboard.QueryVariable:
    """A multi-value template variable over the values `{label}_values` finds; All (the default)
    filters nothing. Multi-value even where one value is meant: the plugin quotes a multi-value
    variable's values and leaves a single-value one bare, and the filters expect them quoted."""
    sql = queries.load(f"{label}_values").sql
    variable = (
        dashboard.QueryVariable(label)
        .label(label.capitalize())
        .datasource(_datasource())
        .query({"editorType": "sql", "rawSql": sql})
        .definition(sql)
        .multi(True)
        .include_all(include_all)
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
    )
    if include_all:
        variable = variable.current(
            dashboard_models.VariableOption(text=["All"], value=[queries.ALL], selected=True)  # type: ignore[arg-type]
        )
    elif current is not None:
        variable = variable.current(
            dashboard_models.VariableOption(text=[current], value=[current], selected=True)  # type: ignore[arg-type]
        )
    return variable


def constant_variable(name: str, value: str, label: str) -> dashboard.ConstantVariable:
    return dashboard.ConstantVariable(name).label(label).value(value)


def row(title: str) -> dashboard.Row:
    return dashboard.Row(title)


def as_json(model: Any) -> dict[str, Any]:
    """A built SDK model as the plain JSON Grafana reads, its panels numbered in order (links such as
    `viewPanel=` need an id that stays put from one build to the next)."""
    import json

    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    document = json.loads(json.dumps(model, cls=JSONEncoder))
    for number, panel in enumerate(document.get("panels", []), start=1):
        panel["id"] = number
    return document
