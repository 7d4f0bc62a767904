"""Latency of every dashboard panel's, template variable's and alert rule's query over ten million
generated model calls in the embedded store, next to the same question asked of raw `otel_traces`.

The store is filled once by `spancost.demo.traffic` (a month of calls ending now, with agent runs:
about 1.7 spans per call) and kept in `--store` for later runs. Before measuring, the script waits
for ClickHouse's background merges to settle and merges each past day of `llm_calls` and
`agent_runs` into one part, as the tables' `min_age_to_force_merge_seconds` does an hour after a
day's last insert on a store that has been running; the part counts are printed, since `FINAL`
costs more while parts overlap.

Each query is expanded as Grafana expands it (the dashboard's default range ending at the newest
call, the panel's interval, every filter at All, the prompt dashboard on its busiest prompt), then
run `--repeat` times alternating with its raw twin; the medians are printed. The raw twin is the
same SQL with `llm_calls FINAL`, `llm_daily` and `agent_runs` replaced by the materialized views'
own SELECTs over `otel_traces` (what a query would have to do without the rollups); it does not
deduplicate, so the speedup shown is a lower bound. Both answers are compared.

    .venv/bin/python benchmarks/queries.py [--calls 10000000] [--store DIR] [--repeat 7] [--raw-repeat 3]
        [--only NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from spancost import queries
from spancost.config import load_config
from spancost.dashboards import alerts, build, grafana
from spancost.demo.traffic import TrafficPlan, generate
from spancost.store import Store

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 300.0
TARGET_SPEEDUP = 10.0


@dataclass
class Case:
    name: str
    sql: str
    """Expanded, ready to run against the rollups."""
    raw: str
    """The same question of otel_traces."""


# --- the raw twin of a query -----------------------------------------------------------------------------


def raw_sources(store: Store) -> dict[str, str]:
    """Each rollup as the SELECT of its view over raw spans (with the columns its table computes on
    insert, such as TraceKey); llm_daily's over llm_calls' own."""
    calls = _with_computed(store, "llm_calls", store.view_select("llm_calls_mv"))
    daily = re.sub(
        rf"\b`?{store.database}`?\.`?llm_calls`?(?=\s|$)", f"({calls})", store.view_select("llm_daily_mv")
    )
    if daily == store.view_select("llm_daily_mv"):
        raise SystemExit("llm_daily_mv does not read llm_calls as expected")
    runs = _with_computed(store, "agent_runs", store.view_select("agent_runs_mv"))
    return {"llm_calls": calls, "llm_daily": daily, "agent_runs": runs}


def _with_computed(store: Store, table: str, select: str) -> str:
    computed = store.query(
        "SELECT name, default_expression FROM system.columns WHERE database = {db:String}"
        " AND table = {t:String} AND default_kind = 'MATERIALIZED' ORDER BY position",
        {"db": store.database, "t": table},
    ).rows
    if not computed:
        return select
    return "SELECT *, " + ", ".join(f"{expr} AS {name}" for name, expr in computed) + f" FROM ({select})"


_SOURCE = re.compile(r"\b(llm_calls|llm_daily|agent_runs)\b(\s+FINAL\b)?")


_KEYWORD = re.compile(r"\b(PREWHERE|WHERE)\b|[()]")


def _prewhere_into_where(sql: str) -> str:
    """`... PREWHERE a WHERE b` as `... WHERE (a) AND b`: a subquery (what the raw twin reads from) has
    no PREWHERE. The WHERE that follows is the next one at the PREWHERE's own depth, not one inside a
    subquery of its condition."""
    out, depth, opened = [], 0, None  # opened: (depth, where the condition starts) of a PREWHERE
    last = 0
    for match in _KEYWORD.finditer(sql):
        token = match.group(0)
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif token == "PREWHERE" and opened is None:
            out.append(sql[last : match.start()])
            opened, last = (depth, match.end()), match.end()
        elif token == "WHERE" and opened is not None and depth == opened[0]:
            out.append(f"WHERE ({sql[opened[1] : match.start()].strip()}) AND")
            opened, last = None, match.end()
    if opened is not None:
        raise SystemExit(f"a PREWHERE without its WHERE in:\n{sql}")
    out.append(sql[last:])
    return "".join(out)


def to_raw(sql: str, sources: dict[str, str]) -> str:
    return _SOURCE.sub(lambda m: f"({sources[m.group(1)]})", _prewhere_into_where(sql))


# --- the cases ---------------------------------------------------------------------------------------------


def cases(store: Store, end: dt.datetime, sources: dict[str, str]) -> list[Case]:
    config = load_config(REPO / "spancost.toml")
    busiest = store.query(
        "SELECT PromptName FROM llm_daily WHERE PromptName != '' GROUP BY PromptName "
        "ORDER BY sum(Calls) DESC LIMIT 1"
    ).single_value()
    found: list[Case] = []
    seen: set[str] = set()
    for stem, model in build.dashboard_models(config).items():
        time_range = grafana.time_range(model, end)
        variables = grafana.variable_values(model, {"prompt": [busiest]} if stem == "prompt" else None)
        for variable in model["templating"]["list"]:
            if variable["type"] == "query" and f"var:{variable['name']}" not in seen:
                seen.add(f"var:{variable['name']}")
                sql = queries.expand(variable["query"]["rawSql"], time_range)
                found.append(Case(f"variable {variable['name']}", sql, to_raw(sql, sources)))
        for panel in model["panels"]:
            if panel["type"] == "row":
                continue
            key = f"{stem}:{panel['title']}"
            raw_sql = panel["targets"][0]["rawSql"]
            if raw_sql in seen:  # several stats of one query: one measurement
                continue
            seen.add(raw_sql)
            sql = queries.expand(
                raw_sql,
                time_range,
                interval_s=grafana.interval_seconds(panel, time_range),
                variables=variables,
            )
            found.append(Case(key, sql, to_raw(sql, sources)))
    lookback = queries.TimeRange(end - dt.timedelta(seconds=alerts.LOOKBACK_S), end)
    for rule in alerts.rules(config):
        sql = queries.expand(rule.sql, lookback, interval_s=60)
        found.append(Case(f"alert {rule.uid.removeprefix('spancost-')}", sql, to_raw(sql, sources)))
    return found


# --- measuring ---------------------------------------------------------------------------------------------


def _timed(store: Store, sql: str) -> tuple[float, list[tuple[Any, ...]]]:
    began = time.perf_counter()
    rows = store.client.query(sql).result_rows
    return (time.perf_counter() - began) * 1000, rows


def _normal(value: Any) -> Any:
    if isinstance(value, float | Decimal):
        return float(f"{float(value):.6g}")
    return value


def same_answer(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    def key(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return sorted((tuple(_normal(v) for v in row) for row in rows), key=repr)

    return key(a) == key(b)


def settle(store: Store, limit_s: float = 900) -> dict[str, int]:
    """Wait until no merge runs and the active parts stop changing; the active parts per table."""
    began, last, stable = time.monotonic(), None, 0
    while time.monotonic() - began < limit_s:
        running = store.query(
            "SELECT count() FROM system.merges WHERE database = {db:String}", {"db": store.database}
        ).single_value()
        parts = dict(
            store.query(
                "SELECT table, count() FROM system.parts WHERE database = {db:String} AND active "
                "GROUP BY table ORDER BY table",
                {"db": store.database},
            ).rows
        )
        stable = stable + 1 if (running == 0 and parts == last) else 0
        if stable >= 3:
            return parts
        last = parts
        time.sleep(5)
    return last or {}


def merge_past_days(store: Store, today: dt.date) -> int:
    """What `min_age_to_force_merge_seconds` does to llm_calls and agent_runs an hour after a day's
    last insert: the day's partition becomes one part. Done here at once, for the days before
    `today`, rather than waiting the hour; today's parts stay as they are. Returns the partitions merged."""
    partitions = store.query(
        "SELECT table, partition_id FROM system.parts WHERE database = {db:String} AND active"
        " AND table IN ('llm_calls', 'agent_runs') GROUP BY table, partition_id"
        " HAVING count() > 1 AND partition_id < {today:String}",
        {"db": store.database, "today": f"{today:%Y%m%d}"},
    ).rows
    for table, partition in partitions:
        store.command(f"OPTIMIZE TABLE `{store.database}`.{table} PARTITION ID '{partition}' FINAL")
    return len(partitions)


def fill(store: Store, calls: int) -> None:
    have = store.query("SELECT count() FROM llm_calls").single_value() or 0
    if have:
        if abs(have - calls) > calls * 0.1:
            sys.exit(f"{store.dsn} holds {have:,} calls, not about {calls:,}: give an empty --store")
        print(f"reusing {have:,} calls in {store.dsn}")
        return
    began = time.perf_counter()

    def progress(written: int) -> None:
        rate = written / (time.perf_counter() - began)
        print(f"  generated {written:,} calls ({rate:,.0f}/s)", flush=True)

    summary = generate(store, TrafficPlan(calls=calls, days=31), progress)
    print(f"generated {summary.calls:,} calls in {summary.spans:,} spans in {summary.seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--store", default=str(REPO / ".spancost" / "bench-queries"), metavar="DIR")
    parser.add_argument("--repeat", type=int, default=7, help="Runs of each query (median).")
    parser.add_argument(
        "--raw-repeat", type=int, default=3, help="Runs of each raw twin, between the first ones (median)."
    )
    parser.add_argument("--only", default="", metavar="NAME", help="Only the cases whose name contains NAME.")
    args = parser.parse_args()

    store = Store(f"chdb://{args.store}")
    fill(store, args.calls)
    settle(store)
    merged = merge_past_days(store, dt.datetime.now(dt.timezone.utc).date())
    parts = settle(store)
    print(f"merged {merged} partitions of past days into one part each")
    counts = store.query(
        "SELECT (SELECT count() FROM otel_traces), (SELECT count() FROM llm_calls), "
        "(SELECT count() FROM llm_daily), (SELECT count() FROM agent_runs), "
        "(SELECT max(Timestamp) FROM llm_calls)"
    ).rows[0]
    end = counts[4].replace(tzinfo=dt.timezone.utc) + dt.timedelta(seconds=1)
    print(
        f"otel_traces {counts[0]:,} spans, llm_calls {counts[1]:,}, llm_daily {counts[2]:,} rows, "
        f"agent_runs {counts[3]:,}; active parts {parts}; ranges end {end:%Y-%m-%d %H:%M:%S} UTC"
    )
    sources = raw_sources(store)
    selected = [c for c in cases(store, end, sources) if args.only in c.name]
    print(
        "\n| query | rows | rollup ms | raw ms | raw / rollup | same answer |\n|---|---:|---:|---:|---:|---|"
    )
    worst, slowest_ratio = 0.0, float("inf")
    for case in selected:
        _timed(store, case.sql)  # warm: the first run reads from disk
        fast, slow = [], []
        rows: list[tuple[Any, ...]] = []
        raw_rows: list[tuple[Any, ...]] = []
        for run in range(args.repeat):
            took, rows = _timed(store, case.sql)
            fast.append(took)
            if run < args.raw_repeat:
                took, raw_rows = _timed(store, case.raw)
                slow.append(took)
        rollup, raw = statistics.median(fast), statistics.median(slow)
        worst, slowest_ratio = max(worst, rollup), min(slowest_ratio, raw / rollup)
        same = "yes" if same_answer(rows, raw_rows) else "NO"
        print(
            f"| {case.name} | {len(rows)} | {rollup:.0f} | {raw:.0f} | {raw / rollup:.0f}x | {same} |",
            flush=True,
        )
    print(
        f"\nslowest query {worst:.0f} ms (target {TARGET_MS:.0f}: "
        f"{'met' if worst < TARGET_MS else 'NOT met'}); "
        f"smallest speedup {slowest_ratio:.1f}x (target {TARGET_SPEEDUP:.0f}x: "
        f"{'met' if slowest_ratio >= TARGET_SPEEDUP else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
