"""Rendering for a person: rich tables and bars. Every function takes plain data and a Console."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from spancost.pricing.table import UNITS as _UNITS
from spancost.pricing.table import ModelPrice, PriceSet
from spancost.report import Report

BAR_WIDTH = 30


def usd(value: Any) -> str:
    """Money for reading: `$12.34` for amounts of a cent or more, four significant digits below that."""
    amount = Decimal(str(value))
    if amount == 0:
        return "$0"
    if abs(amount) >= Decimal("0.01"):
        return f"${amount:,.2f}"
    return f"${float(amount):.4g}" if abs(amount) >= Decimal("0.0001") else f"${float(amount):.2e}"


def usd_per_call(value: Any) -> str:
    """A per-call amount: always to the millionth of a dollar, so that rows compare digit by digit."""
    return f"${Decimal(str(value)):,.6f}"


def bar(value: float, maximum: float, width: int = BAR_WIDTH) -> Text:
    filled = 0 if maximum <= 0 else round(width * value / maximum)
    return Text("█" * filled, style="cyan")


def render_report(report: Report, console: Console) -> None:
    start = report.time_range.start.date()
    end = report.time_range.end.date()
    console.print(f"[bold]LLM spend {start} → {end}[/]  ({report.store})", soft_wrap=True)
    console.print(f"Total [bold]{usd(report.total_usd)}[/] over {report.calls:,} calls")
    if report.unpriced_calls:
        console.print(
            f"[yellow]{report.unpriced_calls:,} calls used models missing from the price table; "
            "they are counted as unpriced, not as $0 (`spancost pricing list`).[/]"
        )
    if not report.calls:
        console.print(
            "[yellow]No model calls in this range.[/] Instrument an app with spancost.instrument(), "
            "or run `spancost demo`."
        )
        return
    _daily(report.sections["daily_spend"], console)
    _by_prompt(report.sections["spend_by_prompt"], console)
    _per_call(report.sections["cost_per_call_by_prompt"], console)
    _histogram(report.sections["output_tokens_histogram"], console)


def _daily(rows: Sequence[dict[str, Any]], console: Console) -> None:
    table = Table(title="Daily spend", title_justify="left")
    table.add_column("day")
    table.add_column("spend", justify="right")
    table.add_column("calls", justify="right")
    table.add_column("")
    top = max((float(r["cost_usd"]) for r in rows), default=0.0)
    for row in rows:
        table.add_row(
            str(row["day"]), usd(row["cost_usd"]), f"{row['calls']:,}", bar(float(row["cost_usd"]), top)
        )
    console.print(table)


def _by_prompt(rows: Sequence[dict[str, Any]], console: Console) -> None:
    table = Table(title="Spend by prompt", title_justify="left")
    table.add_column("prompt", no_wrap=True)
    for name in ("spend", "share", "calls", "tokens in", "tokens out"):
        table.add_column(name, justify="right")
    table.add_column("", overflow="crop", no_wrap=True)
    for row in rows:
        share = float(row["share"])
        table.add_row(
            row["prompt"],
            usd(row["cost_usd"]),
            f"{share:.1%}",
            f"{row['calls']:,}",
            f"{row['input_tokens']:,}",
            f"{row['output_tokens']:,}",
            bar(share, 1.0, width=20),
        )
    console.print(table)


def _per_call(rows: Sequence[dict[str, Any]], console: Console) -> None:
    table = Table(title="Cost per call by prompt", title_justify="left")
    table.add_column("prompt", no_wrap=True)
    for name in ("calls", "mean", "median", "p95", "max"):
        table.add_column(name, justify="right")
    for row in rows:
        amounts = (usd_per_call(row[k]) for k in ("mean_usd", "p50_usd", "p95_usd", "max_usd"))
        table.add_row(row["prompt"], f"{row['calls']:,}", *amounts)
    console.print(table)


def _histogram(rows: Sequence[dict[str, Any]], console: Console) -> None:
    table = Table(title="Output tokens per call", title_justify="left")
    table.add_column("tokens", justify="right")
    table.add_column("calls", justify="right")
    table.add_column("spend", justify="right")
    table.add_column("")
    top = max((int(r["calls"]) for r in rows), default=0)
    for row in rows:
        low, high = row["bucket_from"], row["bucket_to"]
        label = f"{low:,}" if low == high else f"{low:,}–{high:,}"
        table.add_row(label, f"{row['calls']:,}", usd(row["cost_usd"]), bar(int(row["calls"]), top))
    console.print(table)


def _rates_rows(table: Table, label: str, prices: PriceSet) -> None:
    rates = prices.rates.as_dict()
    table.add_row(label, *(f"{rates[u]}" if u in rates else "–" for u in _UNITS))
    if prices.long_context is not None:
        lc = prices.long_context
        lc_rates = lc.rates.as_dict()
        table.add_row(
            f"{label}, input > {lc.above_input_tokens:,}",
            *(f"{lc_rates[u]}" if u in lc_rates else "–" for u in _UNITS),
        )


def render_model(model: ModelPrice, version: str, console: Console) -> None:
    console.print(f"[bold]{model.key}[/] — {model.name} ({model.kind})")
    console.print(f"checked {model.checked} · source {model.source} · table {version}")
    if model.notes:
        console.print(Text(model.notes, style="dim"))
    for dated in model.history:
        since = dated.start.date().isoformat() if dated.start else "the beginning"
        table = Table(title=f"USD per million tokens, from {since}", title_justify="left")
        table.add_column("tier")
        for unit in _UNITS:
            table.add_column(unit.removesuffix("_mtok").replace("_", " "), justify="right")
        _rates_rows(table, "standard", dated.prices)
        for tier, prices in dated.prices.service_tiers.items():
            _rates_rows(table, tier, prices)
        console.print(table)


def render_model_list(models: Sequence[ModelPrice], version: str, console: Console) -> None:
    table = Table(
        title=f"Price table {version}: USD per million tokens, current prices", title_justify="left"
    )
    table.add_column(
        "model", overflow="fold", min_width=min(max((len(m.key) for m in models), default=5), 24)
    )
    for name in ("in", "out", "cached", "write", "long"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("tiers", no_wrap=True)
    for model in models:
        prices = model.price_at(None)
        rates = prices.rates
        table.add_row(
            model.key,
            str(rates.input),
            str(rates.output),
            str(rates.cache_read) if rates.cache_read is not None else "–",
            str(rates.cache_write) if rates.cache_write is not None else "–",
            f">{prices.long_context.above_input_tokens // 1000}k" if prices.long_context else "",
            " ".join(tier[0].upper() for tier in prices.service_tiers),
        )
    console.print(table)
    console.print(
        "cached: cache read; write: 5-minute cache write; long: long-context threshold; "
        "tiers: B batch, F flex, P priority. `spancost pricing show MODEL` has the rest."
    )
