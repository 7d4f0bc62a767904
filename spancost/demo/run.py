"""`spancost demo`: a month of simulated traffic, instrumented for real, into an embedded store.

The application side is real: the openai and anthropic SDKs, `spancost.instrument()`, the
OpenTelemetry SDK with a batch span processor and `ClickHouseSpanExporter`, ClickHouse through
chdb. Only two things are simulated: the provider (a local HTTP server answering like the real
APIs, `fake_provider`) and the clock (each user action runs at its simulated time, so that the
month fits in a few seconds and every call is priced with the price of its day).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from rich.console import Console
from rich.progress import Progress

from spancost.demo.fake_provider import FakeProvider
from spancost.demo.workload import Workload, plan
from spancost.report import Report, build_report
from spancost.store import Store, StoreError, chdb_path

DEMO_DIR = Path(".spancost") / "demo"
_MARKER = ".spancost-demo"

_offset_ns: contextvars.ContextVar[int] = contextvars.ContextVar("spancost_demo_clock_offset", default=0)


def default_demo_dsn() -> str:
    return f"chdb://{(Path.cwd() / DEMO_DIR).resolve()}"


@contextlib.contextmanager
def simulated_clock() -> Iterator[None]:
    """Make the OpenTelemetry SDK stamp spans with simulated time: real time plus the action's offset.

    Durations stay real; only where in the month a span falls is simulated. Demo only.
    """
    real_time_ns = sdk_trace.time_ns  # type: ignore[attr-defined]
    sdk_trace.time_ns = lambda: real_time_ns() + _offset_ns.get()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        sdk_trace.time_ns = real_time_ns  # type: ignore[attr-defined]


def _fresh_store_dir(dsn: str) -> None:
    path = chdb_path(dsn)
    if path is None:
        raise StoreError("the demo writes to an embedded store only (chdb:///path); it empties it first")
    if path.exists() and any(path.iterdir()):
        if not (path / _MARKER).exists():
            raise StoreError(
                f"{path} is not empty and was not made by `spancost demo`; choose another --store"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / _MARKER).write_text("made by spancost demo; emptied on every run\n")


def run_demo(
    dsn: str, *, days: int = 30, actions: int = 1500, seed: int = 7, console: Console | None = None
) -> Report:
    """Simulate, store, and return the report over the simulated days."""
    import anthropic
    import openai

    import spancost

    console = console or Console(stderr=True)
    _fresh_store_dir(dsn)
    now = dt.datetime.now(dt.timezone.utc)
    actions_plan = plan(days, actions, seed, now)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-desk", "service.version": "2.4.0"})
    )
    trace.set_tracer_provider(provider)
    started = time.perf_counter()
    with FakeProvider(seed=seed, error_rate=0.004) as fake, simulated_clock():
        spancost.instrument(tracer_provider=provider, store=dsn)
        try:
            workload = Workload(
                openai.OpenAI(api_key="demo", base_url=fake.openai_base_url, max_retries=2),
                anthropic.Anthropic(api_key="demo", base_url=fake.anthropic_base_url, max_retries=2),
                seed=seed,
                prompt_edit_at=now - dt.timedelta(days=min(10, days // 3)),
            )
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("simulating user actions", total=len(actions_plan))
                for action in actions_plan:
                    token = _offset_ns.set(
                        int((action.at - dt.datetime.now(dt.timezone.utc)).total_seconds() * 1e9)
                    )
                    try:
                        workload.run(action)
                    finally:
                        _offset_ns.reset(token)
                    progress.advance(task)
            provider.force_flush()
        finally:
            spancost.uninstrument()
            provider.shutdown()
    console.print(
        f"simulated {len(actions_plan):,} user actions, {fake.requests_served:,} provider requests "
        f"({workload.failures} failed after retries) in {time.perf_counter() - started:.1f}s"
    )
    with Store(dsn) as store:
        return build_report(store, days, now)
