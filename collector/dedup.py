"""What keeps a span from being stored twice: batch tokens for replays, recent span ids for client retries.

A replayed batch carries the deduplication token of its first attempt (see sink.py), so ClickHouse
drops it if the first attempt had succeeded. A client that sends a request again because it did not
get the answer makes a new batch with a new token; its spans are caught here instead, by their
(TraceId, SpanId) among the spans recently made durable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any


def new_token() -> bytes:
    """A batch's identity, kept with it in the spool: the same token on every attempt."""
    return os.urandom(16)


class RecentSpans:
    """The ids of the last `capacity` spans made durable (stored or spooled), at least `capacity // 2`.

    Two generations of hashed ids: when the newer one fills half the capacity, the older one is
    dropped. A 64-bit hash per span keeps it to about 60 bytes a span; a collision would drop a span
    (with a million ids remembered, about one chance in 10^13 per span). Spans without both ids are
    never treated as duplicates of each other. Used by the writer thread only.
    """

    def __init__(self, capacity: int) -> None:
        self._half = max(1, capacity // 2)
        self._current: set[int] = set()
        self._previous: set[int] = set()

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def fresh(self, rows: list[list[Any]]) -> list[list[Any]]:
        """`rows` without the spans seen recently or earlier in `rows` (row[1] TraceId, row[2] SpanId)."""
        current, previous = self._current, self._previous
        seen: set[int] = set()
        kept = []
        for row in rows:
            trace_id, span_id = row[1], row[2]
            if trace_id and span_id:
                key = hash((trace_id, span_id))
                if key in seen or key in current or key in previous:
                    continue
                seen.add(key)
            kept.append(row)
        return kept

    def remember(self, rows: list[list[Any]]) -> None:
        self.remember_ids((row[1], row[2]) for row in rows)

    def remember_ids(self, ids: Iterable[tuple[str, str]]) -> None:
        current = self._current
        for trace_id, span_id in ids:
            if trace_id and span_id:
                current.add(hash((trace_id, span_id)))
                if len(current) >= self._half:
                    self._previous, self._current = current, set()
                    current = self._current
