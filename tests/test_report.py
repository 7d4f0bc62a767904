"""The report's named queries on a store with known calls: exact totals, shares, per-call costs, buckets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import record_calls

from spancost import queries
from spancost.report import build_report

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

# gpt-4o-mini: 0.15 / 0.60 per million; claude-sonnet-4-5: 3 / 15.
CALLS = [
    {
        "at": dt.datetime(2026, 12, 1, 10, tzinfo=UTC),
        "model": "gpt-4o-mini",
        "input": 1000,
        "output": 100,
        "prompt": "summarize",
    },  # 0.00015 + 0.00006 = 0.00021
    {
        "at": dt.datetime(2026, 12, 1, 11, tzinfo=UTC),
        "model": "gpt-4o-mini",
        "input": 2000,
        "output": 300,
        "prompt": "summarize",
    },  # 0.0003 + 0.00018 = 0.00048
    {
        "at": dt.datetime(2026, 12, 2, 9, tzinfo=UTC),
        "model": "claude-sonnet-4-5",
        "provider": "anthropic",
        "input": 10_000,
        "output": 1000,
        "prompt": "reply",
    },  # 0.03 + 0.015 = 0.045
    {
        "at": dt.datetime(2026, 12, 2, 9, 30, tzinfo=UTC),
        "model": "gpt-4o-mini",
        "input": 100,
        "output": 0,
    },  # 0.000015
    {
        "at": dt.datetime(2026, 12, 3, 8, tzinfo=UTC),
        "model": "acme-ft",
        "input": 50,
        "output": 1,
        "prompt": "classify",
    },  # unpriced
    {
        "at": dt.datetime(2026, 10, 1, 8, tzinfo=UTC),
        "model": "gpt-4o-mini",
        "input": 1_000_000,
        "output": 0,
        "prompt": "summarize",
    },  # 0.15, outside the last 30 days
]


@pytest.fixture
def known_store(store, chdb_dir: Path):
    record_calls(f"chdb://{chdb_dir}", store.database, CALLS)
    return store


def test_daily_spend_fills_empty_days_and_counts_unpriced_calls(known_store) -> None:
    report = build_report(known_store, days=30, now=NOW)
    daily = {row["day"].isoformat(): row for row in report.sections["daily_spend"]}
    assert len(daily) == 30
    assert min(daily) == "2026-11-04"
    assert max(daily) == "2026-12-03"
    assert (daily["2026-12-01"]["cost_usd"], daily["2026-12-01"]["calls"]) == (Decimal("0.00069"), 2)
    assert (daily["2026-12-02"]["cost_usd"], daily["2026-12-02"]["calls"]) == (Decimal("0.045015"), 2)
    assert (daily["2026-12-03"]["cost_usd"], daily["2026-12-03"]["unpriced_calls"]) == (Decimal(0), 1)
    assert daily["2026-11-20"]["calls"] == 0
    assert (report.total_usd, report.calls, report.unpriced_calls) == (Decimal("0.045705"), 5, 1)


def test_spend_by_prompt_with_shares(known_store) -> None:
    rows = build_report(known_store, days=30, now=NOW).sections["spend_by_prompt"]
    assert [(r["prompt"], r["cost_usd"], r["calls"]) for r in rows] == [
        ("reply", Decimal("0.045"), 1),
        ("summarize", Decimal("0.00069"), 2),
        ("(untagged)", Decimal("0.000015"), 1),
        ("classify", Decimal("0"), 1),
    ]
    assert rows[0]["share"] == pytest.approx(0.045 / 0.045705)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)


def test_cost_per_call_ignores_unpriced_calls(known_store) -> None:
    rows = {
        r["prompt"]: r
        for r in build_report(known_store, days=30, now=NOW).sections["cost_per_call_by_prompt"]
    }
    assert set(rows) == {"reply", "summarize", "(untagged)"}
    summarize = rows["summarize"]
    assert summarize["calls"] == 2
    assert summarize["mean_usd"] == pytest.approx(0.000345)
    # quantileExact takes the value at position floor(level × n) of the sorted values:
    # for two calls, the larger.
    assert summarize["p50_usd"] == pytest.approx(0.00048)
    assert summarize["max_usd"] == pytest.approx(0.00048)


def test_output_token_histogram_buckets_by_powers_of_two(known_store) -> None:
    rows = build_report(known_store, days=30, now=NOW).sections["output_tokens_histogram"]
    assert [(r["bucket_from"], r["bucket_to"], r["calls"]) for r in rows] == [
        (0, 0, 1),
        (1, 1, 1),
        (64, 127, 1),
        (256, 511, 1),
        (512, 1023, 1),
    ]


def test_a_longer_range_includes_older_calls(known_store) -> None:
    report = build_report(known_store, days=90, now=NOW)
    assert report.total_usd == Decimal("0.195705")


# --- macros, expanded as the Grafana ClickHouse plugin expands them ---------------------------------

RANGE = queries.TimeRange(dt.datetime(2026, 11, 4, tzinfo=UTC), dt.datetime(2026, 12, 3, 12, tzinfo=UTC))


@pytest.mark.parametrize(
    ("sql", "expanded"),
    [
        (
            "$__timeFilter(Timestamp)",
            "Timestamp >= toDateTime(1793750400) AND Timestamp <= toDateTime(1796299200)",
        ),
        (
            "$__timeFilter_ms(T)",
            "T >= fromUnixTimestamp64Milli(1793750400000) AND T <= fromUnixTimestamp64Milli(1796299200000)",
        ),
        ("$__dateFilter(Date)", "Date >= toDate('2026-11-04') AND Date <= toDate('2026-12-03')"),
        (
            "$__dateTimeFilter(D, T)",
            "(D >= toDate('2026-11-04') AND D <= toDate('2026-12-03')) AND "
            "(T >= toDateTime(1793750400) AND T <= toDateTime(1796299200))",
        ),
        ("$__fromTime / $__toTime", "toDateTime(1793750400) / toDateTime(1796299200)"),
        ("$__timeInterval(Timestamp)", "toStartOfInterval(toDateTime(Timestamp), INTERVAL 3600 second)"),
        ("$__timeInterval_ms(T)", "toStartOfInterval(toDateTime64(T, 3), INTERVAL 3600000 millisecond)"),
        ("$__interval_s", "3600"),
        ("PromptName IN (${prompt:singlequote})", "PromptName IN ('a','it\\'s')"),
        ("Model = '$model'", "Model = 'gpt-4o'"),
    ],
)
def test_macros_expand_like_the_grafana_plugin(sql: str, expanded: str) -> None:
    variables = {"prompt": ["a", "it's"], "model": "gpt-4o"}
    assert queries.expand(sql, RANGE, interval_s=3600, variables=variables) == expanded


def test_macro_errors_name_the_macro() -> None:
    with pytest.raises(queries.QueryError, match=r"\$__timeFilter expects 1 argument"):
        queries.expand("$__timeFilter(a, b)", RANGE)
    with pytest.raises(queries.QueryError, match=r"template variable \$workspace has no value"):
        queries.expand("WorkspaceId = '${workspace}'", RANGE)
    with pytest.raises(queries.QueryError, match="no named query 'nope'"):
        queries.load("nope")


EVERY_VARIABLE = {**queries.ALL_FILTERS, "budget_usd": "100", "anomaly_days": "30", "prompt_min_calls": "1"}


def _every_query(store) -> dict[str, list[tuple]]:
    return {
        name: sorted(store.query(queries.render(name, RANGE, variables=EVERY_VARIABLE)).rows, key=repr)
        for name in queries.names()
    }


def test_every_named_query_has_a_title_and_runs(known_store) -> None:
    variables = EVERY_VARIABLE
    for name in queries.names():
        query = queries.load(name)
        assert query.title, name
        assert query.description, name
        rendered = queries.render(name, RANGE, variables=variables)
        assert "$" not in rendered, name
        assert "{{" not in rendered, name
        known_store.query(rendered)


def test_a_span_stored_twice_counts_once_in_every_panel_and_rule(known_store) -> None:
    """Every named query (the dashboards' panels, value lists and alert rules too) answers the same
    after every span is stored a second time: the duplicates stay as separate rows (merges stopped),
    and the queries alone must count them once."""
    before = _every_query(known_store)
    assert before["unpriced_models"], "the known calls include an unpriced one"
    known_store.command("SYSTEM STOP MERGES llm_calls")
    known_store.command("SYSTEM STOP MERGES agent_runs")
    known_store.command(
        "INSERT INTO otel_traces SELECT * FROM otel_traces", settings={"insert_deduplicate": 0}
    )
    assert known_store.query("SELECT count() FROM llm_calls").single_value() == 2 * len(CALLS)
    assert _every_query(known_store) == before


def test_a_span_stored_twice_counts_once_in_every_section(known_store) -> None:
    before = build_report(known_store, days=30, now=NOW)
    # What a second collector behind a load balancer (or a client retry that outlived the collector's
    # memory of span ids) does: the same spans inserted again, with ClickHouse's block deduplication
    # off so that nothing upstream of the queries drops them. Merges are stopped so that the
    # duplicates stay in llm_calls as separate rows: the queries alone must count them once.
    known_store.command("SYSTEM STOP MERGES llm_calls")
    known_store.command(
        "INSERT INTO otel_traces SELECT * FROM otel_traces", settings={"insert_deduplicate": 0}
    )
    assert known_store.query("SELECT count() FROM llm_calls").single_value() == 2 * len(CALLS)
    after = build_report(known_store, days=30, now=NOW)
    assert after.sections == before.sections
    assert (after.total_usd, after.calls) == (Decimal("0.045705"), 5)
