"""Per-call overhead of spancost, measured side by side in one process.

The real openai and anthropic SDKs talk to an `httpx2.MockTransport` (no network); spans go through
a `BatchSpanProcessor` to an exporter that drops them. The machine's speed drifts more than the
overhead between runs and even within one, so the script alternates short blocks: calls without
spancost, calls with it, and a *floor* (starting and ending a bare span with 20 attributes). It
reports the overhead per call (median of the paired block differences) as microseconds and as a
multiple of the floor measured in the same run.

    .venv/bin/python benchmarks/overhead.py [--blocks 40] [--calls 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import anthropic
import httpx2
import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import spancost

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 812,
        "completion_tokens": 64,
        "total_tokens": 876,
        "prompt_tokens_details": {"cached_tokens": 512},
    },
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 300,
        "output_tokens": 64,
        "cache_read_input_tokens": 512,
        "cache_creation_input_tokens": 0,
    },
}


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _transport() -> httpx2.MockTransport:
    chat = httpx2.Response(200, json=CHAT).content
    message = httpx2.Response(200, json=MESSAGE).content
    headers = {"content-type": "application/json"}

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = chat if request.url.path.endswith("/chat/completions") else message
        return httpx2.Response(200, headers=headers, content=body)

    return httpx2.MockTransport(handler)


def _block(func: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        func()
    return (time.perf_counter_ns() - start) / calls / 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=1 << 16))
    trace.set_tracer_provider(provider)
    floor_tracer = provider.get_tracer("floor")
    floor_attributes = {f"attribute.{i}": f"value-{i}" for i in range(20)}

    transport = _transport()
    oai = openai.OpenAI(api_key="k", max_retries=0, http_client=httpx2.Client(transport=transport))
    ant = anthropic.Anthropic(api_key="k", max_retries=0, http_client=httpx2.Client(transport=transport))
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]

    def openai_call() -> None:
        oai.chat.completions.create(model="gpt-4o-mini", messages=messages)

    def anthropic_call() -> None:
        ant.messages.create(
            model="claude-sonnet-4-5", max_tokens=100, system="You are terse.", messages=messages[1:]
        )

    def floor() -> None:
        floor_tracer.start_span("floor", attributes=floor_attributes).end()

    tags = spancost.tags(prompt="bench", user_id="u-1", workspace_id="acme", feature="bench")
    cases = {"openai chat": openai_call, "anthropic messages (on top of the SDK's own span)": anthropic_call}
    results: dict[str, list[float]] = {name: [] for name in cases}
    floors: list[float] = []
    for func in (*cases.values(), floor):  # warm up imports, caches, the price table
        for _ in range(50):
            func()
    rng = random.Random(0)
    for _ in range(args.blocks):
        for name, func in cases.items():
            order = [False, True]
            rng.shuffle(order)
            timings = {}
            for instrumented in order:
                if instrumented:
                    spancost.instrument(tracer_provider=provider)
                    with tags:
                        timings[True] = _block(func, args.calls)
                    spancost.uninstrument()
                else:
                    timings[False] = _block(func, args.calls)
            results[name].append(timings[True] - timings[False])
        floors.append(_block(floor, args.calls))
    provider.shutdown()

    floor_us = statistics.median(floors)
    print(f"floor (bare span, 20 attributes): {floor_us:.1f} µs; {args.blocks} blocks × {args.calls} calls")
    print(f"{'case':<52} {'overhead µs/call':>17} {'× floor':>8}")
    for name, diffs in results.items():
        overhead = statistics.median(diffs)
        print(f"{name:<52} {overhead:>17.1f} {overhead / floor_us:>8.2f}")


if __name__ == "__main__":
    main()
