"""Per-call overhead of spancost (and of peer instrumentations), measured side by side in one process.

The real openai and anthropic SDKs talk to an `httpx2.MockTransport` (no network); spans go through
a `BatchSpanProcessor` to an exporter that drops them. The machine's speed drifts more than the
overhead between runs and even within one, so the script alternates short blocks: calls without
instrumentation, calls with it, and a *floor* (starting and ending a bare span with 20 attributes).
Each overhead is the median of the paired block differences, in microseconds and as a multiple of
the floor measured in the same run.

Cases: spancost (cost and tags) on openai chat, non-streaming (also with its client metrics going
to an SDK MeterProvider) and streaming (per chunk: the difference between a 101-chunk and a 1-chunk
stream, over 100); spancost on top of the anthropic SDK's own span; a minimal hand-written wrapper
(a span with the request and usage attributes, no pricing, no tags); a bare span around each call
and nothing else (the least a span per call costs); and OpenLLMetry's openai instrumentor where it
is installed (`make test` puts it in .venv/peers/openllmetry). With --memory, also the process's
memory over many instrumented calls.

    .venv/bin/python benchmarks/overhead.py [--blocks 40] [--calls 200] [--memory 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import spancost

PEERS = Path(__file__).resolve().parents[1] / ".venv" / "peers" / "openllmetry"

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


def _sse_chat(chunks: int) -> bytes:
    """An OpenAI chat stream of `chunks` content chunks, a finish chunk and a usage chunk."""
    base = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
    }
    events = [
        {**base, "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}]}
        for _ in range(chunks)
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": CHAT["usage"]})
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def transport() -> httpx2.MockTransport:
    chat = json.dumps(CHAT).encode()
    message = json.dumps(MESSAGE).encode()
    streams = {1: _sse_chat(1), 101: _sse_chat(101)}

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/chat/completions"):
            body = json.loads(request.content)
            if body.get("stream"):
                return httpx2.Response(
                    200,
                    headers={"content-type": "text/event-stream"},
                    content=streams[int(request.headers["x-chunks"])],
                )
            return httpx2.Response(200, headers={"content-type": "application/json"}, content=chat)
        return httpx2.Response(200, headers={"content-type": "application/json"}, content=message)

    return httpx2.MockTransport(handler)


def _block(func: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        func()
    return (time.perf_counter_ns() - start) / calls / 1000


class Toggle:
    """Turns one instrumentation on and off between blocks."""

    def __init__(self, on: Callable[[], Any], off: Callable[[], Any], around: Any = None) -> None:
        self.on, self.off, self.around = on, off, around


def _wrapping_chat_create(wrapper: Callable[..., Any]) -> Toggle:
    """A hand-written wrapper of `Completions.create`, put on and taken off with wrapt."""
    from openai.resources.chat.completions import completions

    return Toggle(
        lambda: wrapt.wrap_function_wrapper(completions, "Completions.create", wrapper),
        lambda: unwrap(completions.Completions, "create"),
    )


def minimal_wrapper(tracer: trace.Tracer) -> Toggle:
    """What any instrumentation has to do at least: a span with the request and usage attributes."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = tracer.start_span(
            f"chat {kwargs.get('model')}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": kwargs.get("model"),
            },
        )
        try:
            with trace.use_span(span, end_on_exit=False):
                result = wrapped(*args, **kwargs)
            usage = result.usage
            span.set_attributes(
                {
                    "gen_ai.response.model": result.model,
                    "gen_ai.response.id": result.id,
                    "gen_ai.usage.input_tokens": usage.prompt_tokens,
                    "gen_ai.usage.output_tokens": usage.completion_tokens,
                }
            )
            return result
        finally:
            span.end()

    return _wrapping_chat_create(wrapper)


def bare_span(tracer: trace.Tracer) -> Toggle:
    """The least any instrumentation that makes a span per call does: a span with no attributes,
    current while the SDK runs, ended after it. Its overhead bounds every design of that kind."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = tracer.start_span("chat", kind=trace.SpanKind.CLIENT)
        try:
            with trace.use_span(span, end_on_exit=False):
                return wrapped(*args, **kwargs)
        finally:
            span.end()

    return _wrapping_chat_create(wrapper)


def openllmetry() -> Toggle | None:
    if not PEERS.exists():
        return None
    sys.path.insert(0, str(PEERS))
    try:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    except ImportError:
        return None
    from openai.resources.chat.completions import completions

    instrumentor = OpenAIInstrumentor()
    # Its uninstrument() leaves its wrapper on Completions.create, and each instrument() adds one
    # more: restore the SDK's own method, or the wrappers pile up block after block.
    original = vars(completions.Completions)["create"]

    def off() -> None:
        instrumentor.uninstrument()
        completions.Completions.create = original  # type: ignore[method-assign]

    return Toggle(instrumentor.instrument, off)


CASES = (
    "spancost: openai chat",
    "spancost: openai chat, metrics to an SDK MeterProvider",
    "spancost: openai chat stream, 1 chunk",
    "spancost: openai chat stream, 101 chunks",
    "spancost: anthropic messages (on the SDK's own span)",
    "minimal wrapper, no pricing: openai chat",
    "a bare span per call, nothing else: openai chat",
    "OpenLLMetry 0.62.4, no pricing: openai chat",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--memory", type=int, default=0, help="instrumented calls for the memory check")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, in this process (used by main)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(measure(args.case, args.blocks, args.calls, args.memory)))
        return
    # Each case in a process of its own: an instrumentation turned on and off leaves state behind
    # (another's wrappers, caches) that would tilt the cases measured after it.
    rows = {}
    for case in CASES:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--case",
                case,
                "--blocks",
                str(args.blocks),
                "--calls",
                str(args.calls),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rows[case] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{args.blocks} blocks × {args.calls} calls per case, each case in its own process")
    print(f"{'case':<56} {'µs/call':>9} {'floor µs':>9} {'× floor':>8}")
    for case, row in rows.items():
        if row is None:
            print(f"{case:<56} {'not installed':>9}")
            continue
        print(
            f"{case:<56} {row['overhead']:>9.1f} {row['floor']:>9.1f} {row['overhead'] / row['floor']:>8.2f}"
        )
    one, many = (
        rows["spancost: openai chat stream, 1 chunk"],
        rows["spancost: openai chat stream, 101 chunks"],
    )
    print(
        f"{'spancost: per streamed chunk (101-chunk minus 1-chunk, / 100)':<56} "
        f"{(many['overhead'] - one['overhead']) / 100:>9.2f}"
    )
    if args.memory:
        done = subprocess.run(
            [sys.executable, __file__, "--case", "memory", "--memory", str(args.memory)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(
            "memory over instrumented calls (tags on, an agent run every 10 calls):"
            " calls, traced MB, peak RSS MB"
        )
        for done_calls, traced, rss in json.loads(done.stdout.strip().splitlines()[-1]):
            print(f"  {done_calls:>8,} {traced:>8.2f} {rss:>8.1f}")


def measure(case: str, blocks: int, calls: int, memory_calls: int) -> Any:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=1 << 16))
    trace.set_tracer_provider(provider)
    floor_tracer = provider.get_tracer("floor")
    floor_attributes = {f"attribute.{i}": f"value-{i}" for i in range(20)}

    http = transport()
    oai = openai.OpenAI(api_key="k", max_retries=0, http_client=httpx2.Client(transport=http))
    ant = anthropic.Anthropic(api_key="k", max_retries=0, http_client=httpx2.Client(transport=http))
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]

    def chat() -> None:
        oai.chat.completions.create(model="gpt-4o-mini", messages=messages)

    def stream(chunks: int) -> Callable[[], None]:
        def call() -> None:
            for _ in oai.chat.completions.create(
                model="gpt-4o-mini",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"x-chunks": str(chunks)},
            ):
                pass

        return call

    def messages_call() -> None:
        ant.messages.create(
            model="claude-sonnet-4-5", max_tokens=100, system="You are terse.", messages=messages[1:]
        )

    def floor() -> None:
        floor_tracer.start_span("floor", attributes=floor_attributes).end()

    tags = spancost.tags(prompt="bench", user_id="u-1", workspace_id="acme", feature="bench")
    if case == "memory":
        return memory(memory_calls, provider, chat, tags)
    meters = None
    if "MeterProvider" in case:
        # The client metrics recorded for real (the other cases leave the global meter provider unset,
        # so the OpenTelemetry API hands spancost instruments that record nothing).
        meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    with_spancost = Toggle(
        lambda: spancost.instrument(tracer_provider=provider, meter_provider=meters),
        spancost.uninstrument,
        tags,
    )
    toggle: Toggle | None
    func: Callable[[], None] = chat
    if case in ("spancost: openai chat", "spancost: openai chat, metrics to an SDK MeterProvider"):
        toggle = with_spancost
    elif case.startswith("spancost: openai chat stream"):
        toggle, func = with_spancost, stream(101 if "101" in case else 1)
    elif case.startswith("spancost: anthropic"):
        toggle, func = with_spancost, messages_call
    elif case.startswith("minimal wrapper"):
        toggle = minimal_wrapper(provider.get_tracer("minimal"))
    elif case.startswith("a bare span"):
        toggle = bare_span(provider.get_tracer("bare"))
    else:
        toggle = openllmetry()
    if toggle is None:
        return None

    def timed(instrumented: bool) -> float:
        if not instrumented:
            return _block(func, calls)
        toggle.on()
        try:
            if toggle.around is None:
                return _block(func, calls)
            with toggle.around:
                return _block(func, calls)
        finally:
            toggle.off()

    for instrumented in (False, True, False, True):  # warm up imports, caches, the price table
        timed(instrumented)
    diffs: list[float] = []
    floors: list[float] = []
    rng = random.Random(0)
    for _ in range(blocks):
        order = [False, True]
        rng.shuffle(order)
        timings = {instrumented: timed(instrumented) for instrumented in order}
        diffs.append(timings[True] - timings[False])
        floors.append(_block(floor, calls))
    provider.shutdown()
    return {"overhead": statistics.median(diffs), "floor": statistics.median(floors)}


def memory(
    calls: int, provider: TracerProvider, chat: Callable[[], None], tags: Any
) -> list[tuple[int, float, float]]:
    """Traced allocations and peak RSS after each tenth of `calls` instrumented calls, inside tags and
    an agent run every 10 calls (so that the roll-up bookkeeping is exercised too)."""
    spancost.instrument(tracer_provider=provider)
    tracemalloc.start()
    checkpoints = []
    with tags:
        for i in range(calls):
            if i % 10 == 0:
                with spancost.agent("bench-agent"):
                    chat()
            else:
                chat()
            if (i + 1) % (calls // 10) == 0:
                provider.force_flush()
                gc.collect()
                current, _ = tracemalloc.get_traced_memory()
                rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                checkpoints.append((i + 1, current / 1e6, rss_mb))
    tracemalloc.stop()
    spancost.uninstrument()
    return checkpoints


if __name__ == "__main__":
    main()
