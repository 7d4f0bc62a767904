"""Pricing at ingest: what the in-process stage does on a span's end, done to spans that arrive unpriced.

Any GenAI span without a cost, whoever emitted it (OpenLLMetry, OpenLIT, the OTel genai
instrumentations, another language's SDK), is priced by `spancost.costing.cost_attributes` (the one
pricing function) at its start time; a cost already on the span is kept. Prompt and completion text
that another instrumentation put on a model-call span is removed unless the collector's operator opted
in to content, as the in-process stage does (`spancost.content`).

Attributes arrive as the strings the table stores; the pricing function reads token counts and model
names from strings as well as from typed values, and what it adds is rendered like any attribute.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from spancost import attributes as attr
from spancost._log import log_once
from spancost.collector.rows import attribute_string
from spancost.content import SPANCOST_SCOPE_PREFIX, without_content
from spancost.costing import cost_attributes, is_inference
from spancost.pricing.table import PriceTable

logger = logging.getLogger("spancost.collector")

# A span carrying none of these is not a model call, and costs one dict lookup each to skip.
_GENAI_MARKERS = (
    attr.GEN_AI_REQUEST_MODEL,
    attr.GEN_AI_RESPONSE_MODEL,
    attr.GEN_AI_USAGE_COST,
    attr.LLM_REQUEST_TYPE,
)


class IngestStage:
    """Prices GenAI spans that carry no cost and strips content from other emitters' model-call spans.

    `price`: price spans (off: content removal only). `capture_content`: keep prompt and completion
    text (the operator opted in). `table`: the price table (default: the bundled one, or
    SPANCOST_PRICES). Counts what it did in `priced` and `content_removed`.
    """

    def __init__(
        self, *, price: bool = True, capture_content: bool = False, table: PriceTable | None = None
    ) -> None:
        self.price = price
        self.capture_content = capture_content
        self.table = table
        self._lock = threading.Lock()  # the gRPC receiver converts on several threads
        self.priced = 0
        """Spans that got a cost (or were marked unpriced) here."""
        self.content_removed = 0
        """Spans whose prompt or completion text was removed here."""

    def apply(
        self, attributes: dict[str, str], events: Sequence[Any], scope_name: str, start_ns: int
    ) -> Sequence[Any] | None:
        for marker in _GENAI_MARKERS:
            if marker in attributes:
                break
        else:
            return None
        if self.price and attr.COST_STATUS not in attributes:  # spancost's own spans arrive priced
            self._price(attributes, start_ns)
        if self.capture_content or scope_name.startswith(SPANCOST_SCOPE_PREFIX):
            return None  # spancost's spans carry content only when the application opted in
        if not is_inference(attributes):
            return None
        kept = without_content(attributes, events)
        if kept is not None:
            with self._lock:
                self.content_removed += 1
        return kept

    def _price(self, attributes: dict[str, str], start_ns: int) -> None:
        try:
            extra = cost_attributes(attributes, start_ns or None, table=self.table)
        except Exception:
            # Never lose a span over its price: it is stored as it came, and the failure logged once.
            log_once(logger, "ingest.price", "spancost: could not price a span at ingest", exc_info=True)
            return
        if extra:
            with self._lock:
                self.priced += 1
            for key, value in extra.items():
                attributes[key] = attribute_string(value)
