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


# --- serve -------------------------------------------------------------------------------------------


class _Port(click.ParamType):
    """A port number, 0 for any free port, or `off` for no receiver."""

    name = "PORT|off"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() in ("off", "none", "no"):
            return None
        try:
            port = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a port number, 0 or off", param, ctx)
        if not 0 <= port <= 65535:
            self.fail(f"{port} is not a port: give 0 (any free port) to 65535, or off", param, ctx)
        return port


@cli.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--http-port", type=_Port(), default="4318", show_default=True, help="OTLP/HTTP port, or off.")
@click.option("--grpc-port", type=_Port(), default="4317", show_default=True, help="OTLP/gRPC port, or off.")
@click.option(
    "--auth-token",
    envvar="SPANCOST_AUTH_TOKEN",
    default=None,
    metavar="TOKEN",
    help="Bearer token every export (and query) must carry. Default: $SPANCOST_AUTH_TOKEN, else none.",
)
@click.option(
    "--spool",
    default=None,
    metavar="DIR",
    help="Where batches wait while the store is down. Default: beside an embedded store, else "
    "./.spancost/spool.",
)
@click.option(
    "--spool-max-mib", type=click.IntRange(min=1), default=1024, show_default=True, help="Spool size limit."
)
@click.option(
    "--cluster",
    default=None,
    metavar="NAME",
    help="Create the schema ON CLUSTER NAME, with Replicated tables.",
)
@click.option(
    "--ttl-days",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Drop spans older than this many days (0: keep them).",
)
@click.option(
    "--batch-rows", type=click.IntRange(min=1), default=10_000, show_default=True, help="Spans per insert."
)
@click.option(
    "--batch-delay",
    type=click.FloatRange(min=0, min_open=True),
    default=0.5,
    show_default=True,
    help="Seconds a span may wait for its batch to fill.",
)
@click.option(
    "--queue-rows",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Spans held in memory; beyond it exports are told to retry (429).",
)
@click.option(
    "--max-body-mib",
    type=click.IntRange(min=1, max=2047),
    default=16,
    show_default=True,
    help="Largest export body, after decompression.",
)
@click.option(
    "--capture-content/--no-capture-content",
    default=None,
    help="Keep prompt and completion text other instrumentations send. Default: "
    "$OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, else off.",
)
@click.option(
    "--shutdown-grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to finish requests and flush the queue on SIGTERM.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve(
    store: str | None,
    host: str,
    http_port: int | None,
    grpc_port: int | None,
    auth_token: str | None,
    spool: str | None,
    spool_max_mib: int,
    cluster: str | None,
    ttl_days: int,
    batch_rows: int,
    batch_delay: float,
    queue_rows: int,
    max_body_mib: int,
    capture_content: bool | None,
    shutdown_grace: float,
    log_level: str,
) -> None:
    """Receive OTLP traces (gRPC and HTTP), price them, and store them in ClickHouse.

    Runs until SIGTERM or Ctrl-C, then finishes the requests in flight and flushes its queue. While
    the store is down, batches wait in the spool and are replayed once it answers.
    """
    import logging
    from dataclasses import replace

    from spancost.collector.config import MIB, ReceiverConfig
    from spancost.collector.pipeline import PipelineConfig
    from spancost.collector.server import ServeConfig, Server, spool_dir

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServeConfig(
        dsn=store or default_dsn(),
        receivers=ReceiverConfig.from_env(
            host=host,
            auth_token=auth_token,
            max_body_bytes=max_body_mib * MIB,
            capture_content=capture_content,
        ),
        pipeline=PipelineConfig(
            max_batch_rows=batch_rows,
            max_batch_delay_s=batch_delay,
            max_queue_rows=max(queue_rows, batch_rows),
            spool_dir=spool_dir(spool),
            spool_max_bytes=spool_max_mib * MIB,
            spool_segment_bytes=min(64 * MIB, spool_max_mib * MIB),
        ),
        cluster=cluster,
        ttl_days=ttl_days,
        shutdown_grace_s=shutdown_grace,
    )
    # `off` is None, which `with_` would read as "left unset": the ports are set directly.
    config.receivers = replace(config.receivers, http_port=http_port, grpc_port=grpc_port)
    with boundary(False):
        try:
            server = Server(config)
        except ValueError as err:
            raise click.UsageError(str(err)) from err
        status = server.run()
    sys.exit(status)


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


# --- dashboards -------------------------------------------------------------------------------------


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_path",
        default=None,
        metavar="FILE",
        help="spancost.toml to read (default: $SPANCOST_CONFIG, else ./spancost.toml, else the defaults).",
    )(func)


def _load_config(path: str | None) -> Any:
    from spancost.config import ConfigError, load_config

    try:
        return load_config(path)
    except (ConfigError, OSError) as err:
        raise click.ClickException(str(err)) from err


@cli.group()
def dashboards() -> None:
    """Grafana dashboards, alert rules and provisioning, generated from code and spancost.toml."""


@dashboards.command("build")
@config_option
@click.option(
    "--out",
    default="dashboards/provisioning",
    show_default=True,
    metavar="DIR",
    help="The provisioning directory Grafana mounts at /etc/grafana/provisioning.",
)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a build would change a file.")
def dashboards_build(config_path: str | None, out: str, check: bool) -> None:
    """Write the datasource, dashboards, alert rules, contact points and notification policy."""
    from pathlib import Path

    from spancost.dashboards import build

    config = _load_config(config_path)
    directory = Path(out)
    source = config.source or "defaults"
    if check:
        problems = build.differences(config, directory)
        if problems:
            for problem in problems:
                err_console.print(f"{directory}/{problem}")
            raise click.ClickException(
                f"{len(problems)} file(s) out of date: run `spancost dashboards build`"
            )
        console.print(f"{directory}: up to date with {source}")
        return
    written = build.write(config, directory)
    console.print(f"wrote {len(written)} files under {directory} from {source}")
