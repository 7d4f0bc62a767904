"""What the span processor remembers about spans still open: roll-up totals and model calls in flight.

Both are keyed by span id, bounded (the oldest entries are dropped past a limit, so spans that
never end cannot grow memory without end), and guarded by a lock (children end on other threads and
asyncio tasks). Spans outside agent runs cost one dictionary lookup.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from spancost import attributes as attr

MAX_TRACKED_SPANS = 100_000


@dataclass
class Totals:
    """The running roll-up of one open agent or workflow span."""

    cost: Decimal = Decimal(0)
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unpriced_calls: int = 0

    def attributes(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            attr.ROLLUP_COST: float(self.cost),
            attr.ROLLUP_LLM_CALLS: self.llm_calls,
            attr.ROLLUP_INPUT_TOKENS: self.input_tokens,
            attr.ROLLUP_OUTPUT_TOKENS: self.output_tokens,
        }
        if self.unpriced_calls:
            values[attr.ROLLUP_UNPRICED_CALLS] = self.unpriced_calls
        return values


class Rollups:
    """For every open span inside an agent or workflow run: the totals of its agent/workflow ancestors.

    A model call adds to every agent and workflow above it, directly: nested agents each count the
    call once, and an outer agent never adds an inner agent's totals again.
    """

    def __init__(self, limit: int = MAX_TRACKED_SPANS) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        # span id → (trace id, totals of the span's open agent/workflow ancestors, the span's own totals)
        self._spans: OrderedDict[int, tuple[int, tuple[Totals, ...], Totals | None]] = OrderedDict()
        self._by_trace: dict[int, set[int]] = {}

    def __len__(self) -> int:
        return len(self._spans)

    def started(self, span_id: int, parent_id: int | None, trace_id: int, rolls_up: bool) -> None:
        if not rolls_up and not self._spans:
            return  # no agent run open anywhere: the common case costs nothing
        with self._lock:
            parent = self._spans.get(parent_id) if parent_id else None
            targets = parent[1] if parent is not None else ()
            own = Totals() if rolls_up else None
            if own is not None:
                targets = (*targets, own)
            if not targets:
                return
            self._spans[span_id] = (trace_id, targets, own)
            self._by_trace.setdefault(trace_id, set()).add(span_id)
            if len(self._spans) > self._limit:
                self._forget(next(iter(self._spans)))

    def add_call(self, span_id: int, cost: Decimal | None, input_tokens: int, output_tokens: int) -> None:
        if not self._spans:
            return
        with self._lock:
            entry = self._forget(span_id)
            if entry is None:
                return
            for totals in entry[1]:
                totals.llm_calls += 1
                totals.input_tokens += input_tokens
                totals.output_tokens += output_tokens
                if cost is None:
                    totals.unpriced_calls += 1
                else:
                    totals.cost += cost

    def ended(self, span_id: int) -> Totals | None:
        """Forget the span; for an agent or workflow span, its totals. When the outermost run of a
        trace ends, whatever it left open in that trace is forgotten too."""
        if not self._spans:
            return None
        with self._lock:
            entry = self._forget(span_id)
            if entry is None:
                return None
            trace_id, targets, own = entry
            if own is not None and len(targets) == 1:
                for other in list(self._by_trace.get(trace_id, ())):
                    self._forget(other)
            return own

    def _forget(self, span_id: int) -> tuple[int, tuple[Totals, ...], Totals | None] | None:
        entry = self._spans.pop(span_id, None)
        if entry is not None:
            in_trace = self._by_trace.get(entry[0])
            if in_trace is not None:
                in_trace.discard(span_id)
                if not in_trace:
                    del self._by_trace[entry[0]]
        return entry


class OpenCalls:
    """Model-call spans in flight, so that a second span for the same call (started inside the
    first by another instrumentation) is recognised as a duplicate.

    No lock: a single dict operation is atomic, and an eviction racing another costs at most one
    entry forgotten early.
    """

    def __init__(self, limit: int = MAX_TRACKED_SPANS) -> None:
        self._limit = limit
        self._open: dict[int, None] = {}

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, span_id: object) -> bool:
        return span_id in self._open

    def add(self, span_id: int) -> None:
        self._open[span_id] = None
        if len(self._open) > self._limit:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del self._open[next(iter(self._open))]

    def discard(self, span_id: int) -> None:
        self._open.pop(span_id, None)


class EndedCalls:
    """Model-call spans that ended recently, by response id, to recognise a second span for the same
    call from an instrumentation that did not nest inside the first (it may not even share its trace:
    an instrumentation that does not make its span current leaves the SDK's span in a trace of its
    own). Provider response ids are unique per call; the spans must also overlap in time."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._ended: dict[str, tuple[int, int, int]] = {}

    def seen(self, span: Any, response_id: Any) -> int | None:
        """The span id of an earlier span for the same call, or None (and this one is remembered)."""
        if not isinstance(response_id, str) or not response_id:
            return None
        key = response_id
        start, end = span.start_time or 0, span.end_time or 0
        earlier = self._ended.get(key)
        if earlier is not None and earlier[0] <= end and start <= earlier[1]:
            return earlier[2]
        self._ended[key] = (start, end, span.context.span_id)
        if len(self._ended) > self._limit:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                del self._ended[next(iter(self._ended))]
        return None
