"""`opentelemetry-instrument python app.py` enables spancost with no code change (entry points)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

APP = textwrap.dedent("""
    import httpx2, openai, anthropic

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
    openai.OpenAI(api_key="k", http_client=httpx2.Client(transport=transport)).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    anthropic.Anthropic(api_key="k", http_client=httpx2.Client(transport=transport)).messages.create(
        model="claude-haiku-4-5", max_tokens=200, messages=[{"role": "user", "content": "hello"}])
""")


def test_instrumentors_are_registered_under_their_own_names() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="opentelemetry_instrumentor")}
    assert names["spancost_openai"] == "spancost.instrumentation.openai:OpenAIInstrumentor"
    assert names["spancost_anthropic"] == "spancost.instrumentation.anthropic:AnthropicInstrumentor"


def _spans(stdout: str) -> list[dict]:
    decoder = json.JSONDecoder()
    spans, position = [], 0
    while (start := stdout.find("{", position)) != -1:
        span, position = decoder.raw_decode(stdout, start)
        spans.append(span)
    return spans


def test_opentelemetry_instrument_prices_both_sdks(tmp_path: Path) -> None:
    """gpt-4o-mini 1000 × 0.15 + 100 × 0.60 = $0.00021; claude-haiku-4-5 1000 × 1 + 100 × 5 = $0.0015."""
    app = tmp_path / "app.py"
    app.write_text(APP)
    command = Path(sys.executable).parent / "opentelemetry-instrument"
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": "auto-app",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    done = subprocess.run(
        [str(command), sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    spans = [s for s in _spans(done.stdout) if s["attributes"].get("gen_ai.operation.name") == "chat"]
    assert len(spans) == 2
    by_model = {s["attributes"]["gen_ai.request.model"]: s for s in spans}
    assert by_model["gpt-4o-mini"]["attributes"]["gen_ai.usage.cost.amount"] == 0.00021
    assert by_model["claude-haiku-4-5"]["attributes"]["gen_ai.usage.cost.amount"] == 0.0015
    assert by_model["claude-haiku-4-5"]["name"] == "anthropic.messages.create"
    assert {s["resource"]["attributes"]["service.name"] for s in spans} == {"auto-app"}
