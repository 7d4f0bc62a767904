"""`reprice`: stored spans re-priced after a price change, everywhere the cost is read, exactly once."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import record_calls

from spancost.collector.reprice import reprice
from spancost.pricing import build_table, default_table

UTC = dt.timezone.utc
DAY1 = dt.datetime(2026, 11, 20, 10, tzinfo=UTC)
DAY2 = dt.datetime(2026, 11, 21, 10, tzinfo=UTC)

# Bundled: gpt-4o-mini 0.15 / 0.60, claude-haiku-4-5 1 / 5 per million.
CALLS = [
    {"at": DAY1, "model": "gpt-4o-mini", "input": 1000, "output": 100, "prompt": "a"},  # 0.00021
    {"at": DAY2, "model": "gpt-4o-mini", "input": 2000, "output": 200, "prompt": "a"},  # 0.00042
    {
        "at": DAY2,
        "model": "claude-haiku-4-5",
        "provider": "anthropic",
        "input": 1000,
        "output": 100,
        "prompt": "b",
    },  # 0.0015
    {"at": DAY2, "model": "acme-ft-7", "input": 500, "output": 50, "prompt": "c"},  # unpriced
]

NEGOTIATED = """
- provider: openai
  name: OpenAI
  pricing_url: https://openai.com/api/pricing/
  models:
    - id: gpt-4o-mini
      name: GPT-4o mini (negotiated)
      checked: 2026-12-01
      source: https://example.com/our-contract
      prices: {input_mtok: 0.1, output_mtok: 0.4}
- provider: acme
  name: Acme
  pricing_url: https://acme.example/pricing
  models:
    - id: acme-ft-7
      name: Acme fine-tune 7
      checked: 2026-12-01
      source: https://acme.example/pricing
      prices: {input_mtok: 2, output_mtok: 10}
"""


@pytest.fixture
def priced_store(store, chdb_dir: Path):
    record_calls(f"chdb://{chdb_dir}", store.database, CALLS)
    return store


@pytest.fixture
def negotiated(tmp_path: Path):
    path = tmp_path / "prices.yml"
    path.write_text(NEGOTIATED)
    return build_table([path])


def _costs(store) -> dict[str, tuple[Decimal, str]]:
    rows = store.query("SELECT Model, sum(CostUSD), any(CostStatus) FROM llm_calls FINAL GROUP BY Model").rows
    return {model: (cost, status) for model, cost, status in rows}


def test_reprice_rewrites_traces_calls_and_daily_totals(priced_store, negotiated) -> None:
    """New prices: gpt-4o-mini 0.1 / 0.4 → 1000×0.1 + 100×0.4 = $0.00014 and 2000×0.1 + 200×0.4 = $0.00028;
    acme-ft-7 now priced at 2 / 10 → 500×2 + 50×10 = $0.0015; claude-haiku-4-5 keeps $0.0015 but is
    re-priced too: every span records the price version that priced it."""
    result = reprice(priced_store, DAY1, table=negotiated)
    assert (result.examined, result.repriced, result.kept_provider_cost) == (4, 4, 0)
    assert result.cost_before == Decimal("0.00213")
    assert result.cost_after == Decimal("0.00342")
    assert result.version == negotiated.version

    assert _costs(priced_store) == {
        "gpt-4o-mini": (Decimal("0.00042"), "priced"),
        "claude-haiku-4-5": (Decimal("0.0015"), "priced"),
        "acme-ft-7": (Decimal("0.0015"), "priced"),
    }
    assert priced_store.query("SELECT count() FROM llm_calls FINAL").single_value() == 4
    daily = priced_store.query(
        "SELECT Date, sum(Calls), sum(CostUSD) FROM llm_daily GROUP BY Date ORDER BY Date"
    ).rows
    assert daily == [(DAY1.date(), 1, Decimal("0.00014")), (DAY2.date(), 3, Decimal("0.00328"))]
    versions = priced_store.query(
        "SELECT SpanAttributes['spancost.price.version'], SpanAttributes['gen_ai.usage.cost.amount']"
        " FROM otel_traces WHERE SpanAttributes['gen_ai.request.model'] = 'gpt-4o-mini' ORDER BY Timestamp"
    ).rows
    assert versions == [(negotiated.version, "0.00014"), (negotiated.version, "0.00028")]


def test_reprice_is_idempotent(priced_store, negotiated) -> None:
    reprice(priced_store, DAY1, table=negotiated)
    again = reprice(priced_store, DAY1, table=negotiated)
    assert (again.examined, again.repriced) == (4, 0)
    assert priced_store.query("SELECT sum(Calls), sum(CostUSD) FROM llm_daily").first() == (
        4,
        Decimal("0.00342"),
    )


def test_reprice_one_model_and_a_date(priced_store, negotiated) -> None:
    result = reprice(priced_store, DAY2, model="gpt-4o-mini-2024-07-18", table=negotiated)
    assert (result.examined, result.repriced) == (1, 1)
    costs = _costs(priced_store)
    assert costs["gpt-4o-mini"] == (Decimal("0.00049"), "priced")  # 0.00021 (day 1, untouched) + 0.00028
    assert costs["acme-ft-7"] == (Decimal("0"), "unpriced")


def test_a_cost_that_came_with_the_span_is_kept(store, chdb_dir: Path, negotiated) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from spancost.collector.exporter import ClickHouseSpanExporter
    from spancost.instrumentation.processor import SpancostSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(
        SpancostSpanProcessor(
            SimpleSpanProcessor(ClickHouseSpanExporter(f"chdb://{chdb_dir}", database=store.database))
        )
    )
    start = int(DAY1.timestamp() * 1e9)
    span = provider.get_tracer("t").start_span(
        "chat gpt-4o-mini",
        start_time=start,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 1,
            "gen_ai.usage.cost.amount": 0.5,
        },
    )
    span.end(end_time=start + 1000)
    provider.shutdown()
    result = reprice(store, DAY1, table=negotiated)
    assert (result.kept_provider_cost, result.repriced) == (1, 0)
    assert _costs(store)["gpt-4o-mini"] == (Decimal("0.5"), "provider")


def test_reprice_with_the_bundled_table_changes_nothing(priced_store) -> None:
    result = reprice(priced_store, DAY1, table=default_table())
    assert (result.examined, result.repriced) == (4, 0)


def test_reprice_command_json(
    priced_store, chdb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from spancost.cli.app import cli
    from spancost.pricing import set_default_table

    prices = tmp_path / "prices.yml"
    prices.write_text(NEGOTIATED)
    monkeypatch.setenv("SPANCOST_PRICES", str(prices))
    set_default_table(None)
    try:
        result = CliRunner().invoke(
            cli,
            [
                "reprice",
                "--store",
                f"chdb://{chdb_dir}?database={priced_store.database}",
                "--since",
                "2026-11-20",
                "--model",
                "acme-ft-7",
                "--json",
            ],
        )
    finally:
        set_default_table(None)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert (payload["ok"], payload["examined"], payload["repriced"]) == (True, 1, 1)
    assert payload["cost_after_usd"] == 0.0015
    assert payload["days"] == ["2026-11-21"]
