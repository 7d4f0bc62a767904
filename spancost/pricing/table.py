"""The dated price table: its types, its strict loader and model lookup.

The bundled table is YAML package data (one file per provider, see data/README.md), loaded lazily
on first use. A user file (`SPANCOST_PRICES`) overrides or extends it. Every problem in a file is
reported at once, each naming the file, the model and the field.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from spancost._log import log_once
from spancost.pricing.match import Clause, ClauseError, default_clause, normalise_model_id, parse_clause

PRICES_ENV = "SPANCOST_PRICES"

logger = logging.getLogger("spancost.pricing")

UNITS = (
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    "reasoning_mtok",
)
# The `Rates` field that holds each unit, in the same order.
_RATE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning")
SERVICE_TIERS = ("batch", "flex", "priority")
STANDARD_TIER = "standard"
MODEL_KINDS = ("chat", "embedding")
_MODEL_KEYS = {"id", "name", "kind", "match", "checked", "source", "notes", "prices"}
_PROVIDER_KEYS = {"provider", "name", "pricing_url", "models"}


class PriceTableError(ValueError):
    """A price file that cannot be loaded. `problems` lists every one found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid price table:\n  " + "\n  ".join(problems))


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens, by kind of token. `None`: the provider has no separate rate."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None

    def as_dict(self) -> dict[str, Decimal]:
        """The rates the provider publishes, by unit key (`input_mtok`, ...)."""
        values = (getattr(self, name) for name in _RATE_FIELDS)
        return {unit: value for unit, value in zip(UNITS, values, strict=True) if value is not None}


@dataclass(frozen=True, slots=True)
class LongContext:
    """Rates for the whole request once its input exceeds `above_input_tokens`."""

    above_input_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class PriceSet:
    """The price of a model in one period: standard rates, long context, service tiers."""

    rates: Rates
    long_context: LongContext | None = None
    service_tiers: Mapping[str, PriceSet] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DatedPrice:
    start: dt.datetime | None
    """UTC start of this price; `None` for the first, which applies from the beginning."""
    prices: PriceSet


@dataclass(frozen=True, slots=True)
class ModelPrice:
    provider: str
    id: str
    name: str
    kind: str
    match: Clause
    checked: dt.date
    source: str
    notes: str
    history: tuple[DatedPrice, ...]
    match_given: bool = True
    """False when the entry had no `match` and uses the default rule; an override like that keeps
    the match rule of the bundled entry it replaces."""

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.id}"

    def price_at(self, when: dt.datetime | None) -> PriceSet:
        """The price in force at `when` (UTC); the newest one when `when` is None."""
        return self.price_at_ns(None if when is None else _epoch_ns(when))

    def price_at_ns(self, when_ns: int | None) -> PriceSet:
        """The price in force at a time in nanoseconds since the epoch, as spans carry it (None: the
        newest)."""
        history = self.history
        if when_ns is None or len(history) == 1:
            return history[-1].prices
        current = history[0].prices
        for dated in history[1:]:
            if dated.start is not None and when_ns >= _epoch_ns(dated.start):
                current = dated.prices
        return current


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND = dt.timedelta(microseconds=1)


def _epoch_ns(when: dt.datetime) -> int:
    # Exact (no float): a price change at midnight applies from that nanosecond on.
    return (when - _EPOCH) // _MICROSECOND * 1000


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    name: str
    pricing_url: str
    models: tuple[ModelPrice, ...]


# Providers as spans name them (gen_ai.provider.name) → the table that prices their models first.
_PROVIDER_ALIASES = {
    "openai": "openai",
    "azure.ai.openai": "openai",
    "azure": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "google": "google",
    "gemini": "google",
}


class PriceTable:
    """Every provider's models; finds the entry that prices a model id."""

    _CACHE_LIMIT = 4096

    def __init__(self, providers: Iterable[Provider], version: str) -> None:
        self.providers: tuple[Provider, ...] = tuple(providers)
        self.version = version
        self._by_provider = {p.id: p for p in self.providers}
        self._cache: dict[tuple[str, str | None], ModelPrice | None] = {}
        self._lock = threading.Lock()

    def models(self) -> Iterable[ModelPrice]:
        for provider in self.providers:
            yield from provider.models

    def find(self, model: str, provider: str | None = None) -> ModelPrice | None:
        """The entry for `model` (any spelling, see `normalise_model_id`), or None if it is unknown.

        `provider` (a `gen_ai.provider.name`) only decides which table is tried first.
        """
        cache_key = (model, provider)
        try:
            return self._cache[cache_key]
        except KeyError:
            pass
        found = self._search(normalise_model_id(model), _PROVIDER_ALIASES.get(provider or ""))
        with self._lock:
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()
            self._cache[cache_key] = found
        return found

    def _search(self, model: str, first: str | None) -> ModelPrice | None:
        order = list(self.providers)
        if first in self._by_provider:
            order.sort(key=lambda p: p.id != first)
        for provider in order:
            for entry in provider.models:
                if entry.match.matches(model):
                    return entry
        return None


# --- loading ---------------------------------------------------------------------------------------


class _DecimalLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Reads YAML floats as Decimal, so that 0.075 is exactly 0.075 (libyaml's parser when present)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(loader.construct_scalar(node))


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def _rate(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() and number >= 0 else None


def _parse_rates(
    raw: Mapping[str, Any], where: str, problems: _Problems, inherit: Rates | None
) -> Rates | None:
    """Rates from `raw`; units it leaves out are taken from `inherit` (long context) or absent (standard)."""
    values: dict[str, Decimal | None] = (
        {name: getattr(inherit, name) for name in _RATE_FIELDS} if inherit is not None else {}
    )
    ok = True
    for unit, name in zip(UNITS, _RATE_FIELDS, strict=True):
        if unit in raw:
            rate = _rate(raw[unit])
            if rate is None:
                problems.add(
                    f"{where}.{unit}", f"must be a number >= 0 (USD per million tokens), got {raw[unit]!r}"
                )
                ok = False
            values[name] = rate
        elif inherit is None and unit in ("input_mtok", "output_mtok"):
            problems.add(where, f"missing {unit}")
            ok = False
    return Rates(**values) if ok else None  # type: ignore[arg-type]


def _parse_price_set(raw: Any, where: str, problems: _Problems, *, allow_tiers: bool) -> PriceSet | None:
    if not isinstance(raw, Mapping):
        problems.add(where, "must be a mapping of units")
        return None
    allowed = set(UNITS) | {"long_context", "from"} | (set(SERVICE_TIERS) if allow_tiers else set())
    for key in raw:
        if key not in allowed:
            hint = "; service tiers cannot nest" if key in SERVICE_TIERS else ""
            problems.add(f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))}){hint}")
    rates = _parse_rates(raw, where, problems, None)
    if rates is None:
        return None
    long_context = None
    if "long_context" in raw:
        long_context = _parse_long_context(raw["long_context"], f"{where}.long_context", problems, rates)
    tiers: dict[str, PriceSet] = {}
    for tier in SERVICE_TIERS if allow_tiers else ():
        if tier in raw:
            parsed = _parse_price_set(raw[tier], f"{where}.{tier}", problems, allow_tiers=False)
            if parsed is not None:
                tiers[tier] = parsed
    return PriceSet(rates=rates, long_context=long_context, service_tiers=tiers)


def _parse_long_context(raw: Any, where: str, problems: _Problems, base: Rates) -> LongContext | None:
    if not isinstance(raw, Mapping):
        problems.add(where, "must be a mapping with above_input_tokens and units")
        return None
    for key in raw:
        if key not in set(UNITS) | {"above_input_tokens"}:
            problems.add(f"{where}.{key}", "unknown key")
    threshold = raw.get("above_input_tokens")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold <= 0:
        problems.add(f"{where}.above_input_tokens", f"must be a positive integer, got {threshold!r}")
        return None
    rates = _parse_rates(raw, where, problems, base)
    return LongContext(threshold, rates) if rates is not None else None


def _parse_date(value: Any, where: str, problems: _Problems) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    problems.add(where, f"must be a date YYYY-MM-DD, got {value!r}")
    return None


def _parse_history(raw: Any, where: str, problems: _Problems) -> tuple[DatedPrice, ...]:
    entries = raw if isinstance(raw, list) else [raw]
    if not entries:
        problems.add(where, "must not be an empty list")
        return ()
    history: list[DatedPrice] = []
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]" if isinstance(raw, list) else where
        start: dt.datetime | None = None
        if isinstance(entry, Mapping) and "from" in entry:
            if i == 0:
                problems.add(f"{here}.from", "the first price applies from the beginning and has no 'from'")
            day = _parse_date(entry["from"], f"{here}.from", problems)
            if day is not None:
                start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
        elif i > 0:
            problems.add(here, "a later price needs 'from: YYYY-MM-DD'")
        prices = _parse_price_set(entry, here, problems, allow_tiers=True)
        if prices is None:
            continue
        if start is not None and history and history[-1].start is not None and start <= history[-1].start:
            problems.add(f"{here}.from", "dates must increase")
        history.append(DatedPrice(start, prices))
    return tuple(history)


def _parse_model(raw: Any, provider: str, where: str, problems: _Problems) -> ModelPrice | None:
    if not isinstance(raw, Mapping):
        problems.add(where, "must be a mapping")
        return None
    model_id = raw.get("id")
    if not isinstance(model_id, str) or not model_id or model_id != model_id.lower():
        problems.add(f"{where}.id", f"must be a non-empty lower-case string, got {model_id!r}")
        return None
    where = f"{where} ({model_id})"
    for key in raw:
        if key not in _MODEL_KEYS:
            problems.add(f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(_MODEL_KEYS))})")
    for key in ("name", "source"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            problems.add(f"{where}.{key}", "required, a non-empty string")
    kind = raw.get("kind", "chat")
    if kind not in MODEL_KINDS:
        problems.add(f"{where}.kind", f"must be one of {', '.join(MODEL_KINDS)}, got {kind!r}")
    checked = _parse_date(raw.get("checked"), f"{where}.checked", problems)
    try:
        clause = parse_clause(raw["match"], f"{where}.match") if "match" in raw else default_clause(model_id)
    except ClauseError as err:
        problems.add(where, str(err))
        return None
    if "prices" not in raw:
        problems.add(f"{where}.prices", "required")
        return None
    history = _parse_history(raw["prices"], f"{where}.prices", problems)
    if checked is None or not history:
        return None
    return ModelPrice(
        provider=provider,
        id=model_id,
        name=str(raw.get("name", model_id)),
        kind=str(kind),
        match=clause,
        checked=checked,
        source=str(raw.get("source", "")),
        notes=str(raw.get("notes", "")),
        history=history,
        match_given="match" in raw,
    )


def parse_provider(doc: Any, origin: str) -> Provider:
    """One provider document; raises `PriceTableError` listing every problem in it."""
    problems = _Problems()
    provider = _parse_provider(doc, origin, problems)
    if problems.items or provider is None:
        raise PriceTableError(problems.items or [f"{origin}: empty"])
    return provider


def _parse_provider(doc: Any, origin: str, problems: _Problems) -> Provider | None:
    if not isinstance(doc, Mapping):
        problems.add(origin, "must be a mapping with provider, name, pricing_url, models")
        return None
    for key in doc:
        if key not in _PROVIDER_KEYS:
            problems.add(f"{origin}.{key}", f"unknown key (allowed: {', '.join(sorted(_PROVIDER_KEYS))})")
    provider_id = doc.get("provider")
    if not isinstance(provider_id, str) or not provider_id:
        problems.add(f"{origin}.provider", "required, a non-empty string")
        return None
    models_raw = doc.get("models")
    if not isinstance(models_raw, list):
        problems.add(f"{origin}.models", "required, a list")
        return None
    models = []
    seen: set[str] = set()
    for i, raw in enumerate(models_raw):
        model = _parse_model(raw, provider_id, f"{origin}: models[{i}]", problems)
        if model is None:
            continue
        if model.id in seen:
            problems.add(f"{origin}: models[{i}] ({model.id})", "duplicate id")
        seen.add(model.id)
        models.append(model)
    return Provider(
        provider_id, str(doc.get("name", provider_id)), str(doc.get("pricing_url", "")), tuple(models)
    )


def check_rules(providers: Iterable[Provider]) -> list[str]:
    """Problems with match rules: a rule that misses its own id, or catches another model's id."""
    models = [m for p in providers for m in p.models]
    problems = []
    for model in models:
        if not model.match.matches(model.id):
            problems.append(f"{model.key}: its match rule does not match its own id")
        for other in models:
            if other is not model and model.match.matches(other.id):
                problems.append(f"{model.key}: its match rule also catches {other.key}; narrow it")
    return problems


def load_documents(path: Path) -> list[Any]:
    """The provider documents in a YAML file (one document, a list of them, or a multi-document file)."""
    try:
        with path.open(encoding="utf-8") as handle:
            docs = list(yaml.load_all(handle, Loader=_DecimalLoader))
    except (OSError, yaml.YAMLError) as err:
        raise PriceTableError([f"{path}: cannot read ({err})"]) from err
    flat: list[Any] = []
    for doc in docs:
        flat.extend(doc if isinstance(doc, list) else [doc])
    return flat


def _version(providers: Iterable[Provider]) -> str:
    dates = [m.checked for p in providers for m in p.models]
    return max(dates).isoformat() if dates else "empty"


def bundled_providers() -> list[Provider]:
    problems = _Problems()
    providers: list[Provider] = []
    data = resources.files("spancost.pricing") / "data"
    for item in sorted(data.iterdir(), key=lambda f: f.name):
        if not item.name.endswith(".yml"):
            continue
        docs = yaml.load(item.read_text(encoding="utf-8"), Loader=_DecimalLoader)
        provider = _parse_provider(docs, f"spancost/pricing/data/{item.name}", problems)
        if provider is not None:
            providers.append(provider)
    if problems.items:
        raise PriceTableError(problems.items)
    return providers


def build_table(overrides: Iterable[Path] = ()) -> PriceTable:
    """The bundled table with each override file applied in order (same key replaces, new adds)."""
    providers = {p.id: p for p in bundled_providers()}
    version = _version(providers.values())
    for path in overrides:
        problems = _Problems()
        added = [p for doc in load_documents(path) if (p := _parse_provider(doc, str(path), problems))]
        if problems.items:
            raise PriceTableError(problems.items)
        for extra in added:
            base = providers.get(extra.id)
            if base is None:
                providers[extra.id] = extra
                continue
            replaced = {m.id: m for m in base.models}
            for model in extra.models:
                bundled = replaced.get(model.id)
                if bundled is not None and not model.match_given:
                    model = replace(model, match=bundled.match)
                replaced[model.id] = model
            providers[extra.id] = replace(base, models=tuple(replaced.values()))
        rule_problems = check_rules(providers.values())
        if rule_problems:
            raise PriceTableError([f"{path}: {p}" for p in rule_problems])
        version = f"{version}+{path.name}:{_version(added)}"
    return PriceTable(providers.values(), version)


_default: PriceTable | None = None
_bundled_only: PriceTable | None = None
_default_lock = threading.Lock()


def default_table() -> PriceTable:
    """The table in use: bundled data plus `SPANCOST_PRICES`, loaded on first use.

    Raises `PriceTableError` when the `SPANCOST_PRICES` file is bad (the CLI reports it).
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                override = os.environ.get(PRICES_ENV)
                _default = build_table([Path(override)] if override else [])
    return _default


def pricing_table() -> PriceTable:
    """`default_table()` for pricing spans in an application, which must not fail over a bad file.

    A bad `SPANCOST_PRICES` file is refused: the error (every problem in it) is logged once, and
    the bundled table prices calls until the file is fixed.
    """
    global _bundled_only
    if _default is None and _bundled_only is not None:
        return _bundled_only  # the override was refused once already; not re-read on every span
    try:
        return default_table()
    except PriceTableError as err:
        log_once(
            logger,
            "pricing.bad-override",
            "spancost: %s=%s refused, pricing with the bundled table: %s",
            PRICES_ENV,
            os.environ.get(PRICES_ENV),
            err,
            level=logging.ERROR,
        )
        with _default_lock:
            if _bundled_only is None:
                _bundled_only = build_table([])
        return _bundled_only


def set_default_table(table: PriceTable | None) -> None:
    """Use `table` from now on (None: reload from the bundled data and environment on next use)."""
    global _default, _bundled_only
    with _default_lock:
        _default = table
        _bundled_only = None
