"""What Grafana does to a dashboard's query before the ClickHouse plugin expands its macros: the
time range from the dashboard's time picker, the interval from the panel, the template variables'
values. The tests and benchmarks/queries.py run the dashboards' queries as Grafana would with these.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from spancost import queries

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DATA_POINTS = 1000
"""About how many points Grafana asks of a full-width panel (its width in pixels)."""


def _seconds(duration: str) -> int:
    found = re.fullmatch(r"(\d+)([smhd])", duration)
    if found is None:
        raise ValueError(f"not a Grafana duration such as 30s, 5m, 1h or 7d: {duration!r}")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def time_range(model: Mapping[str, Any], end: dt.datetime) -> queries.TimeRange:
    """The dashboard's default range (`now-30d` to `now`), with `end` as now."""
    start, stop = model["time"]["from"], model["time"]["to"]
    if stop != "now" or not start.startswith("now-"):
        raise ValueError(f"only ranges from now-N to now are supported: {start} to {stop}")
    return queries.TimeRange(end - dt.timedelta(seconds=_seconds(start.removeprefix("now-"))), end)


def interval_seconds(panel: Mapping[str, Any], within: queries.TimeRange) -> float:
    """`$__interval`: the range over the panel's data points, never below the panel's minimum
    interval (its `interval`, such as 1h)."""
    interval = max(math.floor(within.seconds / DATA_POINTS), 1)
    if panel.get("interval"):
        interval = max(interval, _seconds(panel["interval"]))
    return interval


def variable_values(model: Mapping[str, Any], chosen: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Each template variable's value: the one `chosen` gives, else its default (All for a filter, a
    constant's value). A variable without All and without a choice is an error: Grafana would pick
    the first value its query lists."""
    chosen = chosen or {}
    values: dict[str, Any] = {}
    for variable in model["templating"]["list"]:
        name = variable["name"]
        if name in chosen:
            values[name] = chosen[name]
        elif variable["type"] == "constant":
            values[name] = variable["query"]
        elif variable.get("includeAll"):
            values[name] = queries.ALL
        else:
            raise ValueError(f"${name} has no All and no default: choose its value")
    return values
