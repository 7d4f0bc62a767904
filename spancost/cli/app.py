"""The `spancost` command line. Commands parse flags, call the library, render, and set the exit code.

Domain errors (a bad price file, an unreachable store) become one-line messages here, at the
boundary; with `--json` they become `{"ok": false, "error": ...}` on stdout and exit 1.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import click
from rich.console import Console

from spancost import __version__
from spancost.pricing import PriceTableError, Usage, cost_of, default_table
from spancost.queries import QueryError
from spancost.store import STORE_ENV, StoreError, default_dsn

DOMAIN_ERRORS = (PriceTableError, StoreError, QueryError)

console = Console()
err_console = Console(stderr=True)


def _print_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextmanager
def boundary(as_json: bool) -> Iterator[None]:
    """Turn spancost's own errors into a message and exit status 1."""
    try:
        yield
    except DOMAIN_ERRORS as err:
        if as_json:
            _print_json({"ok": False, "error": str(err)})
            sys.exit(1)
        raise click.ClickException(str(err)) from err


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for a program instead of tables."
    )(func)


def store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store",
        envvar=STORE_ENV,
        default=None,
        metavar="DSN",
        help=f"The store: chdb:///path (embedded) or http(s)://host:8123. Default: ${STORE_ENV}, "
        "else chdb://./.spancost/store.",
    )(func)


def _parse_at(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or an ISO time") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spancost")
def cli() -> None:
    """spancost: what every LLM call costs, on OpenTelemetry."""


# --- pricing ---------------------------------------------------------------------------------------


@cli.group()
def pricing() -> None:
    """Look up the price table (bundled, plus $SPANCOST_PRICES)."""


@pricing.command("list")
@click.option("--provider", help="Only this provider's models (openai, anthropic, google).")
@json_option
def pricing_list(provider: str | None, as_json: bool) -> None:
    """Every model in the price table with its current price."""
    from spancost.cli.render import render_model_list

    with boundary(as_json):
        table = default_table()
        models = [m for m in table.models() if provider is None or m.provider == provider]
        if as_json:
            _print_json(
                {"ok": True, "version": table.version, "models": [_model_json(m, None) for m in models]}
            )
            return
        render_model_list(models, table.version, console)


def _model_json(model: Any, at: dt.datetime | None) -> dict[str, Any]:
    prices = model.price_at(at)
    return {
        "key": model.key,
        "name": model.name,
        "kind": model.kind,
        "checked": model.checked.isoformat(),
        "source": model.source,
        "prices": prices.rates.as_dict(),
        "long_context": (
            {
                "above_input_tokens": prices.long_context.above_input_tokens,
                **prices.long_context.rates.as_dict(),
            }
            if prices.long_context
            else None
        ),
        "service_tiers": {name: tier.rates.as_dict() for name, tier in prices.service_tiers.items()},
        "history": [d.start.date().isoformat() if d.start else None for d in model.history],
    }


def _find(model: str) -> Any:
    table = default_table()
    entry = table.find(model)
    if entry is None:
        raise click.ClickException(
            f"{model!r} is not in the price table: calls to it are recorded as unpriced. "
            "Add it with a file in $SPANCOST_PRICES (see `spancost pricing list`)."
        )
    return table, entry


@pricing.command("show")
@click.argument("model")
@click.option("--at", "at", metavar="DATE", help="Show the price in force on this date (default: today).")
@json_option
def pricing_show(model: str, at: str | None, as_json: bool) -> None:
    """The price entry that MODEL matches (any spelling: dated, prefixed, Bedrock, Vertex)."""
    from spancost.cli.render import render_model

    with boundary(as_json):
        table, entry = _find(model)
        if as_json:
            _print_json(
                {"ok": True, "model": model, "version": table.version, **_model_json(entry, _parse_at(at))}
            )
            return
        render_model(entry, table.version, console)


@pricing.command("cost")
@click.argument("model")
@click.option(
    "--input",
    "input_tokens",
    type=click.IntRange(min=0),
    required=True,
    help="All input tokens, cached ones included (the semantic-convention count).",
)
@click.option(
    "--output",
    "output_tokens",
    type=click.IntRange(min=0),
    required=True,
    help="All output tokens, reasoning included.",
)
@click.option(
    "--cache-read", type=click.IntRange(min=0), default=0, help="Of the input, tokens read from cache."
)
@click.option(
    "--cache-write", type=click.IntRange(min=0), default=0, help="Of the input, tokens written to cache."
)
@click.option(
    "--cache-write-1h",
    type=click.IntRange(min=0),
    default=0,
    help="Of the cache writes, those to the 1-hour cache.",
)
@click.option("--reasoning", type=click.IntRange(min=0), default=0, help="Of the output, reasoning tokens.")
@click.option("--tier", default=None, help="Service tier: standard, batch, flex or priority.")
@click.option("--at", "at", metavar="DATE", help="Price as of this date (default: now).")
@json_option
def pricing_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read: int,
    cache_write: int,
    cache_write_1h: int,
    reasoning: int,
    tier: str | None,
    at: str | None,
    as_json: bool,
) -> None:
    """What one call to MODEL costs with the given token counts."""
    if cache_read + cache_write > input_tokens:
        raise click.BadParameter(
            "--cache-read plus --cache-write cannot exceed --input (input includes them)"
        )
    if cache_write_1h > cache_write:
        raise click.BadParameter("--cache-write-1h is a part of --cache-write and cannot exceed it")
    if reasoning > output_tokens:
        raise click.BadParameter("--reasoning is a part of --output and cannot exceed it")
    with boundary(as_json):
        table, entry = _find(model)
        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cache_write_1h_tokens=cache_write_1h,
            reasoning_tokens=reasoning,
            service_tier=tier,
        )
        cost = cost_of(usage, entry, at=_parse_at(at), version=table.version)
        parts = {
            "input": cost.input,
            "output": cost.output,
            "cache_read": cost.cache_read,
            "cache_write": cost.cache_write,
        }
        if as_json:
            _print_json(
                {
                    "ok": True,
                    "model": model,
                    "key": cost.key,
                    "version": cost.version,
                    "tier": cost.tier,
                    "total_usd": str(cost.total),
                    "parts_usd": {k: str(v) for k, v in parts.items()},
                }
            )
            return
        console.print(f"[bold]{cost.total:f} USD[/]  {cost.key} · tier {cost.tier} · table {cost.version}")
        for name, value in parts.items():
            console.print(f"  {name:<12} {value:f}")


# --- report ------------------------------------------------------------------------------------------


@cli.command()
@store_option
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, help="How many days back.")
@json_option
def report(store: str | None, days: int, as_json: bool) -> None:
    """Daily spend, spend by prompt, cost per call and output tokens, from the store."""
    from spancost.report import build_report
    from spancost.store import Store

    with boundary(as_json), Store(store or default_dsn()) as opened:
        result = build_report(opened, days)
    if as_json:
        _print_json(result.as_json())
        return
    from spancost.cli.render import render_report

    render_report(result, console)


# --- reprice ---------------------------------------------------------------------------------------


@cli.command()
@store_option
@click.option(
    "--since",
    "since",
    required=True,
    metavar="DATE",
    help="Re-price spans from this date (YYYY-MM-DD, UTC) or ISO time on.",
)
@click.option("--model", default=None, help="Only this model's spans (any spelling of its price entry).")
@json_option
def reprice(store: str | None, since: str, model: str | None, as_json: bool) -> None:
    """Re-price stored spans with the current price table (bundled plus $SPANCOST_PRICES).

    Costs are stored when calls are made and never recomputed behind your back; run this after a
    price change. Spans whose cost came with them are left alone. Each re-priced span records the
    new price version.
    """
    from rich.progress import Progress

    from spancost.collector.reprice import reprice as run_reprice
    from spancost.store import Store

    moment = _parse_at(since)
    assert moment is not None  # `since` is required
    with (
        boundary(as_json),
        Store(store or default_dsn()) as opened,
        Progress(console=err_console, transient=True, disable=as_json) as progress,
    ):
        task = progress.add_task("re-pricing spans", total=None)
        result = run_reprice(opened, moment, model=model, progress=lambda n: progress.advance(task, n))
    if as_json:
        _print_json(result.as_json())
        return
    console.print(
        f"examined {result.examined:,} model-call spans since {moment.date()}; re-priced {result.repriced:,} "
        f"with the price table {result.version}"
    )
    console.print(
        f"cost of the examined spans: {result.cost_before:f} USD before, {result.cost_after:f} USD now"
    )
    if result.kept_provider_cost:
        console.print(f"{result.kept_provider_cost:,} spans kept the cost that came with them")
    if result.days:
        console.print("days rewritten: " + ", ".join(day.isoformat() for day in result.days), soft_wrap=True)


# --- demo --------------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--store",
    default=None,
    metavar="DSN",
    help="Where the demo writes (it is emptied first). Default: chdb://./.spancost/demo.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=90),
    default=30,
    show_default=True,
    help="Days of simulated traffic.",
)
@click.option(
    "--actions",
    type=click.IntRange(min=1),
    default=1500,
    show_default=True,
    help="Simulated user actions in all.",
)
@click.option("--seed", type=int, default=7, show_default=True)
def demo(store: str | None, days: int, actions: int, seed: int) -> None:
    """Simulate a month of LLM traffic through the real SDKs into an embedded store, then report it."""
    from spancost.cli.render import render_report
    from spancost.demo.run import default_demo_dsn, run_demo

    dsn = store or default_demo_dsn()
    with boundary(False):
        result = run_demo(dsn, days=days, actions=actions, seed=seed, console=err_console)
    render_report(result, console)
    console.print(f"\nSee it again with: spancost report --store {dsn} --days {days}", soft_wrap=True)
