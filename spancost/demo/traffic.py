"""A seeded month (or any number of days) of LLM traffic, generated inside ClickHouse.

`generate(store, TrafficPlan(...))` writes spans straight into `otel_traces` with
`INSERT INTO otel_traces SELECT ... FROM` a list of hours, so that the store's own materialized views
fill `llm_calls` and `llm_daily` exactly as they do for spans from the collector. Ten million calls
take minutes, not hours: Python only plans how many traces each hour gets and renders the catalog
below as SQL literals; every trace, span, token count and cost is computed by ClickHouse from a hash
of (seed, stream, hour, trace number), so the same plan gives the same rows.

What the traffic looks like:

- three services (support-desk, search-api, agent-worker); 40 workspaces with Zipf-skewed traffic
  and about 2,000 users, each in one workspace and skewed within it; six features; twelve prompts,
  each with its model mix, token distributions and prompt version (draft-reply gets a new version
  part-way through, at the same size); an A/B experiment on the summarize feature (variant by user);
- models of openai, anthropic and google from the price table, and about 0.5% of calls to a
  fine-tuned model the table does not know (`unpriced`, no amount);
- input tokens log-normal per prompt, output log-normal with a 0.4% tail at ten times the draw
  (cut at the prompt's max_tokens, finish reason `length`), cache reads on prompts that cache
  (openai in 128-token steps above 1,024, anthropic's explicit cache with a write on a miss, 1-hour
  writes on code-review, google implicit caching), reasoning tokens on reasoning models, inputs kept
  under every long-context threshold; about 1% failed calls (no usage, no cost, `error.type`);
- working-hours and weekday seasonality, +25% growth over the window, ±6% day-to-day noise;
- ~6% of traces are agent runs (`invoke_agent {agent}`) of 2-15 calls whose input grows step by
  step, with `execute_tool {tool}` spans between them and the run's roll-up on the agent span; the
  other traces are one call, under an HTTP server span or alone.

Costs are exact: the rates in force on each day are read from the price table in Python, passed as
integers (USD per million tokens scaled by 10^k), and each part is rounded half-even to 1e-9 USD in
integer arithmetic, then written as the pricing stage writes a double (`format_double`), so every
amount equals `spancost.costing.cost_attributes` for the same span.

Anomalies, each planted only when asked (the plain traffic of a seed never changes):

- `spend_spike`: a runaway research agent looping on claude-opus-4-5 during the last three hours
  before `end` (today only), sized so that today's spend is five times the mean of the 30 full days
  before today;
- `fast_burn`: every hour of `end`'s calendar month carries 2.5 times its traces (the plain ones plus
  1.5 times as many more), so month-to-date spend runs at ~2.5 times the normal rate;
- `prompt_grew`: from `end - 7 days`, summarize-ticket is version v4 with 60% more input tokens, at
  the same call rate: its cost per call is ~40% up week over week.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import spancost
from spancost import attributes as attr
from spancost.pricing.table import ModelPrice, PriceTable, Rates, pricing_table
from spancost.store import Store

ANOMALIES = frozenset({"spend_spike", "fast_burn", "prompt_grew"})

# Names no module of spancost defines yet (not gen_ai.* or spancost.*).
# TODO: move to spancost.attributes if spancost ever reads them.
_HTTP_REQUEST_METHOD = "http.request.method"
_HTTP_ROUTE = "http.route"
_HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
_DEPLOYMENT_ENVIRONMENT = "deployment.environment.name"
_TELEMETRY_SDK_LANGUAGE = "telemetry.sdk.language"
_TELEMETRY_SDK_NAME = "telemetry.sdk.name"
_TELEMETRY_SDK_VERSION = "telemetry.sdk.version"

_Row = tuple[int, int, int, int, int, int]
"""(hour since the epoch, start ns, length ns, stream, first trace, last trace + 1)"""
_NS = 1_000_000_000
_HOUR_NS = 3600 * _NS
_DAY_NS = 24 * _HOUR_NS
MAX_INPUT_TOKENS = 120_000
"""Inputs are cut here, below every long-context threshold of the models used (checked at start)."""
CHUNK_CALLS = 600_000
"""About this many model calls per INSERT."""
FAST_BURN_FACTOR = 2.5
SPIKE_FACTOR = 5.0
SPIKE_HOURS = 3
GROWTH = 1.6
_ERROR_RATE = 0.01
_TAIL_RATE = 0.004
_VARIANT_SALT = 7_777


# --- the catalog ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    provider: str
    """gen_ai.provider.name"""
    request: str
    response: str
    speed: float
    """Output tokens per second."""
    cache: int = 0
    """0 none, 1 openai automatic (128-token steps from 1,024), 2 anthropic explicit, 3 google implicit."""
    reasoning: bool = False
    operation: str = attr.Operation.CHAT.value


_OPENAI, _ANTHROPIC, _GOOGLE = "openai", "anthropic", "gcp.gemini"
_PROVIDERS = (_OPENAI, _ANTHROPIC, _GOOGLE)
_HOSTS = ("api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com")
_SCOPES = (
    ("spancost.instrumentation.openai", spancost.__version__),
    ("spancost.instrumentation.anthropic", spancost.__version__),
    ("opentelemetry.instrumentation.google_genai", "0.4b0"),
)
_ID_PREFIXES = ("chatcmpl-", "msg_01", "")
_FINISH = (
    ("stop", "length", "tool_calls"),
    ("end_turn", "max_tokens", "tool_use"),
    ("stop", "length", "stop"),
)
_ERRORS = (
    (("RateLimitError", 429), ("APITimeoutError", 0), ("InternalServerError", 500)),
    (("RateLimitError", 429), ("APITimeoutError", 0), ("InternalServerError", 500)),
    (("ClientError", 429), ("ReadTimeout", 0), ("ServerError", 503)),
)

UNPRICED_MODEL = "ft:gpt-4o-mini-2024-07-18:acme::B1x9kQ2"
_GEN = attr.Operation.GENERATE_CONTENT.value
MODELS: tuple[_Model, ...] = (
    _Model(_OPENAI, "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 85, cache=1),
    _Model(_OPENAI, "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", 75, cache=1),
    _Model(_OPENAI, "gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", 140, cache=1),
    _Model(_OPENAI, "gpt-4.1", "gpt-4.1-2025-04-14", 55, cache=1),
    _Model(_OPENAI, "o4-mini", "o4-mini-2025-04-16", 110, cache=1, reasoning=True),
    _Model(_OPENAI, "gpt-5-mini", "gpt-5-mini-2025-08-07", 90, cache=1, reasoning=True),
    _Model(
        _OPENAI,
        "text-embedding-3-small",
        "text-embedding-3-small",
        1e6,
        operation=attr.Operation.EMBEDDINGS.value,
    ),
    _Model(_ANTHROPIC, "claude-haiku-4-5", "claude-haiku-4-5-20251001", 120, cache=2),
    _Model(_ANTHROPIC, "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 60, cache=2),
    _Model(_ANTHROPIC, "claude-opus-4-5", "claude-opus-4-5-20251101", 40, cache=2),
    _Model(_GOOGLE, "gemini-2.5-flash", "gemini-2.5-flash", 160, cache=3, reasoning=True, operation=_GEN),
    _Model(_GOOGLE, "gemini-2.5-pro", "gemini-2.5-pro", 80, cache=3, reasoning=True, operation=_GEN),
    _Model(_OPENAI, UNPRICED_MODEL, UNPRICED_MODEL, 85),
)
_MODEL_INDEX = {m.request: i + 1 for i, m in enumerate(MODELS)}

SERVICES = (("support-desk", "2.14.1"), ("search-api", "1.8.0"), ("agent-worker", "0.9.3"))
FEATURES = ("reply", "triage", "summarize", "search", "research", "review")
EXPERIMENT_FEATURE = "summarize"
PROMPTS = (
    "draft-reply",
    "rewrite-tone",
    "classify-intent",
    "route-ticket",
    "summarize-ticket",
    "summarize-thread",
    "query-rewrite",
    "embed-query",
    "answer-synthesis",
    "research-planner",
    "code-review",
    "account-insights",
)
GROWN_PROMPT = "summarize-ticket"
_BASE_VERSIONS = {
    "draft-reply": "v7",
    "summarize-ticket": "v3",
    "classify-intent": "v12",
    "research-planner": "v5",
    "code-review": "v2",
}
_NEW_VERSION_PROMPT, _NEW_VERSION = "draft-reply", "v8"
"""A prompt that gets a new version, at the same size, 40% into the window (plain traffic)."""


@dataclass(frozen=True)
class _Profile:
    """How one prompt's calls look."""

    prompt: str
    feature: str
    mix: tuple[tuple[str, float], ...]
    in_median: float
    in_sigma: float
    out_median: float
    out_sigma: float
    system: int
    """System prompt tokens, the cacheable prefix."""
    hit: float = 0.0
    """Probability of a cache hit (within an agent run, every step after the first hits)."""
    max_tokens: int = 4096
    cache_1h: bool = False
    variant_b: str | None = None
    """The profile used by experiment variant B."""


PROFILES: dict[str, _Profile] = {
    p.prompt: p
    for p in (
        _Profile("draft-reply", "reply", (("claude-sonnet-4-5", 0.85), ("claude-haiku-4-5", 0.15)),
                 3000, 0.35, 350, 0.55, 1800, hit=0.8, max_tokens=2048),
        _Profile("rewrite-tone", "reply", (("gpt-4.1-mini", 1.0),), 900, 0.4, 250, 0.5, 600, max_tokens=1024),
        _Profile("classify-intent", "triage", (("gpt-4.1-nano", 0.965), (UNPRICED_MODEL, 0.035)),
                 650, 0.3, 6, 0.3, 450, max_tokens=16),
        _Profile("route-ticket", "triage", (("gpt-4o-mini", 1.0),), 800, 0.3, 40, 0.4, 500, max_tokens=256),
        _Profile("summarize-ticket", "summarize", (("gpt-4o-mini", 1.0),), 2500, 0.45, 200, 0.45, 1100,
                 hit=0.5, max_tokens=512, variant_b="summarize-ticket/B"),
        _Profile("summarize-thread", "summarize", (("gemini-2.5-flash", 1.0),), 4000, 0.5, 300, 0.45, 1400,
                 hit=0.4, max_tokens=2048),
        _Profile("query-rewrite", "search", (("gpt-4o-mini", 0.75), ("gpt-4.1-nano", 0.25)),
                 500, 0.3, 60, 0.4, 350, max_tokens=256),
        _Profile("embed-query", "search", (("text-embedding-3-small", 1.0),),
                 520, 0.5, 0, 0, 0, max_tokens=0),
        _Profile("answer-synthesis", "search", (("gemini-2.5-pro", 0.55), ("gpt-4.1", 0.45)),
                 3500, 0.4, 500, 0.5, 1200, hit=0.35),
        _Profile("research-planner", "research",
                 (("o4-mini", 0.5), ("gpt-5-mini", 0.3), ("claude-haiku-4-5", 0.2)),
                 2000, 0.35, 600, 0.6, 1600, hit=0.6, max_tokens=8192),
        _Profile("code-review", "review", (("claude-sonnet-4-5", 0.9), ("claude-opus-4-5", 0.1)),
                 3500, 0.4, 500, 0.55, 2600, hit=0.7, max_tokens=8192, cache_1h=True),
        _Profile("account-insights", "research", (("gemini-2.5-flash", 0.6), ("gemini-2.5-pro", 0.4)),
                 2500, 0.4, 700, 0.5, 1300, hit=0.5, max_tokens=8192),
    )
}  # fmt: skip
PROFILES["summarize-ticket/B"] = _Profile(
    "summarize-ticket",
    "summarize",
    (("gpt-4.1-mini", 1.0),),
    2500,
    0.45,
    200,
    0.45,
    1100,
    hit=0.5,
    max_tokens=512,
)
PROFILES["runaway"] = _Profile(
    "research-planner", "research", (("claude-opus-4-5", 1.0),), 12000, 0.1, 1200, 0.15, 1600, max_tokens=8192
)
_PROFILE_INDEX = {name: i + 1 for i, name in enumerate(PROFILES)}


@dataclass(frozen=True)
class _Template:
    """A kind of trace: which prompt, in which service, as one call or an agent run."""

    profile: str
    service: int
    share: float
    """Share of all model calls (of the plain traffic)."""
    http: float
    """Probability of an HTTP server span at the root."""
    entry_point: str
    route: str = ""
    agent: str = ""
    tools: tuple[str, ...] = ()
    tool_rate: float = 0.0
    growth: float = 0.0
    """Input growth per agent step (context accumulates)."""
    calls: int = 0
    """Calls per run, 0: 2-15 at random (agents) or 1."""


TEMPLATES: tuple[_Template, ...] = (
    _Template("draft-reply", 1, 0.10, 0.9, "POST /v1/tickets/{id}/replies/draft",
              "/v1/tickets/{id}/replies/draft"),
    _Template("rewrite-tone", 1, 0.05, 0.9, "POST /v1/replies/rewrite", "/v1/replies/rewrite"),
    _Template("classify-intent", 1, 0.14, 0.3, "queue:tickets.created", "/v1/tickets"),
    _Template("route-ticket", 1, 0.08, 0.3, "queue:tickets.created", "/v1/tickets"),
    _Template("summarize-ticket", 1, 0.10, 0.8, "GET /v1/tickets/{id}/summary", "/v1/tickets/{id}/summary"),
    _Template("summarize-thread", 1, 0.05, 0.8, "GET /v1/threads/{id}/summary", "/v1/threads/{id}/summary"),
    _Template("query-rewrite", 2, 0.07, 1.0, "GET /v1/search", "/v1/search"),
    _Template("embed-query", 2, 0.08, 1.0, "GET /v1/search", "/v1/search"),
    _Template("answer-synthesis", 2, 0.05, 1.0, "POST /v1/answers", "/v1/answers"),
    _Template("research-planner", 3, 0.10, 0.0, "job:research", agent="research-agent",
              tools=("web_search", "fetch_page"), tool_rate=0.7, growth=0.25),
    _Template("code-review", 3, 0.08, 0.0, "webhook:github.pull_request", agent="code-reviewer",
              tools=("read_file", "run_tests", "post_comment"), tool_rate=0.6, growth=0.3),
    _Template("account-insights", 3, 0.04, 0.0, "job:account-insights", agent="insights-analyst",
              tools=("run_sql", "make_chart"), tool_rate=0.5, growth=0.2),
    _Template("draft-reply", 1, 0.06, 0.9, "POST /v1/tickets/{id}/copilot", "/v1/tickets/{id}/copilot",
              agent="support-copilot", tools=("lookup_order", "search_kb"), tool_rate=0.5, growth=0.2),
    _Template("runaway", 3, 0.0, 0.0, "job:research", agent="research-agent",
              tools=("web_search",), tool_rate=1.0, growth=0.2, calls=15),
)  # fmt: skip
_RUNAWAY = len(TEMPLATES)
AGENTS = tuple(dict.fromkeys(t.agent for t in TEMPLATES if t.agent))
TOOLS = tuple(dict.fromkeys(tool for t in TEMPLATES for tool in t.tools))

WORKSPACES = tuple(
    f"ws-{name}"
    for name in (
        "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "cyberdyne", "soylent",
        "tyrell", "aperture", "oscorp", "vandelay", "dunder-mifflin", "pied-piper", "massive-dynamic",
        "gringotts", "monarch", "nakatomi", "wernham-hogg", "prestige", "bluth", "sterling-cooper",
        "krusty", "duff", "planet-express", "spacely", "cogswell", "virtucon", "gekko", "rekall", "weyland",
        "tessier-ashpool", "ingen", "black-mesa", "octan", "zorg", "momcorp", "buy-n-large",
    )
)  # fmt: skip
USERS = 2000
_ZIPF = 1.1
_RUNAWAY_WORKSPACE = 3


def _mean_agent_calls() -> float:
    """E[2 + floor(14 u^2)] for u uniform in [0, 1): the calls of an agent run."""
    return 2 + sum(1 - math.sqrt(k / 14) for k in range(1, 14))


def _template_calls(template: _Template) -> float:
    if template.calls:
        return float(template.calls)
    return _mean_agent_calls() if template.agent else 1.0


# --- the plan and the result ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrafficPlan:
    """What to generate. The same plan (with `end` set) always gives the same rows."""

    calls: int = 100_000
    """Model calls of the plain traffic, about (agent runs vary in length; the summary counts them)."""
    days: int = 31
    """Calendar days, the last being `end`'s day (partial: nothing after `end`)."""
    end: dt.datetime | None = None
    """End of the traffic, UTC (a naive datetime is read as UTC); default: now."""
    seed: int = 7
    anomalies: frozenset[str] = frozenset()
    """Any of `ANOMALIES`: spend_spike, fast_burn, prompt_grew."""

    def validate(self) -> list[str]:
        problems = []
        if self.calls < 1:
            problems.append(f"calls {self.calls}: must be at least 1")
        if self.days < 1:
            problems.append(f"days {self.days}: must be at least 1")
        if not 0 <= self.seed < 2**63:
            problems.append(f"seed {self.seed}: must be in [0, 2^63)")
        if "spend_spike" in self.anomalies and self.days < 2:
            problems.append(
                f"days {self.days}: spend_spike needs at least one full day before today (days >= 2)"
            )
        unknown = set(self.anomalies) - ANOMALIES
        if unknown:
            problems.append(f"unknown anomalies {sorted(unknown)}: use {', '.join(sorted(ANOMALIES))}")
        return problems


@dataclass(frozen=True)
class TrafficSummary:
    """What the store holds after `generate`, read back from it (llm_calls FINAL, otel_traces)."""

    start: dt.datetime
    end: dt.datetime
    calls: int
    priced_calls: int
    unpriced_calls: int
    failed_calls: int
    cost_usd: Decimal
    traces: int
    spans: int
    agent_runs: int
    first: dt.datetime | None
    last: dt.datetime | None
    unpriced_model: str
    spike_calls: int = 0
    """Calls of the runaway agent (spend_spike)."""
    grown_prompt: str | None = None
    grown_at: dt.datetime | None = None
    """When the grown prompt's new version started (prompt_grew)."""
    grown_version: str | None = None
    seconds: float = 0.0
    daily_cost: dict[dt.date, Decimal] = field(default_factory=dict)


class TrafficError(ValueError):
    """A plan that cannot be generated, or a store that already holds generated traffic."""


# --- SQL literals -----------------------------------------------------------------------------------


def _lit(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value}")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_lit(v) for v in value) + "]"
    raise TypeError(f"no SQL literal for {value!r}")


def _cdf(weights: Sequence[float]) -> list[float]:
    total = sum(weights)
    running, out = 0.0, []
    for w in weights:
        running += w
        out.append(running / total)
    out[-1] = 2.0  # every u < 1 finds an entry
    return out


# --- prices -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prices:
    table: PriceTable
    entries: tuple[ModelPrice | None, ...]
    scale: int
    """Rates are passed as integers: USD per million tokens × 10^scale."""


def _places(rate: Decimal) -> int:
    exponent = rate.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _prices(table: PriceTable) -> _Prices:
    entries: list[ModelPrice | None] = []
    places = 3
    for model in MODELS:
        entry = table.find(model.response, model.provider)
        if model.request == UNPRICED_MODEL:
            if entry is not None:
                raise TrafficError(f"the price table prices {UNPRICED_MODEL}; it must stay unknown")
            entries.append(None)
            continue
        if entry is None or table.find(model.request, model.provider) is not entry:
            raise TrafficError(f"the price table has no single entry for {model.request} / {model.response}")
        for dated in entry.history:
            long_context = dated.prices.long_context
            if long_context is not None and long_context.above_input_tokens < MAX_INPUT_TOKENS:
                raise TrafficError(f"{entry.key}: long-context threshold below {MAX_INPUT_TOKENS} tokens")
            if dated.start is not None and dated.start != dt.datetime.combine(
                dated.start.date(), dt.time(), dt.timezone.utc
            ):
                raise TrafficError(f"{entry.key}: a price change not at midnight UTC")
            for rate in _rate_values(dated.prices.rates):
                places = max(places, _places(rate))
        entries.append(entry)
    return _Prices(table, tuple(entries), places)


def _rate_values(rates: Rates) -> Iterable[Decimal]:
    for value in (
        rates.input,
        rates.output,
        rates.cache_read,
        rates.cache_write,
        rates.cache_write_1h,
        rates.reasoning,
    ):
        if value is not None:
            yield value


_RATE_KINDS = ("in", "out", "cr", "cw", "cw1h", "rs", "has_rs")


def _day_rates(prices: _Prices, day: dt.date) -> dict[str, list[int]]:
    """Scaled rates of every model on `day`, standard tier, with the engine's fallbacks for absent units."""
    at = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
    factor = Decimal(10) ** prices.scale
    out: dict[str, list[int]] = {kind: [] for kind in _RATE_KINDS}
    for entry in prices.entries:
        if entry is None:
            for kind in _RATE_KINDS:
                out[kind].append(0)
            continue
        rates = entry.price_at(at).rates
        write = rates.cache_write if rates.cache_write is not None else rates.input
        values = {
            "in": rates.input,
            "out": rates.output,
            "cr": rates.cache_read if rates.cache_read is not None else rates.input,
            "cw": write,
            "cw1h": rates.cache_write_1h if rates.cache_write_1h is not None else write,
            "rs": rates.reasoning if rates.reasoning is not None else Decimal(0),
            "has_rs": Decimal(1 if rates.reasoning is not None else 0),
        }
        for kind, value in values.items():
            scaled = value if kind == "has_rs" else value * factor
            if scaled != scaled.to_integral_value():
                raise TrafficError(f"{entry.key}: rate {value} has more than {prices.scale} decimal places")
            out[kind].append(int(scaled))
    return out


# --- when the traffic happens -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hours:
    """Trace counts per hour: (hour since the epoch, start ns, length ns, stream, first, last + 1)."""

    rows: list[tuple[int, int, int, int, int, int]]
    expected_calls: list[float]


def _diurnal(hour: float) -> float:
    """Busy in European and American working hours (UTC), quiet at night."""
    return 0.15 + math.exp(-(((hour - 14.5) / 4.5) ** 2))


def _weekly(weekday: int) -> float:
    return (1.0, 1.0, 1.0, 1.0, 0.95, 0.45, 0.4)[weekday]


def _largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(x) for x in exact]
    short = total - sum(counts)
    order = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[:short]:
        counts[i] += 1
    return counts


def _plain_hours(
    plan: TrafficPlan, start: dt.datetime, end: dt.datetime, traces: int
) -> list[tuple[int, int, int]]:
    """(hour since the epoch, start ns, length ns, traces) of the plain traffic."""
    rng = random.Random(f"spancost-traffic-days-{plan.seed}")
    hours = []
    day_noise: dict[dt.date, float] = {}
    at = start
    while at < end:
        upto = min(at + dt.timedelta(hours=1), end)
        day = at.date()
        if day not in day_noise:
            day_noise[day] = math.exp(rng.gauss(0.0, 0.06))
        index = (day - start.date()).days
        trend = 1 + 0.25 * index / max(plan.days - 1, 1)
        fraction = (upto - at) / dt.timedelta(hours=1)
        weight = _diurnal(at.hour + fraction / 2) * _weekly(at.weekday()) * trend * day_noise[day] * fraction
        hours.append((at, upto, weight))
        at = upto
    counts = _largest_remainder(traces, [w for _, _, w in hours])
    return [
        (int(a.timestamp()) // 3600, _ns(a), _ns(b) - _ns(a), n)
        for (a, b, _), n in zip(hours, counts, strict=True)
    ]


def _ns(at: dt.datetime) -> int:
    return (at - _EPOCH) // dt.timedelta(microseconds=1) * 1000


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


# --- the SQL --------------------------------------------------------------------------------------------


def _u(*args: str) -> str:
    """A uniform draw in (0, 1) from a hash of the arguments (all UInt64)."""
    return f"((bitShiftRight(cityHash64({', '.join(args)}), 11) + 0.5) / 9007199254740992)"


def _tu(salt: int) -> str:
    return _u("K", f"toUInt64({salt})")


def _cu(salt: int) -> str:
    """A per-call uniform draw (call index j)."""
    return _u("K", f"toUInt64(j * 64 + {salt})")


def _cn(salt: int) -> str:
    """A per-call standard normal draw (Box-Muller)."""
    return f"(sqrt(-2 * log({_cu(salt)})) * cos(2 * pi() * {_cu(salt + 1)}))"


def _hex16(expr: str) -> str:
    return f"leftPad(lower(hex({expr})), 16, '0')"


def _fmt_nano(expr: str) -> str:
    """Nano-USD (an integer) as the pricing stage writes the double.

    Positional, shortest, no trailing zeros.
    """
    return (
        f"if(({expr}) % 1000000000 = 0, toString(intDiv({expr}, 1000000000)), "
        f"concat(toString(intDiv({expr}, 1000000000)), '.', "
        f"trim(TRAILING '0' FROM leftPad(toString(({expr}) % 1000000000), 9, '0'))))"
    )


def _nano(tokens: str, rate: str, divisor: int) -> str:
    """tokens × rate / 10^(scale-3), rounded half-even: USD × 1e9 as the engine rounds each part."""
    x = f"(toUInt64({tokens}) * {rate})"
    if divisor == 1:
        return x
    q, r = f"intDiv({x}, {divisor})", f"({x} % {divisor})"
    return f"({q} + if({r} * 2 > {divisor} OR ({r} * 2 = {divisor} AND {q} % 2 = 1), 1, 0))"


def _constants(plan: TrafficPlan, start: dt.datetime, grow_ns: int | None) -> str:
    """The catalog as WITH constants (1-based arrays)."""
    profiles = list(PROFILES.values())
    mixes = [[_MODEL_INDEX[m] for m, _ in p.mix] for p in profiles]
    mix_cdfs = [_cdf([w for _, w in p.mix]) for p in profiles]
    plain = [t for t in TEMPLATES if t.share > 0]
    weights = [t.share / _template_calls(t) for t in plain]
    ws_weights = [1 / (r**_ZIPF) for r in range(1, len(WORKSPACES) + 1)]
    ws_users = [max(3, n) for n in _largest_remainder(USERS, [w**0.6 for w in ws_weights])]
    ws_offsets = [sum(ws_users[:i]) for i in range(len(ws_users))]
    prompt_index = {name: i + 1 for i, name in enumerate(PROMPTS)}
    versions: list[list[str]] = []
    version_starts: list[list[int]] = []
    for name in PROMPTS:
        base = _BASE_VERSIONS.get(name, "v1")
        names, starts = [base], [0]  # the base version from the beginning
        if name == _NEW_VERSION_PROMPT:
            names.append(_NEW_VERSION)
            starts.append(_new_version_ns(plan, start))
        if name == GROWN_PROMPT and grow_ns is not None:
            names.append(_grown_version(base))
            starts.append(grow_ns)
        versions.append(names)
        version_starts.append(starts)
    values: dict[str, Any] = {
        "T_CDF": _cdf(weights),
        "T_PROFILE": [_PROFILE_INDEX[t.profile] for t in TEMPLATES],
        "T_SERVICE": [t.service for t in TEMPLATES],
        "T_HTTP": [float(t.http) for t in TEMPLATES],
        "T_AGENT": [AGENTS.index(t.agent) + 1 if t.agent else 0 for t in TEMPLATES],
        "T_TOOLS": [[TOOLS.index(tool) + 1 for tool in t.tools] or [0] for t in TEMPLATES],
        "T_TOOL_RATE": [float(t.tool_rate) for t in TEMPLATES],
        "T_GROWTH": [float(t.growth) for t in TEMPLATES],
        "T_CALLS": [t.calls for t in TEMPLATES],
        "T_ENTRY": [t.entry_point for t in TEMPLATES],
        "T_ROUTE": [t.route for t in TEMPLATES],
        "P_PROMPT": [prompt_index[p.prompt] for p in profiles],
        "P_FEATURE": [FEATURES.index(p.feature) + 1 for p in profiles],
        "P_MIX": mixes,
        "P_MIX_CDF": mix_cdfs,
        "P_IN_MED": [float(p.in_median) for p in profiles],
        "P_IN_SIG": [float(p.in_sigma) for p in profiles],
        "P_OUT_MED": [float(p.out_median) for p in profiles],
        "P_OUT_SIG": [float(p.out_sigma) for p in profiles],
        "P_SYSTEM": [p.system for p in profiles],
        "P_HIT": [float(p.hit) for p in profiles],
        "P_MAX": [p.max_tokens for p in profiles],
        "P_1H": [int(p.cache_1h) for p in profiles],
        "P_ALT": [_PROFILE_INDEX[p.variant_b] if p.variant_b else 0 for p in profiles],
        "PROMPT_NAME": list(PROMPTS),
        "PROMPT_VERSIONS": versions,
        "PROMPT_VERSION_STARTS": version_starts,
        "FEATURE_NAME": list(FEATURES),
        "M_PROVIDER": [_PROVIDERS.index(m.provider) + 1 for m in MODELS],
        "M_REQUEST": [m.request for m in MODELS],
        "M_RESPONSE": [m.response for m in MODELS],
        "M_OPERATION": [m.operation for m in MODELS],
        "M_EMBED": [int(m.operation == attr.Operation.EMBEDDINGS.value) for m in MODELS],
        "M_SPEED": [float(m.speed) for m in MODELS],
        "M_CACHE": [m.cache for m in MODELS],
        "M_REASONING": [int(m.reasoning) for m in MODELS],
        "M_PRICED": [int(m.request != UNPRICED_MODEL) for m in MODELS],
        "PROVIDER_NAME": list(_PROVIDERS),
        "PROVIDER_HOST": list(_HOSTS),
        "PROVIDER_SCOPE": [s for s, _ in _SCOPES],
        "PROVIDER_SCOPE_VERSION": [v for _, v in _SCOPES],
        "PROVIDER_ID_PREFIX": list(_ID_PREFIXES),
        "FINISH": [list(f) for f in _FINISH],
        "ERROR_TYPE": [[e for e, _ in errors] for errors in _ERRORS],
        "ERROR_HTTP": [[c for _, c in errors] for errors in _ERRORS],
        "SERVICE_NAME": [s for s, _ in SERVICES],
        "SERVICE_VERSION": [v for _, v in SERVICES],
        "AGENT_NAME": list(AGENTS),
        "TOOL_NAME": list(TOOLS),
        "WS_CDF": _cdf(ws_weights),
        "WS_NAME": list(WORKSPACES),
        "WS_USERS": ws_users,
        "WS_OFFSET": ws_offsets,
        "EXPERIMENT_FEATURE": FEATURES.index(EXPERIMENT_FEATURE) + 1,
        "GROWN_PROMPT": prompt_index[GROWN_PROMPT],
        "GROW_NS": grow_ns if grow_ns is not None else 2**62,
        "SEED": plan.seed,
    }
    return ",\n    ".join(f"{_lit(v)} AS {k}" for k, v in values.items())


def _new_version_ns(plan: TrafficPlan, start: dt.datetime) -> int:
    """When draft-reply's plain new version starts: 40% into the window, at 10:00 UTC."""
    day = start.date() + dt.timedelta(days=int(plan.days * 0.4))
    return _ns(dt.datetime.combine(day, dt.time(10), dt.timezone.utc))


def _grown_version(base: str) -> str:
    return f"v{int(base[1:]) + 1}"


def _span_arrays() -> list[str]:
    """Per-span arrays, ARRAY JOINed: [the HTTP span], [the agent span], the calls, the tools."""
    fields: list[tuple[str, str, str, str, str, str]] = [
        # name, type, HTTP span, agent span, calls (an array), tools (of j, the call the tool follows)
        ("kind", "UInt8", "0", "1", "arrayMap(j -> toUInt8(2), idx)", "3"),
        ("sidx", "UInt16", "0", "has_http", "arrayMap(j -> toUInt16(has_http + is_agent + j - 1), idx)",
         "has_http + is_agent + n + c_tool_ord[j] - 1"),
        ("pidx", "Int16", "-1", "if(has_http = 1, 0, -1)", "arrayMap(j -> toInt16(call_parent), idx)",
         "has_http"),
        ("start", "Int64", "t0", "t0 + agent_off", "c_start", "c_start[j] + c_dur[j] + c_gap[j]"),
        ("dur", "Int64", "http_dur", "agent_dur", "c_dur", "c_tdur[j]"),
        ("m", "UInt8", "0", "0", "c_m", "0"),
        ("err", "UInt8", "0", "0", "c_err", "0"),
        ("ek", "UInt8", "0", "0", "c_ek", "0"),
        ("fin", "UInt8", "0", "0", "c_fin", "0"),
        ("tin", "UInt32", "0", "0", "c_in", "0"),
        ("tout", "UInt32", "0", "0", "c_out", "0"),
        ("tcr", "UInt32", "0", "0", "c_cr", "0"),
        ("tcw", "UInt32", "0", "0", "c_cw", "0"),
        ("tcw1h", "UInt32", "0", "0", "c_cw1h", "0"),
        ("trs", "UInt32", "0", "0", "c_rs", "0"),
        ("ci", "UInt64", "0", "0", "c_ci", "0"),
        ("co", "UInt64", "0", "0", "c_co", "0"),
        ("ccr", "UInt64", "0", "0", "c_ccr", "0"),
        ("ccw", "UInt64", "0", "0", "c_ccw", "0"),
        ("tool", "UInt8", "0", "0", "arrayMap(j -> toUInt8(0), idx)", "c_tool_name[j]"),
    ]  # fmt: skip
    return [
        f"arrayConcat(arraySlice([to{kind}({http})], 1, has_http), "
        f"arraySlice([to{kind}({agent})], 1, is_agent), "
        f"{calls}, arrayMap(j -> to{kind}({tools}), tool_js)) AS s_{name}"
        for name, kind, http, agent, calls, tools in fields
    ]


def _span_attributes() -> list[tuple[str, str]]:
    """(key, value) of every attribute a span may carry; an empty value leaves the key out."""
    a = attr
    tagged = "kind != 0"
    call_ok = "(kind = 2 AND err = 0)"
    priced = f"({call_ok} AND M_PRICED[m] = 1)"
    total = "(ci + co + ccr + ccw)"
    return [
        (a.GEN_AI_OPERATION_NAME,
         "multiIf(kind = 1, 'invoke_agent', kind = 2, M_OPERATION[m], kind = 3, 'execute_tool', '')"),
        (a.GEN_AI_PROVIDER_NAME, "if(kind = 2, PROVIDER_NAME[M_PROVIDER[m]], '')"),
        (a.GEN_AI_REQUEST_MODEL, "if(kind = 2, M_REQUEST[m], '')"),
        (a.GEN_AI_REQUEST_MAX_TOKENS, "if(kind = 2 AND M_EMBED[m] = 0, toString(P_MAX[pr]), '')"),
        (a.SERVER_ADDRESS, "if(kind = 2, PROVIDER_HOST[M_PROVIDER[m]], '')"),
        (a.SERVER_PORT, "if(kind = 2, '443', '')"),
        (a.GEN_AI_RESPONSE_MODEL, f"if({call_ok}, M_RESPONSE[m], '')"),
        (a.GEN_AI_RESPONSE_ID,
         f"if({call_ok} AND M_EMBED[m] = 0, concat(PROVIDER_ID_PREFIX[M_PROVIDER[m]], substring(base58Encode("
         "concat(reinterpretAsString(cityHash64(K, sidx, 1)), "
         "reinterpretAsString(cityHash64(K, sidx, 2)))), 1, 22)), '')"),
        (a.GEN_AI_RESPONSE_FINISH_REASONS,
         f"if({call_ok} AND M_EMBED[m] = 0, concat('[\"', FINISH[M_PROVIDER[m]][fin], '\"]'), '')"),
        (a.GEN_AI_USAGE_INPUT_TOKENS, f"if({call_ok}, toString(tin), '')"),
        (a.GEN_AI_USAGE_OUTPUT_TOKENS, f"if({call_ok} AND M_EMBED[m] = 0, toString(tout), '')"),
        (a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, f"if({call_ok} AND tcr > 0, toString(tcr), '')"),
        (a.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, f"if({call_ok} AND tcw > 0, toString(tcw), '')"),
        (a.ANTHROPIC_CACHE_WRITE_1H_TOKENS, f"if({call_ok} AND tcw1h > 0, toString(tcw1h), '')"),
        (a.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, f"if({call_ok} AND trs > 0, toString(trs), '')"),
        (a.GEN_AI_USAGE_COST_AMOUNT, f"if({priced}, {_fmt_nano(total)}, '')"),
        (a.GEN_AI_USAGE_COST_CURRENCY, f"if({priced}, 'USD', '')"),
        (a.GEN_AI_USAGE_COST_SOURCE, f"if({priced}, {_lit(a.CostSource.LOCAL.value)}, '')"),
        (a.COST_STATUS, f"if({call_ok}, if(M_PRICED[m] = 1, {_lit(a.CostStatus.PRICED.value)}, "
                        f"{_lit(a.CostStatus.UNPRICED.value)}), '')"),
        (a.COST_INPUT, f"if({priced}, {_fmt_nano('ci')}, '')"),
        (a.COST_OUTPUT, f"if({priced}, {_fmt_nano('co')}, '')"),
        (a.COST_CACHE_READ, f"if({priced}, {_fmt_nano('ccr')}, '')"),
        (a.COST_CACHE_WRITE, f"if({priced}, {_fmt_nano('ccw')}, '')"),
        (a.PRICE_KEY, f"if({priced}, M_KEY[m], '')"),
        (a.PRICE_VERSION, f"if({priced}, PRICE_VERSION, '')"),
        (a.PRICE_TIER, f"if({priced}, 'standard', '')"),
        (a.ERROR_TYPE, "if(err = 1, ERROR_TYPE[M_PROVIDER[m]][ek], '')"),
        (a.GEN_AI_AGENT_NAME, "if(kind = 1, AGENT_NAME[T_AGENT[t]], '')"),
        (a.GEN_AI_TOOL_NAME, "if(kind = 3, TOOL_NAME[tool], '')"),
        (a.ROLLUP_COST, f"if(kind = 1, {_fmt_nano('r_cost')}, '')"),
        (a.ROLLUP_LLM_CALLS, "if(kind = 1, toString(r_calls), '')"),
        (a.ROLLUP_INPUT_TOKENS, "if(kind = 1, toString(r_in), '')"),
        (a.ROLLUP_OUTPUT_TOKENS, "if(kind = 1, toString(r_out), '')"),
        (a.ROLLUP_UNPRICED_CALLS, "if(kind = 1 AND r_unpriced > 0, toString(r_unpriced), '')"),
        (a.PROMPT_NAME, f"if({tagged}, PROMPT_NAME[prompt_i], '')"),
        (a.PROMPT_VERSION, f"if({tagged}, version, '')"),
        (a.PROMPT_SYSTEM_TOKENS, "if(kind = 2 AND P_SYSTEM[pr] > 0, toString(P_SYSTEM[pr]), '')"),
        (a.USER_ID, f"if({tagged}, user_id, '')"),
        (a.WORKSPACE_ID, f"if({tagged}, WS_NAME[ws], '')"),
        (a.FEATURE, f"if({tagged}, FEATURE_NAME[feature_i], '')"),
        (a.EXPERIMENT_VARIANT, f"if({tagged} AND feature_i = EXPERIMENT_FEATURE, variant, '')"),
        (a.ENTRY_POINT, f"if({tagged}, T_ENTRY[t], '')"),
        (_HTTP_REQUEST_METHOD, "if(kind = 0, splitByChar(' ', T_ENTRY[t])[1], '')"),
        (_HTTP_ROUTE, "if(kind = 0, T_ROUTE[t], '')"),
        (_HTTP_RESPONSE_STATUS_CODE, "if(kind = 0, if(http_failed, '502', '200'), '')"),
    ]  # fmt: skip


def _trace_levels(divisor: int, rate_day0_ns: int, rate_days: int, end_ns: int) -> list[list[str]]:
    """Each level's columns, computed from the columns of the level before.

    Levels, not one SELECT: ClickHouse inlines an alias wherever it is used, so columns that build on
    columns that build on columns would grow the query tree past its limit.
    """
    models = len(MODELS)
    ri = "c_ri[j]"

    def nano(tokens: str, rate: str) -> str:
        return _nano(tokens, rate, divisor)

    def priced(expr: str) -> str:
        return f"arrayMap(j -> if(M_PRICED[c_m[j]] = 0, toUInt64(0), {expr}), idx)"

    return [
        [  # the trace
            "cityHash64(toUInt64(SEED), toUInt64(stream), toUInt64(hour_idx), toUInt64(i)) AS K",
            f"if(stream = 1, {_RUNAWAY}, arrayFirstIndex(c -> c > {_tu(2)}, T_CDF)) AS t",
            f"hour_start + toInt64(floor({_tu(3)} * hour_len)) AS t0_raw",
            f"if(stream = 1, {_RUNAWAY_WORKSPACE}, arrayFirstIndex(c -> c > {_tu(4)}, WS_CDF)) AS ws",
            f"toUInt8({_tu(5)} < T_HTTP[t]) AS has_http",
            f"{_tu(6)} AS u_user",
            f"{_tu(7)} AS u_calls",
        ],
        [
            f"concat({_hex16('K')}, {_hex16('cityHash64(K, toUInt64(1))')}) AS trace_id",
            "WS_OFFSET[ws] + if(stream = 1, 0, least(toUInt32(floor(WS_USERS[ws] * pow(u_user, 2.5))), "
            "WS_USERS[ws] - 1)) AS gid",
            "T_PROFILE[t] AS pr0",
            "T_SERVICE[t] AS svc",
            "toUInt8(T_AGENT[t] > 0) AS is_agent",
        ],
        [
            f"concat('u_', substring({_hex16('cityHash64(toUInt64(SEED), toUInt64(gid), toUInt64(9))')}, "
            "1, 10)) AS user_id",
            f"toUInt8(cityHash64(toUInt64(SEED), toUInt64(gid), toUInt64({_VARIANT_SALT})) % 2) AS variant_b",
            "toUInt32(if(is_agent = 1, if(T_CALLS[t] > 0, T_CALLS[t], 2 + floor(14 * pow(u_calls, 2))), 1))"
            " AS n",
        ],
        [
            "if(variant_b = 1, 'B', 'A') AS variant",
            "if(variant_b = 1 AND P_ALT[pr0] > 0, P_ALT[pr0], pr0) AS pr",
            "range(1, n + 1) AS idx",
        ],
        [
            "P_PROMPT[pr] AS prompt_i",
            "P_FEATURE[pr] AS feature_i",
            f"arrayMap(j -> toUInt8(P_MIX[pr][arrayFirstIndex(c -> c > {_cu(1)}, P_MIX_CDF[pr])]), idx)"
            " AS c_m",
            f"arrayMap(j -> toUInt8({_cu(2)} < {_ERROR_RATE}), idx) AS c_err",
            f"arrayMap(j -> toUInt8(1 + floor({_cu(3)} * 3)), idx) AS c_ek",
            f"arrayMap(j -> greatest(1, round(P_OUT_MED[pr] * exp(P_OUT_SIG[pr] * {_cn(6)}))) "
            f"* if({_cu(8)} < {_TAIL_RATE}, 10, 1), idx) AS c_visible",
            f"arrayMap(j -> (j > 1 AND P_HIT[pr] > 0) OR {_cu(10)} < P_HIT[pr], idx) AS c_hit",
            f"arrayMap(j -> {_cu(12)}, idx) AS c_ttft",
            f"arrayMap(j -> {_cu(11)}, idx) AS c_fail_u",
            f"arrayMap(j -> toInt64(5e6 + 25e6 * {_cu(13)}), idx) AS c_gap",
            f"arrayMap(j -> is_agent = 1 AND j < n AND {_cu(14)} < T_TOOL_RATE[t], idx) AS c_tool",
            "arrayMap(j -> toUInt8(T_TOOLS[t][1 + (cityHash64(K, toUInt64(j * 64 + 15)) "
            "% length(T_TOOLS[t]))]), idx) AS c_tool_name",
            f"arrayMap(j -> toInt64(1e9 * least(20, 0.05 + exp(log(0.4) + 0.8 * {_cn(16)}))), idx) AS c_tdur",
            f"arrayMap(j -> {_cn(4)}, idx) AS c_in_z",
        ],
        [
            "PROMPT_NAME[prompt_i] = PROMPT_NAME[GROWN_PROMPT] AND t0_raw >= GROW_NS AS grown",
            "PROMPT_VERSIONS[prompt_i][arrayCount(s -> s <= t0_raw, PROMPT_VERSION_STARTS[prompt_i])]"
            " AS version",
            f"arrayMap((m, v, j) -> if(M_REASONING[m] = 1, round(v * (0.4 + 1.6 * {_cu(9)})), 0), "
            "c_m, c_visible, idx) AS c_thinking",
            "arrayCumSum(arrayMap(x -> toUInt32(x), c_tool)) AS c_tool_ord",
            "arrayFilter(j -> c_tool[j], idx) AS tool_js",
            "toInt16(if(is_agent = 1, has_http, if(has_http = 1, 0, -1))) AS call_parent",
        ],
        [
            f"arrayMap((j, z) -> toUInt32(if(c_err[j] = 1, 0, least({MAX_INPUT_TOKENS}, greatest(16, "
            f"round(P_IN_MED[pr] * if(grown, {GROWTH}, 1.0) * (1 + T_GROWTH[t] * (j - 1)) "
            "* exp(P_IN_SIG[pr] * z)))))), idx, c_in_z) AS c_in",
            "arrayMap((j, m, v, r) -> toUInt32(if(M_EMBED[m] = 1 OR c_err[j] = 1, 0, "
            "least(v + r, P_MAX[pr]))), "
            "idx, c_m, c_visible, c_thinking) AS c_out",
        ],
        [
            "arrayMap(i -> toUInt32(least(P_SYSTEM[pr], floor(i * 0.9))), c_in) AS c_prefix",
            "arrayMap((o, r) -> toUInt32(least(r, o)), c_out, c_thinking) AS c_rs",
            "arrayMap((j, o) -> toUInt8(if(o >= P_MAX[pr], 2, if(c_tool[j], 3, 1))), idx, c_out) AS c_fin",
            "arrayMap((j, m) -> toInt64(1e9 * if(c_err[j] = 1, if(c_ek[j] = 2, 30 - 2 * c_fail_u[j], "
            "0.3 + 1.5 * c_fail_u[j]), 0.3 + 29.7 * (1 - exp(-(0.2 + 0.6 * c_ttft[j] + c_out[j] / M_SPEED[m] "
            "+ c_in[j] / 40000) / 29.7)))), idx, c_m) AS c_dur",
            "c_err[1] = 1 AND is_agent = 0 AS http_failed",
            "arraySum(c_in) AS r_in",
            "arraySum(c_out) AS r_out",
            "arrayCount(e -> e = 0, c_err) AS r_calls",
            "arrayCount((m, e) -> e = 0 AND M_PRICED[m] = 0, c_m, c_err) AS r_unpriced",
        ],
        [
            "arrayMap((j, m, p) -> toUInt32(multiIf(c_in[j] = 0 OR NOT c_hit[j] OR p < 1024, 0, "
            "M_CACHE[m] = 1, intDiv(p, 128) * 128, M_CACHE[m] IN (2, 3), p, 0)), idx, c_m, c_prefix) AS c_cr",
            "arrayMap((j, m, p) -> toUInt32(if(c_in[j] > 0 AND M_CACHE[m] = 2 AND NOT c_hit[j] "
            "AND p >= 1024, p, 0)), "
            "idx, c_m, c_prefix) AS c_cw",
            "arrayMap(j -> c_dur[j] + c_gap[j] + if(c_tool[j], c_tdur[j] + c_gap[j], 0), idx) AS c_step",
            "toInt64(if(has_http = 1, 3000000, 0)) AS agent_off",
        ],
        [
            "arrayMap(w -> toUInt32(if(P_1H[pr] = 1, w, 0)), c_cw) AS c_cw1h",
            "arraySum(c_step) AS steps",
            "agent_off + toInt64(if(is_agent = 1, 20000000, if(has_http = 1, 8000000, 0))) AS calls_off",
        ],
        [
            "toInt64(20000000 + steps + 10000000) AS agent_dur",
            "toInt64(calls_off + steps + 12000000) AS single_http_dur",
        ],
        [
            "if(is_agent = 1, agent_off + agent_dur + 12000000, single_http_dur) AS http_dur",
        ],
        [
            f"least(t0_raw, {end_ns} "
            "- toInt64(if(has_http = 1, http_dur, if(is_agent = 1, agent_dur, steps))) - 1000)"
            " AS t0",
        ],
        [
            "arrayMap((s, c) -> t0 + calls_off + s - c, arrayCumSum(c_step), c_step) AS c_start",
        ],
        [
            f"arrayMap((j, s) -> toUInt32(intDiv(s - {rate_day0_ns}, {_DAY_NS}) + throwIf(s < {rate_day0_ns} "
            f"OR s >= {rate_day0_ns + rate_days * _DAY_NS}, "
            "'a call outside the days priced for this chunk')) "
            f"* {models} + c_m[j], idx, c_start) AS c_ri",
        ],
        [
            "{} AS c_ci".format(priced(nano("c_in[j] - c_cr[j] - c_cw[j]", f"R_IN[{ri}]"))),
            "{} AS c_co".format(priced(
                f"if(R_HAS_RS[{ri}] = 1 AND c_rs[j] > 0, {nano('c_rs[j]', f'R_RS[{ri}]')} + "
                f"{nano('c_out[j] - c_rs[j]', f'R_OUT[{ri}]')}, {nano('c_out[j]', f'R_OUT[{ri}]')})")),
            "{} AS c_ccr".format(priced(nano("c_cr[j]", f"R_CR[{ri}]"))),
            "{} AS c_ccw".format(priced(
                f"{nano('c_cw[j] - c_cw1h[j]', f'R_CW[{ri}]')} + {nano('c_cw1h[j]', f'R_CW1H[{ri}]')}")),
        ],
        [
            "arraySum(arrayMap(j -> c_ci[j] + c_co[j] + c_ccr[j] + c_ccw[j], idx)) AS r_cost",
            *_span_arrays(),
        ],
    ]  # fmt: skip


_SPAN_FIELDS = (
    "kind", "sidx", "pidx", "start", "dur", "m", "err", "ek", "fin", "tin",
    "tout", "tcr", "tcw", "tcw1h", "trs", "ci", "co", "ccr", "ccw", "tool",
)  # fmt: skip


def _insert_sql(
    database: str,
    constants: str,
    prices: _Prices,
    hours: Sequence[_Row],
    rates: dict[str, list[int]],
    rate_day0_ns: int,
    rate_days: int,
    divisor: int,
    end_ns: int,
) -> str:
    """One INSERT ... SELECT of the traces of `hours`."""
    a = attr
    rate_consts = ",\n    ".join(f"{_lit(v)} AS R_{k.upper()}" for k, v in rates.items())
    hours_lit = "[" + ", ".join("(" + ", ".join(str(v) for v in h) + ")" for h in hours) + "]"
    source = (
        "SELECT h.1 AS hour_idx, h.2 AS hour_start, h.3 AS hour_len, h.4 AS stream, "
        f"arrayJoin(range(h.5, h.6)) AS i FROM (SELECT arrayJoin({hours_lit}) AS h)"
    )
    for level in _trace_levels(divisor, rate_day0_ns, rate_days, end_ns):
        columns = ",\n    ".join(level)
        source = f"SELECT *,\n    {columns}\nFROM ({source})"
    kv = ",\n        ".join(f"{_lit(k)}, {v}" for k, v in _span_attributes())
    array_join = ", ".join(f"s_{name} AS {name}" for name in _SPAN_FIELDS)
    error_type = "ERROR_TYPE[M_PROVIDER[m]][ek]"
    error_http = "ERROR_HTTP[M_PROVIDER[m]][ek]"
    return f"""
INSERT INTO `{database}`.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName,
    SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration,
    StatusCode, StatusMessage, `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`,
    `Links.SpanId`, `Links.TraceState`, `Links.Attributes`)
WITH
    {constants},
    {rate_consts},
    {_lit([e.key if e else "" for e in prices.entries])} AS M_KEY,
    {_lit(prices.table.version)} AS PRICE_VERSION
SELECT
    fromUnixTimestamp64Nano(start) AS Timestamp,
    trace_id AS TraceId,
    {_hex16("cityHash64(K, toUInt64(100000 + sidx))")} AS SpanId,
    if(pidx < 0, '', {_hex16("cityHash64(K, toUInt64(100000 + pidx))")}) AS ParentSpanId,
    '' AS TraceState,
    multiIf(kind = 0, concat(splitByChar(' ', T_ENTRY[t])[1], ' ', T_ROUTE[t]),
            kind = 1, concat('invoke_agent ', AGENT_NAME[T_AGENT[t]]),
            kind = 2, concat(M_OPERATION[m], ' ', M_REQUEST[m]),
            concat('execute_tool ', TOOL_NAME[tool])) AS SpanName,
    multiIf(kind = 0, 'Server', kind = 2, 'Client', 'Internal') AS SpanKind,
    SERVICE_NAME[svc] AS ServiceName,
    map({_lit(a.SERVICE_NAME)}, SERVICE_NAME[svc], {_lit(a.SERVICE_VERSION)}, SERVICE_VERSION[svc],
        {_lit(_DEPLOYMENT_ENVIRONMENT)}, 'production', {_lit(_TELEMETRY_SDK_LANGUAGE)}, 'python',
        {_lit(_TELEMETRY_SDK_NAME)}, 'opentelemetry', {_lit(_TELEMETRY_SDK_VERSION)}, '1.38.0')
        AS ResourceAttributes,
    multiIf(kind = 0, 'opentelemetry.instrumentation.fastapi', kind = 2, PROVIDER_SCOPE[M_PROVIDER[m]],
            'spancost.agents') AS ScopeName,
    multiIf(kind = 0, '0.59b0', kind = 2, PROVIDER_SCOPE_VERSION[M_PROVIDER[m]], {_lit(spancost.__version__)})
        AS ScopeVersion,
    mapFilter((k, v) -> v != '', map(
        {kv}
    )) AS SpanAttributes,
    toUInt64(dur) AS Duration,
    if(err = 1, 'Error', 'Unset') AS StatusCode,
    if(err = 1, if({error_http} = 0, {error_type},
                   concat({error_type}, ' (HTTP ', toString({error_http}), ')')), '') AS StatusMessage,
    CAST([], 'Array(DateTime64(9))') AS `Events.Timestamp`,
    CAST([], 'Array(LowCardinality(String))') AS `Events.Name`,
    CAST([], 'Array(Map(LowCardinality(String), String))') AS `Events.Attributes`,
    CAST([], 'Array(String)') AS `Links.TraceId`,
    CAST([], 'Array(String)') AS `Links.SpanId`,
    CAST([], 'Array(String)') AS `Links.TraceState`,
    CAST([], 'Array(Map(LowCardinality(String), String))') AS `Links.Attributes`
FROM ({source})
ARRAY JOIN {array_join}
"""


# --- generating -------------------------------------------------------------------------------------------

_UTC = dt.timezone.utc


def _end(plan: TrafficPlan) -> dt.datetime:
    end = plan.end or dt.datetime.now(_UTC)
    return end.replace(tzinfo=_UTC) if end.tzinfo is None else end.astimezone(_UTC)


def _start(plan: TrafficPlan, end: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(end.date() - dt.timedelta(days=plan.days - 1), dt.time(), _UTC)


def _mean_calls_per_trace() -> float:
    plain = [t for t in TEMPLATES if t.share > 0]
    return sum(t.share for t in plain) / sum(t.share / _template_calls(t) for t in plain)


def generate(
    store: Store,
    plan: TrafficPlan = TrafficPlan(),
    progress: Callable[[int], None] | None = None,
    *,
    table: PriceTable | None = None,
) -> TrafficSummary:
    """Write `plan`'s traffic into `store` (through otel_traces and its views) and read back what it holds.

    `progress` is called after each INSERT with the model calls written so far (as planned; the
    summary has the exact count). `table`: the price table (default: the one spans are priced with).
    Refuses a store that already holds traffic of these services in the window.
    """
    problems = plan.validate()
    if problems:
        raise TrafficError("invalid traffic plan: " + "; ".join(problems))
    began = time.perf_counter()
    prices = _prices(table or pricing_table())
    end = _end(plan)
    start = _start(plan, end)
    if _count_spans(store, start, end):
        raise TrafficError(
            f"{store.database} already holds traffic of {', '.join(s for s, _ in SERVICES)} between "
            f"{start:%Y-%m-%d} and {end:%Y-%m-%d %H:%M}; generate into an empty store"
        )
    if "spend_spike" in plan.anomalies and end == dt.datetime.combine(end.date(), dt.time(), _UTC):
        # checked before anything is written: the spike goes into the hours of today before `end`
        raise TrafficError("spend_spike needs part of today before `end` (end is midnight)")
    grow_at = end - dt.timedelta(days=7) if "prompt_grew" in plan.anomalies else None
    constants = _constants(plan, start, _ns(grow_at) if grow_at else None)
    per_trace = _mean_calls_per_trace()
    month_start_ns = _ns(dt.datetime(end.year, end.month, 1, tzinfo=_UTC))
    rows: list[_Row] = []
    for hour, hour_start, length, count in _plain_hours(
        plan, start, end, max(1, round(plan.calls / per_trace))
    ):
        last = count
        if "fast_burn" in plan.anomalies and hour_start >= month_start_ns:
            last += round(count * (FAST_BURN_FACTOR - 1))
        if last:
            rows.append((hour, hour_start, length, 0, 0, last))
    writer = _Writer(store, prices, constants, _ns(end), progress)
    writer.write(rows, per_trace)
    if "spend_spike" in plan.anomalies:
        writer.write(_spike_rows(store, prices, start, end), float(TEMPLATES[_RUNAWAY - 1].calls))
    return _summary(store, plan, start, end, grow_at, time.perf_counter() - began)


class _Writer:
    """INSERTs of about `CHUNK_CALLS` calls each, with the rates of the days each one covers."""

    def __init__(
        self,
        store: Store,
        prices: _Prices,
        constants: str,
        end_ns: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.store = store
        self.prices = prices
        self.constants = constants
        self.end_ns = end_ns
        self.progress = progress
        self.written = 0.0
        self.divisor = 10 ** (prices.scale - 3)

    def write(self, rows: Sequence[_Row], calls_per_trace: float) -> None:
        chunk: list[_Row] = []
        calls = 0.0
        for row in rows:
            chunk.append(row)
            calls += (row[5] - row[4]) * calls_per_trace
            if calls >= CHUNK_CALLS:
                self._insert(chunk, calls)
                chunk, calls = [], 0.0
        if chunk:
            self._insert(chunk, calls)

    def _insert(self, chunk: Sequence[_Row], calls: float) -> None:
        # One day either side: agent runs cross midnight, and runs near `end` are moved earlier.
        first = dt.datetime.fromtimestamp(min(r[1] for r in chunk) // _NS, _UTC).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(max(r[1] + r[2] for r in chunk) // _NS, _UTC).date() + dt.timedelta(
            days=1
        )
        days = (last - first).days + 1
        rates: dict[str, list[int]] = {kind: [] for kind in _RATE_KINDS}
        for offset in range(days):
            for kind, values in _day_rates(self.prices, first + dt.timedelta(days=offset)).items():
                rates[kind].extend(values)
        day0 = _ns(dt.datetime.combine(first, dt.time(), _UTC))
        sql = _insert_sql(
            self.store.database,
            self.constants,
            self.prices,
            chunk,
            rates,
            day0,
            days,
            self.divisor,
            self.end_ns,
        )
        self.store.command(sql, settings={"insert_deduplicate": 0, "max_query_size": 16 * 1024 * 1024})
        self.written += calls
        if self.progress is not None:
            self.progress(round(self.written))


def _services() -> list[str]:
    return [name for name, _ in SERVICES]


def _count_spans(store: Store, start: dt.datetime, end: dt.datetime) -> int:
    return int(
        store.query(
            f"SELECT count() FROM `{store.database}`.otel_traces "
            "WHERE ServiceName IN {services:Array(String)} "
            "AND Timestamp >= fromUnixTimestamp64Nano({start:Int64}) "
            "AND Timestamp <= fromUnixTimestamp64Nano({end:Int64})",
            {"services": _services(), "start": _ns(start), "end": _ns(end)},
        ).single_value()
        or 0
    )


def _daily_cost(store: Store, start: dt.datetime, end: dt.datetime) -> dict[dt.date, Decimal]:
    rows = store.query(
        f"SELECT toDate(Timestamp) AS day, sum(CostUSD) FROM `{store.database}`.llm_calls FINAL "
        "WHERE ServiceName IN {services:Array(String)} "
        "AND Timestamp >= fromUnixTimestamp64Nano({start:Int64}) "
        "AND Timestamp <= fromUnixTimestamp64Nano({end:Int64}) GROUP BY day ORDER BY day",
        {"services": _services(), "start": _ns(start), "end": _ns(end)},
    )
    return {day: Decimal(cost) for day, cost in rows}


def _runaway_trace_cost(prices: _Prices, day: dt.date) -> float:
    """Expected USD of one runaway agent run (log-normal means; errors and the tail included)."""
    profile = PROFILES["runaway"]
    template = TEMPLATES[_RUNAWAY - 1]
    ((model, _),) = profile.mix
    entry = prices.entries[_MODEL_INDEX[model] - 1]
    assert entry is not None
    rates = entry.price_at(dt.datetime.combine(day, dt.time(), _UTC)).rates
    out = profile.out_median * math.exp(profile.out_sigma**2 / 2) * (1 + 9 * _TAIL_RATE)
    total = 0.0
    for j in range(1, template.calls + 1):
        tokens = profile.in_median * (1 + template.growth * (j - 1)) * math.exp(profile.in_sigma**2 / 2)
        total += (tokens * float(rates.input) + out * float(rates.output)) / 1e6
    return total * (1 - _ERROR_RATE)


def _spike_rows(store: Store, prices: _Prices, start: dt.datetime, end: dt.datetime) -> list[_Row]:
    """Runaway agent runs in the last hours of today, enough for today to reach `SPIKE_FACTOR` normal days."""
    today = dt.datetime.combine(end.date(), dt.time(), _UTC)
    since = max(today, end - dt.timedelta(hours=SPIKE_HOURS))
    daily = _daily_cost(store, start, end)
    before = [
        float(daily.get(day, 0))
        for k in range(1, 31)
        if (day := today.date() - dt.timedelta(days=k)) >= start.date()
    ]
    mean = sum(before) / len(before)
    std = math.sqrt(sum((x - mean) ** 2 for x in before) / len(before))
    need = max(SPIKE_FACTOR * mean, mean + 4 * std) - float(daily.get(today.date(), 0))
    traces = max(1, math.ceil(need / _runaway_trace_cost(prices, today.date())))
    hours = []
    at = since
    while at < end:
        upto = min(dt.datetime.combine(at.date(), dt.time(at.hour), _UTC) + dt.timedelta(hours=1), end)
        hours.append((at, upto))
        at = upto
    counts = _largest_remainder(traces, [(b - a).total_seconds() for a, b in hours])
    return [
        (int(a.timestamp()) // 3600, _ns(a), _ns(b) - _ns(a), 1, 0, n)
        for (a, b), n in zip(hours, counts, strict=True)
        if n
    ]


def _summary(
    store: Store,
    plan: TrafficPlan,
    start: dt.datetime,
    end: dt.datetime,
    grow_at: dt.datetime | None,
    seconds: float,
) -> TrafficSummary:
    db = store.database
    window = {"services": _services(), "start": _ns(start), "end": _ns(end)}
    where = (
        "ServiceName IN {services:Array(String)} AND Timestamp >= fromUnixTimestamp64Nano({start:Int64}) "
        "AND Timestamp <= fromUnixTimestamp64Nano({end:Int64})"
    )
    runaway = PROFILES["runaway"]
    calls = store.query(
        f"""SELECT count(), countIf(CostStatus = {{priced:String}}),
                   countIf(CostStatus = {{unpriced:String}}), countIf(StatusCode = 'Error'),
                   sum(CostUSD), min(Timestamp), max(Timestamp),
                   countIf(PromptName = {{runaway_prompt:String}} AND RequestModel = {{runaway_model:String}})
            FROM `{db}`.llm_calls FINAL WHERE {where}""",
        {
            **window,
            "priced": attr.CostStatus.PRICED.value,
            "unpriced": attr.CostStatus.UNPRICED.value,
            "runaway_prompt": runaway.prompt,
            "runaway_model": runaway.mix[0][0],
        },
    ).rows[0]
    spans = store.query(
        f"""SELECT count(), countIf(ParentSpanId = ''),
                   countIf(SpanAttributes[{{op:String}}] = {{agent:String}})
            FROM `{db}`.otel_traces WHERE {where}""",
        {**window, "op": attr.GEN_AI_OPERATION_NAME, "agent": attr.Operation.INVOKE_AGENT.value},
    ).rows[0]
    count, priced, unpriced, failed, cost, first, last, spike = calls
    return TrafficSummary(
        start=start,
        end=end,
        calls=int(count),
        priced_calls=int(priced),
        unpriced_calls=int(unpriced),
        failed_calls=int(failed),
        cost_usd=Decimal(cost),
        traces=int(spans[1]),
        spans=int(spans[0]),
        agent_runs=int(spans[2]),
        first=_utc(first) if count else None,
        last=_utc(last) if count else None,
        unpriced_model=UNPRICED_MODEL,
        spike_calls=int(spike),
        grown_prompt=GROWN_PROMPT if grow_at else None,
        grown_at=grow_at,
        grown_version=_grown_version(_BASE_VERSIONS[GROWN_PROMPT]) if grow_at else None,
        seconds=seconds,
        daily_cost=_daily_cost(store, start, end),
    )


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
