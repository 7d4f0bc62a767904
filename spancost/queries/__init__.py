"""Named SQL queries, shared by the CLI, the Grafana panels and the alert rules.

Each query is one `.sql` file here, written in the Grafana ClickHouse plugin's dialect: time
macros (`$__timeFilter(col)`, `$__dateFilter(col)`, `$__fromTime`, ...), template variables
(`$name`, `${name}`, `${name:singlequote}`) and `$__conditionalAll(condition, $name)`, which is
`1=1` while the variable is set to All. Grafana expands them in a panel; `expand` expands them here
exactly as the plugin does, so a number on a dashboard and in a terminal come from the same query.

A file starts with `-- title:` and `-- description:` lines. Two things are resolved when a query is
loaded, before either Grafana or the CLI sees it: `{{name}}` is replaced by the fragment `_name.sql`
(the filters by the dashboards' template variables, written once), and a file with `-- variant:
NAME key=value ...` lines is one query per variant, with `{{key}}` replaced by the variant's value.
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
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_VARIANT = re.compile(r"^-- variant: (\w+)((?: \w+=\S+)*)\s*$", re.MULTILINE)

ALL = "$__all"
"""The value of a multi-value template variable set to All (what Grafana stores for it)."""

FILTER_VARIABLES = ("service", "workspace", "feature", "prompt", "model")
"""The dashboards' template variables, which `{{filters}}` applies to `llm_calls` columns."""

ALL_FILTERS: dict[str, str] = {name: ALL for name in FILTER_VARIABLES}
"""Every filter variable set to All: the whole store, as `spancost report` reads it."""


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


def _read(file: str) -> str:
    return (resources.files(__name__) / file).read_text(encoding="utf-8")


@cache
def _catalogue() -> dict[str, tuple[str, dict[str, str]]]:
    """Every query name → (its file, the values of its variant's placeholders)."""
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for entry in resources.files(__name__).iterdir():
        if not entry.name.endswith(".sql") or entry.name.startswith("_"):
            continue
        variants = _VARIANT.findall(entry.read_text(encoding="utf-8"))
        if not variants:
            found[entry.name[:-4]] = (entry.name, {})
        for variant, pairs in variants:
            found[variant] = (entry.name, dict(pair.split("=", 1) for pair in pairs.split()))
    return found


def _resolve(text: str, values: Mapping[str, str], file: str) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in values:
            return values[key]
        try:
            fragment = _read(f"_{key}.sql")
        except FileNotFoundError as err:
            raise QueryError(
                f"{file}: {{{{{key}}}}} is neither a variant value nor a fragment _{key}.sql"
            ) from err
        body = "\n".join(line for line in fragment.splitlines() if not line.startswith("-- ")).strip()
        return _resolve(body, values, f"_{key}.sql")

    return _PLACEHOLDER.sub(replace, text)


@cache
def load(name: str) -> NamedQuery:
    try:
        file, values = _catalogue()[name]
    except KeyError as err:
        raise QueryError(f"no named query {name!r}; known: {', '.join(names())}") from err
    text = _read(file)
    header = dict(re.findall(r"^-- (title|description): (.*)$", text, flags=re.MULTILINE))
    body = "\n".join(line for line in text.splitlines() if not line.startswith("-- ")).strip()
    title, description = (_resolve(header.get(k, ""), values, file) for k in ("title", "description"))
    return NamedQuery(name, title or name, description, _resolve(body, values, file))


def names() -> list[str]:
    return sorted(_catalogue())


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


def _format_variable(name: str, value: str | Sequence[str], fmt: str | None) -> str:
    if value == ALL or (not isinstance(value, str) and ALL in value):
        # Grafana would put every option of the variable here; spancost's queries use All only
        # inside $__conditionalAll, which has already turned it into 1=1.
        raise QueryError(f"${name} is All here: use it inside $__conditionalAll(..., ${name})")
    if fmt == "singlequote":
        values = [value] if isinstance(value, str) else list(value)
        return ",".join(_quote(v) for v in values)
    if fmt is None:
        # The plugin's own format: several values quoted and joined (as they are, unescaped), a
        # single value as it is.
        return value if isinstance(value, str) else "'" + "','".join(value) + "'"
    if fmt in ("raw", "csv"):
        return value if isinstance(value, str) else ",".join(value)
    raise QueryError(f"unsupported variable format :{fmt}")


def _split_arguments(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose `(` is at `start`, and the index after its
    `)`; commas inside nested parentheses or quotes belong to an argument."""
    depth, quote, args, begin = 0, "", [], start + 1
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == "\\":
                continue
            if char == quote and text[index - 1] != "\\":
                quote = ""
        elif char in "'`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(text[begin:index])
                return args, index + 1
        elif char == "," and depth == 1:
            args.append(text[begin:index])
            begin = index + 1
    raise QueryError(f"unclosed parenthesis after: {text[max(0, start - 30) : start + 1]}")


def _conditional_all(sql: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    """`$__conditionalAll(condition, $name)`: `1=1` when the variable is All (or empty), else the
    condition, as the plugin expands it before the variables."""
    macro = "$__conditionalAll"
    while (at := sql.rfind(macro + "(")) != -1:
        args, end = _split_arguments(sql, at + len(macro))
        if len(args) != 2:
            raise QueryError(f"$__conditionalAll expects 2 arguments, got {len(args)}")
        found = re.search(r"\$\{?(\w+)", args[1])
        if found is None:
            raise QueryError(f"$__conditionalAll: {args[1].strip()!r} is not a template variable")
        name = found.group(1)
        if name not in variables:
            raise QueryError(f"template variable ${name} has no value")
        value = variables[name]
        is_all = value in ("", ALL) or (not isinstance(value, str) and (not value or ALL in value))
        sql = sql[:at] + ("1=1" if is_all else args[0]) + sql[end:]
    return sql


def expand_variables(sql: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    """`sql` with `$__conditionalAll` and the template variables expanded, the time macros left for
    later: what the plugin's front end does before the query goes to its back end."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name not in variables:
            raise QueryError(f"template variable ${name} has no value")
        return _format_variable(name, variables[name], match.group(2))

    return _VARIABLE.sub(variable, _conditional_all(sql, variables))


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
    interval = interval_s if interval_s is not None else max(math.floor(time_range.seconds / 1000), 1)
    with_variables = expand_variables(sql, variables or {})
    return _MACRO.sub(
        lambda m: _expand_macro(
            m.group(1), [a.strip() for a in m.group(2).split(",")] if m.group(2) else [], time_range, interval
        ),
        with_variables,
    )


def render(name: str, time_range: TimeRange, **kwargs: object) -> str:
    """The named query, expanded and ready to run."""
    return expand(load(name).sql, time_range, **kwargs)  # type: ignore[arg-type]
