"""Re-price stored spans after a price-table change: explicitly, never at report time.

Costs are computed when a call is made and stored with the price version that priced them. When the
table changes (a correction, a negotiated rate, a model that was missing), `reprice` recomputes the
cost of stored model-call spans from a date on, with the same pricing function as ever, and writes
the result everywhere it is read:

1. `otel_traces`: a mutation replaces the span's cost attributes (amount, parts, status, price key,
   version, tier) from a patch table of the changed spans only;
2. `llm_calls`: the changed spans are inserted again through the view's own SELECT (the table is a
   ReplacingMergeTree: the new row replaces the old), then the affected partitions are merged;
3. `llm_daily`: the affected days are deleted and summed again from `llm_calls`.

Spans whose cost came with them (`provider`) are left alone. Running it twice changes nothing the
second time. Spans that arrive for the same days while it runs may be counted twice in `llm_daily`
until it runs again: re-price days that are no longer receiving spans.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spancost import attributes as attr
from spancost.collector.rows import attribute_string
from spancost.costing import cost_attributes
from spancost.pricing.table import PriceTable, pricing_table
from spancost.store import Store, StoreError

# Everything the pricing stage writes; stripped before pricing again, so a model that lost its price
# ends up `unpriced` rather than keeping a stale amount.
COST_KEYS = (
    attr.GEN_AI_USAGE_COST_AMOUNT,
    attr.GEN_AI_USAGE_COST_CURRENCY,
    attr.GEN_AI_USAGE_COST_SOURCE,
    attr.COST_STATUS,
    attr.COST_INPUT,
    attr.COST_OUTPUT,
    attr.COST_CACHE_READ,
    attr.COST_CACHE_WRITE,
    attr.PRICE_KEY,
    attr.PRICE_VERSION,
    attr.PRICE_TIER,
)
_CHUNK = 5000
_NO_DEDUP = {"insert_deduplicate": 0}  # a recomputed block may equal an earlier one; it must not be dropped


@dataclass
class RepriceResult:
    examined: int = 0
    repriced: int = 0
    kept_provider_cost: int = 0
    cost_before: Decimal = Decimal(0)
    cost_after: Decimal = Decimal(0)
    days: list[dt.date] = field(default_factory=list)
    version: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "examined": self.examined,
            "repriced": self.repriced,
            "kept_provider_cost": self.kept_provider_cost,
            "cost_before_usd": float(self.cost_before),
            "cost_after_usd": float(self.cost_after),
            "days": [day.isoformat() for day in self.days],
            "price_version": self.version,
        }


def _amount(attributes: dict[str, str]) -> Decimal:
    try:
        return Decimal(attributes.get(attr.GEN_AI_USAGE_COST_AMOUNT) or 0)
    except ArithmeticError:
        return Decimal(0)


def new_cost_attributes(
    attributes: dict[str, str], start_ns: int, table: PriceTable
) -> dict[str, str] | None:
    """The span's cost attributes as the table prices it now (rendered as stored), or None when its
    cost came with it and stays."""
    if attributes.get(attr.GEN_AI_USAGE_COST_SOURCE) not in (None, "", attr.CostSource.LOCAL.value):
        return None
    if attributes.get(attr.COST_STATUS) == attr.CostStatus.PROVIDER.value:
        return None
    stripped = {key: value for key, value in attributes.items() if key not in COST_KEYS}
    priced = cost_attributes(stripped, start_ns, table=table)
    return {key: attribute_string(value) for key, value in priced.items()}


def _models(store: Store, since: dt.datetime, model: str | None, table: PriceTable) -> list[str] | None:
    """The stored model ids that `model` names (any spelling of the same price entry); None: all."""
    if model is None:
        return None
    wanted = table.find(model)
    rows = store.query(
        "SELECT DISTINCT Model FROM llm_calls WHERE Timestamp >= {since:DateTime64(9)}", {"since": since}
    ).rows
    stored = [name for (name,) in rows]
    if wanted is None:
        return [name for name in stored if name == model]
    return [name for name in stored if (entry := table.find(name)) is not None and entry.key == wanted.key]


def reprice(
    store: Store,
    since: dt.datetime,
    *,
    model: str | None = None,
    table: PriceTable | None = None,
    progress: Callable[[int], None] | None = None,
) -> RepriceResult:
    """Re-price the model-call spans stored from `since` on (optionally one model's); see the module doc."""
    # refused up front: the reads below would otherwise go through a running server
    store.require_local("re-pricing")
    _refuse_cluster(store)
    table = table or pricing_table()
    result = RepriceResult(version=table.version)
    models = _models(store, since, model, table)
    if models == []:
        return result
    condition = "Timestamp >= {since:DateTime64(9)}" + (
        " AND Model IN {models:Array(String)}" if models else ""
    )
    keys = f"SELECT TraceId, SpanId FROM llm_calls WHERE {condition}"
    parameters: dict[str, Any] = {"since": since, "models": models or []}
    rows = store.query(
        "SELECT TraceId, SpanId, toUnixTimestamp64Nano(Timestamp), toDate(Timestamp), SpanAttributes"
        f" FROM otel_traces WHERE Timestamp >= {{since:DateTime64(9)}} AND (TraceId, SpanId) IN ({keys})",
        parameters,
    ).rows
    patches: list[list[Any]] = []
    days: set[dt.date] = set()
    for trace_id, span_id, start_ns, day, attributes in rows:
        result.examined += 1
        new = new_cost_attributes(dict(attributes), start_ns, table)
        if new is None:
            result.kept_provider_cost += 1
            continue
        old = {key: attributes[key] for key in COST_KEYS if key in attributes}
        result.cost_before += _amount(old)
        result.cost_after += _amount(new)
        if new != old:
            patches.append([trace_id, span_id, new])
            days.add(day)
        if progress is not None:
            progress(1)
    if patches:
        _apply(store, since, patches, sorted(days))
    result.repriced = len(patches)
    result.days = sorted(days)
    return result


def _refuse_cluster(store: Store) -> None:
    """The mutations and partition rewrites below work on one server's tables; on a cluster they
    would have to run on every shard's `_local` tables, which is not built yet."""
    engine = store.query(
        "SELECT engine FROM system.tables WHERE database = {db:String} AND name = 'otel_traces'",
        {"db": store.database},
    ).rows
    if engine and engine[0][0] == "Distributed":
        raise StoreError(
            f"{store.database}.otel_traces is a Distributed table (a store made with --cluster): "
            "spancost reprice works on a single server's store only, so nothing was changed"
        )


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _apply(store: Store, since: dt.datetime, patches: list[list[Any]], days: list[dt.date]) -> None:
    database = store.database
    name = f"spancost_reprice_{uuid.uuid4().hex[:12]}"
    patch = f"`{database}`.`{name}`"
    store.command(
        f"CREATE TABLE {patch} (TraceId String, SpanId String, Patch Map(String, String))"
        " ENGINE = Join(ANY, LEFT, TraceId, SpanId)"
    )
    try:
        for chunk in _chunks(patches):
            store.insert(name, chunk, ("TraceId", "SpanId", "Patch"))
        cost_keys = ", ".join(f"'{key}'" for key in COST_KEYS)
        # A Join table keyed on two columns cannot be read back, only probed: a span is in the patch
        # when joinGet finds a non-empty patch for it.
        changed = f"length(joinGet('{database}.{name}', 'Patch', TraceId, SpanId)) > 0"
        # A mutation runs outside any session, so joinGet names the patch table with its database.
        store.command(
            f"ALTER TABLE `{database}`.otel_traces UPDATE SpanAttributes = mapUpdate("
            f"mapFilter((k, v) -> k NOT IN ({cost_keys}), SpanAttributes),"
            f" CAST(joinGet('{database}.{name}', 'Patch', TraceId, SpanId),"
            " 'Map(LowCardinality(String), String)'))"
            f" WHERE Timestamp >= {{since:DateTime64(9)}} AND {changed}",
            parameters={"since": since},
            settings={"mutations_sync": 2},
        )
        store.command(
            f"INSERT INTO `{database}`.llm_calls SELECT * FROM ({store.view_select('llm_calls_mv')})"
            f" WHERE Timestamp >= {{since:DateTime64(9)}} AND {changed}",
            parameters={"since": since},
            # llm_calls is partitioned by day: a re-price may span more days than one insert may by default
            settings={**_NO_DEDUP, "max_partitions_per_insert_block": 0},
        )
    finally:
        store.command(f"DROP TABLE IF EXISTS {patch}")
    for day in sorted(set(days)):
        store.command(f"OPTIMIZE TABLE `{database}`.llm_calls PARTITION ID '{day:%Y%m%d}' FINAL")
    store.command(
        f"ALTER TABLE `{database}`.llm_daily DELETE WHERE Date IN {{days:Array(Date)}}",
        parameters={"days": days},
        settings={"mutations_sync": 2},
    )
    store.command(
        f"INSERT INTO `{database}`.llm_daily SELECT * FROM ({store.view_select('llm_daily_mv')})"
        " WHERE Date IN {days:Array(Date)}",
        parameters={"days": days},
        settings=_NO_DEDUP,
    )
