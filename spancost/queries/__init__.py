"""Named SQL queries, shared by the CLI, the Grafana panels and the alert rules.

Each query is one `.sql` file here, written in the Grafana ClickHouse plugin's dialect: time
macros (`$__timeFilter(col)`, `$__dateFilter(col)`, `$__fromTime`, ...) and template variables
(`${name}`). Grafana expands them in a panel; `expand` expands them here exactly as the plugin does,
so a number on a dashboard and in a terminal come from the same query. A file starts with
`-- title:` and `-- description:` lines.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")


class QueryError(ValueError):
    """A named query that does not exist or cannot be expanded."""


@dataclass(frozen=True)
class NamedQuery:
    name: str
    title: str
    description: str
    sql: str


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time picker: [start, end], UTC."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def last_days(cls, days: int, now: dt.datetime | None = None) -> TimeRange:
        """The last `days` days: from midnight UTC `days - 1` days ago (so today is the last day) to now."""
        end = now or dt.datetime.now(dt.timezone.utc)
        midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(midnight - dt.timedelta(days=days - 1), end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@cache
def load(name: str) -> NamedQuery:
    try:
        text = (resources.files(__name__) / f"{name}.sql").read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise QueryError(f"no named query {name!r}; known: {', '.join(names())}") from err
    header = dict(re.findall(r"^-- (title|description): (.*)$", text, flags=re.MULTILINE))
    body = "\n".join(line for line in text.splitlines() if not line.startswith("-- ")).strip()
    return NamedQuery(name, header.get("title", name), header.get("description", ""), body)


def names() -> list[str]:
    return sorted(f.name[:-4] for f in resources.files(__name__).iterdir() if f.name.endswith(".sql"))


def _datetime(moment: dt.datetime) -> str:
    return f"toDateTime({int(moment.timestamp())})"


def _datetime64(moment: dt.datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(moment.timestamp() * 1000)})"


def _date(moment: dt.datetime) -> str:
    return f"toDate('{moment.astimezone(dt.timezone.utc).strftime('%Y-%m-%d')}')"


def _expand_macro(name: str, args: list[str], time_range: TimeRange, interval_s: float) -> str:
    start, end = time_range.start, time_range.end

    def need(count: int) -> None:
        if len(args) != count:
            raise QueryError(f"$__{name} expects {count} argument(s), got {len(args)}")

    if name == "fromTime":
        return _datetime(start)
    if name == "toTime":
        return _datetime(end)
    if name == "fromTime_ms":
        return _datetime64(start)
    if name == "toTime_ms":
        return _datetime64(end)
    if name == "timeFilter":
        need(1)
        return f"{args[0]} >= {_datetime(start)} AND {args[0]} <= {_datetime(end)}"
    if name == "timeFilter_ms":
        need(1)
        return f"{args[0]} >= {_datetime64(start)} AND {args[0]} <= {_datetime64(end)}"
    if name == "dateFilter":
        need(1)
        return f"{args[0]} >= {_date(start)} AND {args[0]} <= {_date(end)}"
    if name in ("dateTimeFilter", "dt"):
        need(2)
        return (
            f"({args[0]} >= {_date(start)} AND {args[0]} <= {_date(end)}) AND "
            f"({args[1]} >= {_datetime(start)} AND {args[1]} <= {_datetime(end)})"
        )
    if name == "timeInterval":
        need(1)
        return f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {int(max(interval_s, 1))} second)"
    if name == "timeInterval_ms":
        need(1)
        milliseconds = int(max(interval_s * 1000, 1))
        return f"toStartOfInterval(toDateTime64({args[0]}, 3), INTERVAL {milliseconds} millisecond)"
    if name == "interval_s":
        return str(int(max(interval_s, 1)))
    raise QueryError(f"unknown macro $__{name}")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format_variable(value: str | Sequence[str], fmt: str | None) -> str:
    values = [value] if isinstance(value, str) else list(value)
    if fmt == "singlequote":
        return ",".join(_quote(v) for v in values)
    if fmt in (None, "raw", "csv"):
        return ",".join(values)
    raise QueryError(f"unsupported variable format :{fmt}")


def expand(
    sql: str,
    time_range: TimeRange,
    *,
    interval_s: float | None = None,
    variables: Mapping[str, str | Sequence[str]] | None = None,
) -> str:
    """`sql` with template variables, then macros, expanded (the order Grafana applies them).

    `interval_s` defaults to the range over 1000 points, as Grafana picks it for a wide panel.
    """
    variables = variables or {}

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name not in variables:
            raise QueryError(f"template variable ${name} has no value")
        return _format_variable(variables[name], match.group(2))

    interval = interval_s if interval_s is not None else max(math.floor(time_range.seconds / 1000), 1)
    with_variables = _VARIABLE.sub(variable, sql)
    return _MACRO.sub(
        lambda m: _expand_macro(
            m.group(1), [a.strip() for a in m.group(2).split(",")] if m.group(2) else [], time_range, interval
        ),
        with_variables,
    )


def render(name: str, time_range: TimeRange, **kwargs: object) -> str:
    """The named query, expanded and ready to run."""
    return expand(load(name).sql, time_range, **kwargs)  # type: ignore[arg-type]
