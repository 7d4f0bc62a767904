"""The spend report: the named queries behind the cost dashboard, run over a time range.

Returns plain data (lists of dicts with Decimal money); the CLI renders it for a person or as JSON.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from spancost import queries
from spancost.store import Store, redact

REPORT_QUERIES = ("daily_spend", "spend_by_prompt", "cost_per_call_by_prompt", "output_tokens_histogram")


@dataclass
class Report:
    store: str
    time_range: queries.TimeRange
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def total_usd(self) -> Decimal:
        return sum((Decimal(row["cost_usd"]) for row in self.sections.get("daily_spend", [])), Decimal(0))

    @property
    def calls(self) -> int:
        return sum(int(row["calls"]) for row in self.sections.get("daily_spend", []))

    @property
    def unpriced_calls(self) -> int:
        return sum(int(row["unpriced_calls"]) for row in self.sections.get("daily_spend", []))

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "store": self.store,
            "from": self.time_range.start.isoformat(),
            "to": self.time_range.end.isoformat(),
            "total_usd": float(self.total_usd),
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
            **{name: [_jsonable(row) for row in rows] for name, rows in self.sections.items()},
        }


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            out[key] = float(value)
        elif isinstance(value, (dt.date, dt.datetime)):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def fill_days(rows: list[dict[str, Any]], time_range: queries.TimeRange) -> list[dict[str, Any]]:
    """Daily rows with the days that had no calls filled in as zero, so gaps show as gaps."""
    by_day = {row["day"]: row for row in rows}
    day = time_range.start.date()
    filled = []
    while day <= time_range.end.date():
        filled.append(by_day.get(day, {"day": day, "cost_usd": Decimal(0), "calls": 0, "unpriced_calls": 0}))
        day += dt.timedelta(days=1)
    return filled


def build_report(store: Store, days: int = 30, now: dt.datetime | None = None) -> Report:
    """Run every report query over the last `days` days."""
    time_range = queries.TimeRange.last_days(days, now)
    report = Report(store=redact(store.dsn), time_range=time_range)
    for name in REPORT_QUERIES:
        rows = store.query(queries.render(name, time_range, variables=queries.ALL_FILTERS)).dicts()
        report.sections[name] = fill_days(rows, time_range) if name == "daily_spend" else rows
    return report
