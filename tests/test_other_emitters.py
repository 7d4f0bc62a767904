"""Another instrumentation in the same process (OpenLLMetry, the real one): its spans are priced and
tagged, and a call both instrumentations see is counted once, whichever patched the SDK first.

OpenLLMetry's instrumentors live in .venv/peers/openllmetry (installed by `make test`); the check
runs in a subprocess with that directory on its path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

OPENLLMETRY = REPO / ".venv" / "peers" / "openllmetry"

APP = textwrap.dedent("""
    import json, sys
    import httpx2, openai, anthropic
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as PeerAnthropic
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as PeerOpenAI
    import spancost

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    if sys.argv[1] == "spancost-first":
        spancost.instrument()
        PeerOpenAI().instrument()
        PeerAnthropic().instrument()
    else:
        PeerOpenAI().instrument()
        PeerAnthropic().instrument()
        spancost.instrument()

    def handler(request):
        if request.url.path.endswith("/chat/completions"):
            return httpx2.Response(200, json={
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}})
        return httpx2.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 1000, "output_tokens": 100}})

    transport = httpx2.MockTransport(handler)
    with spancost.tags(prompt="both-see-it", workspace_id="acme"):
        openai.OpenAI(api_key="k", http_client=httpx2.Client(transport=transport)).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "secret prompt"}])
        anthropic.Anthropic(api_key="k", http_client=httpx2.Client(transport=transport)).messages.create(
            model="claude-haiku-4-5", max_tokens=200,
            messages=[{"role": "user", "content": "secret prompt"}])
    spans = memory.get_finished_spans()
    print(json.dumps([{"name": s.name, "scope": s.instrumentation_scope.name,
                       "attributes": dict(s.attributes)} for s in spans], default=list))
""")


@pytest.mark.parametrize("order", ["spancost-first", "openllmetry-first"])
def test_a_call_seen_by_openllmetry_and_spancost_is_one_priced_span(order: str) -> None:
    """gpt-4o-mini 1000 × 0.15 + 100 × 0.60 = $0.00021; claude-haiku-4-5 1000 × 1 + 100 × 5 = $0.0015."""
    assert OPENLLMETRY.exists(), "make test installs OpenLLMetry's instrumentors into .venv/peers/openllmetry"
    env = {**os.environ, "PYTHONPATH": str(OPENLLMETRY)}
    done = subprocess.run(
        [sys.executable, "-c", APP, order],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(OPENLLMETRY).parent,
    )
    assert done.returncode == 0, done.stderr
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    calls = [s for s in spans if s["attributes"].get("gen_ai.operation.name") == "chat"]
    costs = sorted(s["attributes"]["gen_ai.usage.cost.amount"] for s in calls)
    assert costs == [0.00021, 0.0015], (
        f"one priced inference span per call: {[(s['name'], s['scope']) for s in calls]}"
    )
    for call in calls:
        assert call["attributes"]["spancost.prompt.name"] == "both-see-it"
        assert call["attributes"]["spancost.workspace.id"] == "acme"
        assert not any("secret prompt" in str(value) for value in call["attributes"].values()), (
            "content dropped"
        )
    duplicates = [s for s in spans if "spancost.duplicate_of" in s["attributes"]]
    for duplicate in duplicates:
        assert not any(key.startswith("gen_ai.usage.") for key in duplicate["attributes"])
