"""Embeddings: one priced `embeddings {model}` span per call, sync and async, plain or raw; the input is
never recorded."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from test_openai_traffic import Cassette, client_for, one_span, run, uninstrumented

from spancost.pricing import default_table

MODES = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]
RECORDED = "test_embeddings_with_dimensions"
TEXT = "This is a test for embeddings with dimensions"


def embed(mode: str, client: Any, method: str = "create", **kwargs: Any) -> Any:
    target = client.embeddings.with_raw_response if method == "raw" else client.embeddings
    kwargs = {"model": "text-embedding-3-small", "input": TEXT, "dimensions": 512, **kwargs}
    if mode == "sync":
        return target.create(**kwargs)

    async def awaited() -> Any:
        return await target.create(**kwargs)

    return run(awaited())


@pytest.mark.parametrize("mode", MODES)
def test_embeddings_call_is_one_priced_span(mode: str, instrumented: InMemorySpanExporter) -> None:
    """Recorded text-embedding-3-small call: 8 in × $0.02/M = $0.00000016; embeddings have no output."""
    with uninstrumented():
        expected = embed(mode, client_for(mode, Cassette(RECORDED)))
    response = embed(mode, client_for(mode, Cassette(RECORDED)))

    assert response.model_dump() == expected.model_dump()
    assert len(response.data[0].embedding) == 512
    span = one_span(instrumented, "embeddings")
    assert (span.name, span.kind) == ("embeddings text-embedding-3-small", SpanKind.CLIENT)
    assert dict(span.attributes) == {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "text-embedding-3-small",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.embeddings.dimension.count": 512,
        "gen_ai.response.model": "text-embedding-3-small",
        "gen_ai.usage.input_tokens": 8,
        "gen_ai.usage.output_tokens": 0,
        "gen_ai.usage.cost.amount": 0.00000016,
        "gen_ai.usage.cost.currency": "USD",
        "gen_ai.usage.cost.source": "local",
        "spancost.cost.status": "priced",
        "spancost.cost.input": 0.00000016,
        "spancost.cost.output": 0.0,
        "spancost.cost.cache_read": 0.0,
        "spancost.cost.cache_write": 0.0,
        "spancost.price.key": "openai/text-embedding-3-small",
        "spancost.price.version": default_table().version,
        "spancost.price.tier": "standard",
    }
    assert TEXT not in str(dict(span.attributes))


@pytest.mark.parametrize("mode", MODES)
def test_embeddings_with_raw_response_returns_it_decoded_as_without_spancost(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """The SDK decodes base64 embeddings in `parse()`: spancost's early parse is the caller's, cached."""
    with uninstrumented():
        expected = embed(mode, client_for(mode, Cassette(RECORDED)), "raw").parse()
    raw = embed(mode, client_for(mode, Cassette(RECORDED)), "raw")

    assert isinstance(raw, openai._legacy_response.LegacyAPIResponse)
    assert raw.parse().model_dump() == expected.model_dump()
    assert one_span(instrumented, "embeddings").attributes["gen_ai.usage.cost.amount"] == 0.00000016
