"""The seeded traffic generator (`spancost.demo.traffic`) in a real embedded ClickHouse.

Small plans, each generated once per module into a database of its own in the session's chdb
directory (chdb opens one directory per process). A fixed `end` keeps results off the clock.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from dataclasses import fields, replace
from decimal import Decimal
from pathlib import Path

import pytest

from spancost import attributes as attr
from spancost.collector.rows import attribute_string
from spancost.costing import cost_attributes
from spancost.demo.traffic import (
    ANOMALIES,
    GROWN_PROMPT,
    PROFILES,
    SPIKE_HOURS,
    UNPRICED_MODEL,
    TrafficError,
    TrafficPlan,
    TrafficSummary,
    generate,
)
from spancost.pricing.table import DatedPrice, PriceTable, Rates, pricing_table
from spancost.store import Store

END = dt.datetime(2026, 12, 3, 15, tzinfo=dt.timezone.utc)
MONTH_START = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
BASE = TrafficPlan(calls=10_000, days=15, end=END, seed=11)
ALL = replace(BASE, anomalies=ANOMALIES)

_COST_PREFIXES = ("gen_ai.usage.cost", "spancost.cost", "spancost.price")
_SPAN_HASH = (
    "cityHash64(TraceId, SpanId, ParentSpanId, SpanName, toString(SpanAttributes), "
    "toString(ResourceAttributes), Duration, Timestamp, StatusCode, StatusMessage)"
)
_INFERENCE = tuple(sorted(attr.INFERENCE_OPERATIONS))

Generated = tuple[Store, TrafficSummary]


class Traffic:
    """Plans generated into databases of their own in one chdb directory, each plan once."""

    def __init__(self, chdb_dir: Path) -> None:
        self.chdb_dir = chdb_dir
        self.made: dict[TrafficPlan, Generated] = {}
        self.opened: list[Store] = []

    def fresh(self) -> Store:
        """An empty store (a new database)."""
        store = Store(f"chdb://{self.chdb_dir}?database=traffic_{uuid.uuid4().hex[:12]}")
        self.opened.append(store)
        return store

    def __call__(self, plan: TrafficPlan, *, again: bool = False) -> Generated:
        """`plan` generated (`again`: into another store, even if it was generated before)."""
        if again or plan not in self.made:
            store = self.fresh()
            result = (store, generate(store, plan))
            if again:
                return result
            self.made[plan] = result
        return self.made[plan]

    def close(self) -> None:
        for store in self.opened:
            store.command(f"DROP DATABASE IF EXISTS `{store.database}`")
            store.close()


@pytest.fixture(scope="module")
def traffic(chdb_dir: Path) -> Iterator[Traffic]:
    generated = Traffic(chdb_dir)
    yield generated
    generated.close()


def _ns(at: dt.datetime) -> int:
    return int(at.timestamp()) * 10**9


def _fingerprint(store: Store) -> tuple[int, int]:
    sql = f"SELECT count(), sum({_SPAN_HASH}) FROM `{store.database}`.otel_traces"
    count, total = store.query(sql).rows[0]
    return int(count), int(total)


def _traces(store: Store) -> dict[str, int]:
    """Every trace's id → a hash of all its spans."""
    rows = store.query(
        f"SELECT TraceId, sum({_SPAN_HASH}) FROM `{store.database}`.otel_traces GROUP BY TraceId"
    ).rows
    return {trace_id: int(h) for trace_id, h in rows}


def _inference_spans(store: Store, where: str = "1") -> list[tuple[str, str, str, int, dict[str, str]]]:
    """(TraceId, SpanId, ParentSpanId, start ns, attributes) of model-call spans."""
    return [
        (trace_id, span_id, parent, int(start), dict(attributes))
        for trace_id, span_id, parent, start, attributes in store.query(
            "SELECT TraceId, SpanId, ParentSpanId, toUnixTimestamp64Nano(Timestamp), SpanAttributes "
            f"FROM `{store.database}`.otel_traces "
            "WHERE SpanAttributes[{op:String}] IN {ops:Array(String)} AND " + where,
            {"op": attr.GEN_AI_OPERATION_NAME, "ops": list(_INFERENCE)},
        ).rows
    ]


def _daily(store: Store) -> dict[dt.date, Decimal]:
    rows = store.query(
        f"SELECT toDate(Timestamp) AS day, sum(CostUSD) FROM `{store.database}`.llm_calls FINAL "
        "GROUP BY day ORDER BY day"
    ).rows
    return {day: Decimal(cost) for day, cost in rows}


# --- costs -----------------------------------------------------------------------------------------


def test_every_cost_is_what_the_pricing_stage_computes(traffic: Traffic) -> None:
    store, summary = traffic(ALL)
    spans = _inference_spans(store)
    assert len(spans) == summary.calls
    unpriced = 0
    for _, span_id, _, start_ns, attributes in spans:
        written = {k: v for k, v in attributes.items() if k.startswith(_COST_PREFIXES)}
        bare = {k: v for k, v in attributes.items() if not k.startswith(_COST_PREFIXES)}
        expected = {k: attribute_string(v) for k, v in cost_attributes(bare, start_ns).items()}
        assert written == expected, span_id
        if attr.ERROR_TYPE in attributes:
            assert written == {}, span_id  # a failed call: no usage, no cost
        elif attributes[attr.GEN_AI_REQUEST_MODEL] == UNPRICED_MODEL:
            unpriced += 1
            assert attributes[attr.COST_STATUS] == attr.CostStatus.UNPRICED.value
            assert attr.GEN_AI_USAGE_COST_AMOUNT not in attributes
            assert attr.COST_INPUT not in attributes
    assert unpriced == summary.unpriced_calls > 0
    assert summary.priced_calls > 0.9 * summary.calls


def _odd_table() -> PriceTable:
    """The bundled table with every rate at 4 decimal places (ending in 5, so that half the parts
    round a tie) and a price change on 2 December: the generator's rounding and daily rates."""
    change = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)

    def odd(rates: Rates, factor: Decimal) -> Rates:
        values = {f.name: getattr(rates, f.name) for f in fields(Rates)}
        return Rates(**{k: None if v is None else v * factor + Decimal("0.0005") for k, v in values.items()})

    base = pricing_table()
    providers = []
    for provider in base.providers:
        models = []
        for model in provider.models:
            history = tuple(
                replace(d, prices=replace(d.prices, rates=odd(d.prices.rates, Decimal(1))))
                for d in model.history
            )
            if history[-1].start is None or history[-1].start < change:
                last = model.history[-1].prices
                history += (DatedPrice(change, replace(last, rates=odd(last.rates, Decimal("1.5")))),)
            models.append(replace(model, history=history))
        providers.append(replace(provider, models=tuple(models)))
    return PriceTable(providers, "odd-test")


def test_costs_round_and_change_price_like_the_pricing_stage(traffic: Traffic) -> None:
    table = _odd_table()
    store = traffic.fresh()
    summary = generate(store, TrafficPlan(calls=5_000, days=3, end=END, seed=5), table=table)
    spans = _inference_spans(store)
    assert len(spans) == summary.calls
    for _, span_id, _, start_ns, attributes in spans:
        written = {k: v for k, v in attributes.items() if k.startswith(_COST_PREFIXES)}
        bare = {k: v for k, v in attributes.items() if not k.startswith(_COST_PREFIXES)}
        expected = {k: attribute_string(v) for k, v in cost_attributes(bare, start_ns, table=table).items()}
        assert written == expected, span_id
    assert summary.priced_calls > 0
    assert {day.day for day in summary.daily_cost} == {1, 2, 3}  # both sides of the price change


def test_the_views_hold_what_the_spans_say(traffic: Traffic) -> None:
    store, summary = traffic(ALL)
    db = store.database
    joined, mismatched = store.query(
        f"SELECT count(), countIf(c.CostUSD != toDecimal64OrZero(t.SpanAttributes[{{amount:String}}], 9) "
        "OR c.InputTokens != toUInt64OrZero(t.SpanAttributes[{input:String}])) "
        f"FROM `{db}`.llm_calls AS c FINAL INNER JOIN `{db}`.otel_traces AS t "
        "ON c.TraceId = t.TraceId AND c.SpanId = t.SpanId",
        {"amount": attr.GEN_AI_USAGE_COST_AMOUNT, "input": attr.GEN_AI_USAGE_INPUT_TOKENS},
    ).rows[0]
    assert (joined, mismatched) == (summary.calls, 0)
    calls, cost = store.query(f"SELECT sum(Calls), sum(CostUSD) FROM `{db}`.llm_daily").rows[0]
    assert (calls, Decimal(cost)) == (summary.calls, summary.cost_usd)


# --- determinism ------------------------------------------------------------------------------------


def test_the_same_plan_gives_the_same_rows_and_another_seed_does_not(traffic: Traffic) -> None:
    first, summary = traffic(BASE)
    again, summary_again = traffic(BASE, again=True)
    other, _ = traffic(replace(BASE, seed=BASE.seed + 1))
    assert _fingerprint(again) == _fingerprint(first)
    assert replace(summary_again, seconds=0.0) == replace(summary, seconds=0.0)
    assert _fingerprint(other) != _fingerprint(first)
    assert not set(_traces(other)) & set(_traces(first))


# --- the summary -------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", [BASE, ALL], ids=["plain", "anomalies"])
def test_the_summary_is_what_the_store_holds(traffic: Traffic, plan: TrafficPlan) -> None:
    store, summary = traffic(plan)
    db = store.database
    calls, cost, priced, unpriced, failed, first, last = store.query(
        "SELECT count(), sum(CostUSD), countIf(CostStatus = 'priced'), countIf(CostStatus = 'unpriced'), "
        "countIf(StatusCode = 'Error'), min(Timestamp), max(Timestamp) "
        f"FROM `{db}`.llm_calls FINAL"
    ).rows[0]
    spans, traces, roots = store.query(
        f"SELECT count(), uniqExact(TraceId), countIf(ParentSpanId = '') FROM `{db}`.otel_traces"
    ).rows[0]
    runs = store.query(f"SELECT count() FROM `{db}`.agent_runs FINAL").single_value()
    assert summary.calls == calls
    assert summary.cost_usd == Decimal(cost) > 0
    assert (summary.priced_calls, summary.unpriced_calls, summary.failed_calls) == (priced, unpriced, failed)
    assert priced + unpriced + failed == calls  # a failed call has no cost status
    assert summary.spans == spans
    assert summary.traces == traces == roots
    assert summary.agent_runs == runs > 0
    assert summary.first is not None
    assert summary.last is not None
    assert summary.first.replace(tzinfo=None) == first.replace(tzinfo=None)
    assert summary.last.replace(tzinfo=None) == last.replace(tzinfo=None)
    assert summary.start == dt.datetime(2026, 11, 19, tzinfo=dt.timezone.utc)
    assert summary.end == END
    assert summary.start <= summary.first <= summary.last <= END
    assert summary.daily_cost == _daily(store)
    assert sum(summary.daily_cost.values()) == summary.cost_usd
    assert len(summary.daily_cost) == plan.days
    assert summary.unpriced_model == UNPRICED_MODEL
    models = store.query(
        f"SELECT DISTINCT RequestModel FROM `{db}`.llm_calls FINAL WHERE CostStatus = 'unpriced'"
    ).rows
    assert models == [(UNPRICED_MODEL,)]
    assert 0.003 < failed / calls < 0.02
    if not plan.anomalies:
        assert abs(calls - plan.calls) < 0.1 * plan.calls
        assert summary.spike_calls == 0
        assert summary.grown_prompt is summary.grown_at is summary.grown_version is None


# --- agent runs --------------------------------------------------------------------------------------


def test_agent_spans_roll_up_their_calls(traffic: Traffic) -> None:
    store, summary = traffic(ALL)
    db = store.database
    rows = store.query(
        "SELECT TraceId, SpanId, ParentSpanId, SpanAttributes, StatusCode "
        f"FROM `{db}`.otel_traces WHERE TraceId IN (SELECT TraceId FROM `{db}`.otel_traces "
        "WHERE SpanAttributes['gen_ai.operation.name'] = 'invoke_agent')"
    ).rows
    by_trace: dict[str, list[tuple[str, str, dict[str, str], str]]] = {}
    for trace_id, span_id, parent, attributes, status in rows:
        by_trace.setdefault(trace_id, []).append((span_id, parent, dict(attributes), status))
    assert len(by_trace) == summary.agent_runs
    for trace_id, spans in by_trace.items():
        ids = {span_id for span_id, *_ in spans}
        agents = [s for s in spans if s[2].get(attr.GEN_AI_OPERATION_NAME) == "invoke_agent"]
        assert len(agents) == 1, trace_id
        agent_id, agent_parent, rollup, _ = agents[0]
        assert agent_parent == "" or agent_parent in ids  # the root, or under the HTTP span
        calls = [s for s in spans if s[2].get(attr.GEN_AI_OPERATION_NAME) in _INFERENCE]
        tools = [s for s in spans if s[2].get(attr.GEN_AI_OPERATION_NAME) == "execute_tool"]
        assert 2 <= len(calls) <= 15
        assert len(spans) == 1 + len(calls) + len(tools) + (agent_parent != "")
        assert all(parent == agent_id for _, parent, _, _ in calls + tools), trace_id
        ok = [a for _, _, a, status in calls if status != "Error"]
        cost = sum((Decimal(a.get(attr.GEN_AI_USAGE_COST_AMOUNT, "0")) for a in ok), Decimal(0))
        unpriced = sum(a.get(attr.COST_STATUS) == attr.CostStatus.UNPRICED.value for a in ok)
        assert Decimal(rollup[attr.ROLLUP_COST]) == cost, trace_id
        assert int(rollup[attr.ROLLUP_LLM_CALLS]) == len(ok)
        assert int(rollup[attr.ROLLUP_INPUT_TOKENS]) == sum(
            int(a[attr.GEN_AI_USAGE_INPUT_TOKENS]) for a in ok
        )
        assert int(rollup[attr.ROLLUP_OUTPUT_TOKENS]) == sum(
            int(a.get(attr.GEN_AI_USAGE_OUTPUT_TOKENS, "0")) for a in ok
        )
        assert rollup.get(attr.ROLLUP_UNPRICED_CALLS) == (str(unpriced) if unpriced else None)
        assert rollup[attr.GEN_AI_AGENT_NAME]


# --- anomalies ----------------------------------------------------------------------------------------


def _prior_days(daily: dict[dt.date, Decimal], today: dt.date) -> list[float]:
    return [float(cost) for day, cost in daily.items() if day < today]


def test_spend_spike_only_when_asked(traffic: Traffic) -> None:
    today = END.date()
    runaway = PROFILES["runaway"]
    for plan, spiked in ((BASE, False), (replace(BASE, anomalies=frozenset({"spend_spike"})), True)):
        store, summary = traffic(plan)
        before = _prior_days(summary.daily_cost, today)
        assert len(before) == plan.days - 1
        mean = sum(before) / len(before)
        std = math.sqrt(sum((x - mean) ** 2 for x in before) / len(before))
        spend = float(summary.daily_cost[today])
        spike = store.query(
            "SELECT count(), min(Timestamp), max(Timestamp), uniqExact(WorkspaceId), uniqExact(UserId) "
            f"FROM `{store.database}`.llm_calls FINAL "
            "WHERE PromptName = {prompt:String} AND RequestModel = {model:String}",
            {"prompt": runaway.prompt, "model": runaway.mix[0][0]},
        ).rows[0]
        assert summary.spike_calls == spike[0]
        if spiked:
            assert spend >= mean + 3 * std
            assert spend >= 3 * mean
            assert spike[0] > 0
            assert spike[1].replace(tzinfo=dt.timezone.utc) >= END - dt.timedelta(hours=SPIKE_HOURS)
            assert spike[2].replace(tzinfo=dt.timezone.utc) <= END
            assert spike[3:] == (1, 1)  # one runaway agent
        else:
            assert spend < mean + 3 * std
            assert spike[0] == 0


def test_fast_burn_only_in_the_current_month(traffic: Traffic) -> None:
    plain, _ = traffic(BASE)
    burnt, summary = traffic(replace(BASE, anomalies=frozenset({"fast_burn"})))
    before, after = _daily(plain), summary.daily_cost
    month = [day for day in after if day >= MONTH_START.date()]
    assert len(month) == 3
    for day in after:
        if day < MONTH_START.date():
            assert after[day] == before[day], day  # earlier months untouched
    ratio = sum(after[d] for d in month) / sum(before[d] for d in month)
    assert 2.0 < ratio < 3.2  # spend is heavy-tailed; the trace counts below are exact
    roots = (
        "SELECT count() FROM `{}`.otel_traces WHERE ParentSpanId = '' "
        "AND Timestamp >= fromUnixTimestamp64Nano({{start:Int64}})"
    )
    start = {"start": int(MONTH_START.timestamp()) * 10**9}
    plain_traces = plain.query(roots.format(plain.database), start).single_value()
    burnt_traces = burnt.query(roots.format(burnt.database), start).single_value()
    assert 2.45 < burnt_traces / plain_traces < 2.55
    # The plain traffic is all still there, unchanged; the rest is extra traces.
    assert set(_traces(plain).items()) <= set(_traces(burnt).items())


def test_prompt_grew_only_when_asked_and_only_that_prompt(traffic: Traffic) -> None:
    plain, _ = traffic(BASE)
    grown, summary = traffic(replace(BASE, anomalies=frozenset({"prompt_grew"})))
    assert summary.grown_prompt == GROWN_PROMPT
    assert summary.grown_at == END - dt.timedelta(days=7)
    assert summary.grown_version == "v4"
    week = dt.timedelta(days=7)

    def per_call(store: Store, since: dt.datetime, until: dt.datetime) -> float:
        count, cost = store.query(
            f"SELECT count(), sum(CostUSD) FROM `{store.database}`.llm_calls FINAL "
            "WHERE PromptName = {prompt:String} AND CostStatus = 'priced' "
            "AND Timestamp >= fromUnixTimestamp64Nano({since:Int64}) "
            "AND Timestamp < fromUnixTimestamp64Nano({until:Int64})",
            {"prompt": GROWN_PROMPT, "since": _ns(since), "until": _ns(until)},
        ).rows[0]
        assert count > 100
        return float(cost) / count

    at = summary.grown_at
    assert per_call(grown, at, END) > 1.2 * per_call(grown, at - week, at)
    assert 0.85 < per_call(plain, at, END) / per_call(plain, at - week, at) < 1.15
    assert 1.3 < per_call(grown, at, END) / per_call(plain, at, END) < 1.7  # the same calls, 60% more input

    versions = grown.query(
        "SELECT PromptVersion, min(Timestamp), max(Timestamp) "
        f"FROM `{grown.database}`.llm_calls FINAL WHERE PromptName = {{prompt:String}} "
        "GROUP BY PromptVersion ORDER BY PromptVersion",
        {"prompt": GROWN_PROMPT},
    ).rows
    assert [v for v, *_ in versions] == ["v3", "v4"]
    assert versions[0][2].replace(tzinfo=dt.timezone.utc) < at + dt.timedelta(minutes=5)
    assert versions[1][1].replace(tzinfo=dt.timezone.utc) >= at

    # Every other trace is the plain one, span for span; the grown ones differ only there.
    changed = {
        trace_id
        for (trace_id, *_rest) in _inference_spans(grown, f"SpanAttributes['{attr.PROMPT_VERSION}'] = 'v4'")
    }
    before, after = _traces(plain), _traces(grown)
    assert set(before) == set(after)
    assert changed
    assert {t for t in before if before[t] != after[t]} == changed
    assert all(
        attributes[attr.PROMPT_NAME] == GROWN_PROMPT
        for *_ids, attributes in _inference_spans(grown, f"SpanAttributes['{attr.PROMPT_VERSION}'] = 'v4'")
    )


# --- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "words"),
    [
        (TrafficPlan(calls=0), ("calls 0",)),
        (TrafficPlan(days=0), ("days 0",)),
        (TrafficPlan(seed=-1), ("seed -1",)),
        (TrafficPlan(seed=2**63), ("seed",)),
        (TrafficPlan(anomalies=frozenset({"spend_spike", "bogus"})), ("unknown anomalies ['bogus']",)),
        (TrafficPlan(calls=-5, days=-1), ("calls -5", "days -1")),
    ],
    ids=["calls", "days", "negative-seed", "large-seed", "anomaly", "two-fields"],
)
def test_a_bad_plan_names_its_field(traffic: Traffic, plan: TrafficPlan, words: tuple[str, ...]) -> None:
    problems = plan.validate()
    assert len(problems) == len(words)
    for problem, word in zip(problems, words, strict=True):
        assert word in problem
    store = traffic.fresh()
    with pytest.raises(TrafficError, match="invalid traffic plan") as raised:
        generate(store, plan)
    assert all(word in str(raised.value) for word in words)
    assert _fingerprint(store)[0] == 0


def test_a_good_plan_has_no_problems() -> None:
    assert BASE.validate() == []
    assert ALL.validate() == []
    assert TrafficPlan(calls=1, days=1, seed=0).validate() == []


def test_spend_spike_needs_a_full_day_before_today() -> None:
    plan = TrafficPlan(calls=500, days=1, end=END, anomalies=frozenset({"spend_spike"}))
    assert plan.validate() == ["days 1: spend_spike needs at least one full day before today (days >= 2)"]


def test_spend_spike_needs_part_of_today_and_writes_nothing_without(traffic: Traffic) -> None:
    plan = TrafficPlan(calls=500, days=2, end=MONTH_START, anomalies=frozenset({"spend_spike"}))
    assert plan.validate() == []
    store = traffic.fresh()
    with pytest.raises(TrafficError, match="midnight"):
        generate(store, plan)
    assert store.query("SELECT count() FROM otel_traces").single_value() == 0


def test_generate_refuses_a_store_that_holds_traffic(traffic: Traffic) -> None:
    store, _ = traffic(BASE)
    held = _fingerprint(store)
    with pytest.raises(TrafficError, match="already holds traffic"):
        generate(store, BASE)
    with pytest.raises(TrafficError, match="already holds traffic"):
        generate(store, replace(BASE, seed=99, days=2))
    assert _fingerprint(store) == held
