"""What both receivers share: authentication, request → rows, self-metrics.

One `Ingest` serves both receivers of a server, so that /metrics counts what arrived over either.
"""

from __future__ import annotations

import hmac
import math
import re
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from spancost.collector.config import ReceiverConfig, Secret
from spancost.collector.ingest import IngestPipeline
from spancost.collector.otlp import Converted, to_rows
from spancost.collector.pricing import IngestStage


def bearer_matches(header: str | None, token: Secret | None) -> bool:
    """Whether an `Authorization` header carries the configured bearer token (always, with no token).

    Compared in constant time, so the answer's timing does not reveal how much of a guess was right."""
    if token is None:
        return True
    if not header:
        return False
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("utf-8"))


def retry_after_header(seconds: float) -> str:
    """`Retry-After` takes whole seconds."""
    return str(max(0, math.ceil(seconds)))


class Ingest:
    """Decoded requests → rows (priced, content removed, values cut to size), with the counters.

    Thread-safe: the gRPC receiver calls it from its worker threads, the HTTP receiver from its loop.
    """

    def __init__(self, config: ReceiverConfig, pipeline: IngestPipeline) -> None:
        self.config = config
        self.pipeline = pipeline
        self.stage = IngestStage(price=config.price_at_ingest, capture_content=config.wants_content())
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._spans: Counter[tuple[str, str]] = Counter()

    def convert(self, request: Any, protocol: str) -> Converted:
        """The rows of a decoded request (raises `DecodeError` for a malformed attribute)."""
        converted = to_rows(request, max_value_bytes=self.config.max_attribute_bytes, stage=self.stage)
        with self._lock:
            self._spans[(protocol, "received")] += len(converted.rows) + converted.rejected
            self._spans[(protocol, "rejected")] += converted.rejected
            self._spans[(protocol, "truncated_values")] += converted.truncated
        return converted

    def count_request(self, protocol: str, code: str) -> None:
        with self._lock:
            self._requests[(protocol, code)] += 1

    def healthy(self) -> bool:
        try:
            return bool(self.pipeline.healthy())
        except Exception:
            return False

    def metrics(self) -> str:
        """Self-metrics in the Prometheus text format (version 0.0.4)."""
        with self._lock:
            requests = dict(self._requests)
            spans = dict(self._spans)
        out: list[str] = []
        _family(out, "spancost_receiver_requests_total", "counter", "OTLP export requests by response code.")
        for (protocol, code), value in sorted(requests.items()):
            out.append(f'spancost_receiver_requests_total{{protocol="{protocol}",code="{code}"}} {value}')
        for what, help_text in (
            ("received", "Spans decoded from export requests."),
            ("rejected", "Spans refused at decoding (invalid ids or times), reported as partial success."),
            ("truncated_values", "Values cut to the attribute size limit."),
        ):
            name = f"spancost_receiver_spans_{what}_total"
            _family(out, name, "counter", help_text)
            for (protocol, kind), value in sorted(spans.items()):
                if kind == what:
                    out.append(f'{name}{{protocol="{protocol}"}} {value}')
        _family(out, "spancost_receiver_spans_priced_total", "counter", "Spans priced at ingest.")
        out.append(f"spancost_receiver_spans_priced_total {self.stage.priced}")
        _family(out, "spancost_receiver_content_removed_total", "counter", "Spans whose content was removed.")
        out.append(f"spancost_receiver_content_removed_total {self.stage.content_removed}")
        try:
            pipeline: Mapping[str, int] = self.pipeline.stats()
        except Exception as err:
            pipeline = {}
            out.append(f"# pipeline stats unavailable: {type(err).__name__}")
        # A pipeline that names its levels (BatchingPipeline.GAUGES) says which keys are gauges.
        gauges = getattr(self.pipeline, "GAUGES", None)
        for key, value in sorted(pipeline.items()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            base = "spancost_pipeline_" + re.sub(r"[^a-zA-Z0-9_]", "_", key).removesuffix("_total")
            counter = key not in gauges if gauges is not None else key in _PIPELINE_COUNTERS
            counter = counter or key.endswith(("_requests", "_total"))
            name = f"{base}_total" if counter else base
            _family(out, name, "counter" if counter else "gauge", f"Pipeline {key.replace('_', ' ')}.")
            out.append(f"{name} {value}")
        _family(out, "spancost_up", "gauge", "1 when the pipeline and its store are healthy.")
        out.append(f"spancost_up {int(self.healthy())}")
        return "\n".join(out) + "\n"


# Pipeline stats that only grow (spans and requests counted since start); the others (queue depth, spool
# size, store up) are gauges.
_PIPELINE_COUNTERS = frozenset({"received", "stored", "spooled", "replayed", "rejected", "deduplicated"})


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
