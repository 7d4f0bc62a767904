"""Agent runs and cascading calls: agent/workflow/tool spans, cost roll-up, evals, duplicates, metrics."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx2
import pytest
from conftest import openai_client
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import spancost
from spancost.instrumentation.processor import SpancostSpanProcessor
from spancost.instrumentation.tracking import Rollups

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
}
# gpt-4o-mini: 1000 × $0.15/M + 100 × $0.60/M = $0.00015 + $0.00006 = $0.00021 per call.
CALL_COST = 0.00021
MESSAGES = [{"role": "user", "content": "hi"}]


def _client():
    # Every response has an id of its own, as a provider's do (spancost tells calls apart by it).
    return openai_client(
        lambda request: httpx2.Response(200, json={**CHAT, "id": f"chatcmpl-{uuid.uuid4().hex}"})
    )


def _by_name(exporter: InMemorySpanExporter) -> dict[str, list]:
    spans: dict[str, list] = {}
    for span in exporter.get_finished_spans():
        spans.setdefault(span.name, []).append(span)
    return spans


def test_agent_span_rolls_up_its_calls(instrumented: InMemorySpanExporter) -> None:
    client = _client()
    with spancost.agent("planner") as span:
        assert span.is_recording()
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    spans = _by_name(instrumented)
    (agent,) = spans["invoke_agent planner"]
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "planner"
    assert agent.attributes["spancost.rollup.cost"] == pytest.approx(3 * CALL_COST)
    assert Decimal(repr(agent.attributes["spancost.rollup.cost"])) == Decimal("0.00063")
    assert agent.attributes["spancost.rollup.llm_calls"] == 3
    assert agent.attributes["spancost.rollup.input_tokens"] == 3000
    assert agent.attributes["spancost.rollup.output_tokens"] == 300
    assert "gen_ai.usage.cost.amount" not in agent.attributes, (
        "cost only on inference spans: sums never double"
    )
    for call in spans["chat gpt-4o-mini"]:
        assert call.parent.span_id == agent.context.span_id


def test_nested_agents_count_each_call_once(instrumented: InMemorySpanExporter) -> None:
    client = _client()
    with spancost.workflow("support-ticket"), spancost.agent("outer"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with spancost.agent("inner"):
            with spancost.tool("search"):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    spans = _by_name(instrumented)
    calls = {name: spans[name][0].attributes.get("spancost.rollup.llm_calls") for name in spans}
    assert calls["invoke_workflow support-ticket"] == 3
    assert calls["invoke_agent outer"] == 3
    assert calls["invoke_agent inner"] == 2
    assert calls["execute_tool search"] is None, "tools are not roll-up spans"
    assert spans["invoke_workflow support-ticket"][0].attributes["gen_ai.workflow.name"] == "support-ticket"
    assert spans["execute_tool search"][0].attributes["gen_ai.tool.name"] == "search"


def test_concurrent_children_in_threads_and_tasks_all_roll_up(instrumented: InMemorySpanExporter) -> None:
    client = _client()
    tracer = trace.get_tracer("another-emitter")

    async def emitted_call() -> None:
        # A model call span from another instrumentation, in its own asyncio task.
        await asyncio.sleep(0)
        tracer.start_span(
            "chat gpt-4o-mini",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
            },
        ).end()

    async def tasks() -> None:
        await asyncio.gather(*(emitted_call() for _ in range(5)))

    with spancost.agent("fan-out"), ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(
                contextvars.copy_context().run,
                client.chat.completions.create,
                model="gpt-4o-mini",
                messages=MESSAGES,
            )
            for _ in range(8)
        ]
        for future in futures:
            future.result()
        asyncio.run(tasks())
    (agent,) = _by_name(instrumented)["invoke_agent fan-out"]
    assert agent.attributes["spancost.rollup.llm_calls"] == 13
    assert Decimal(repr(agent.attributes["spancost.rollup.cost"])) == Decimal("0.00273")


def test_unpriced_calls_are_counted_but_not_costed(instrumented: InMemorySpanExporter) -> None:
    body = {**CHAT, "model": "acme-ft-2"}
    client = openai_client(lambda request: httpx2.Response(200, json=body))
    with spancost.agent("mixed"):
        client.chat.completions.create(model="acme-ft-2", messages=MESSAGES)
        _client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (agent,) = _by_name(instrumented)["invoke_agent mixed"]
    assert agent.attributes["spancost.rollup.llm_calls"] == 2
    assert agent.attributes["spancost.rollup.unpriced_calls"] == 1
    assert agent.attributes["spancost.rollup.cost"] == CALL_COST


class Pipeline:
    def __init__(self) -> None:
        self.client = _client()

    @spancost.agent("method-agent")
    def answer(self) -> str:
        self.client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return "answer"


def test_decorators_on_functions_methods_coroutines_and_generators(
    instrumented: InMemorySpanExporter,
) -> None:
    client = _client()

    @spancost.tool("lookup")
    async def lookup() -> int:
        await asyncio.sleep(0)
        return 7

    @spancost.agent("streamer")
    def streamer():
        for _ in range(2):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            yield "step"

    @spancost.workflow("async-steps")
    async def async_steps():
        yield await lookup()

    assert Pipeline().answer() == "answer"
    assert asyncio.run(lookup()) == 7
    assert list(streamer()) == ["step", "step"]

    async def drain() -> list[int]:
        return [item async for item in async_steps()]

    assert asyncio.run(drain()) == [7]
    spans = _by_name(instrumented)
    assert spans["invoke_agent method-agent"][0].attributes["spancost.rollup.llm_calls"] == 1
    (generator_span,) = spans["invoke_agent streamer"]
    assert generator_span.attributes["spancost.rollup.llm_calls"] == 2, "one span over the generator's life"
    workflow_span = spans["invoke_workflow async-steps"][0]
    nested_tool = [s for s in spans["execute_tool lookup"] if s.parent is not None]
    assert nested_tool[0].parent.span_id == workflow_span.context.span_id


def test_a_failing_agent_records_the_error_and_raises_it_unchanged(
    instrumented: InMemorySpanExporter,
) -> None:
    error = KeyError("missing")

    @spancost.agent("fragile")
    def fragile() -> None:
        raise error

    with pytest.raises(KeyError) as raised:
        fragile()
    assert raised.value is error
    (span,) = _by_name(instrumented)["invoke_agent fragile"]
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "KeyError"


def test_tags_and_run_id_reach_agent_runs_and_evals_attach(instrumented: InMemorySpanExporter) -> None:
    with spancost.run("golden-2026-12-01"), spancost.tags(workspace_id="acme"), spancost.agent("graded"):
        _client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert spancost.record_eval(passed=True, score=0.92, name="exact-match") is True
    assert spancost.record_eval(passed=False) is False, "no span in progress: nothing to attach to"
    spans = _by_name(instrumented)
    (agent,) = spans["invoke_agent graded"]
    assert agent.attributes["spancost.run.id"] == "golden-2026-12-01"
    assert agent.attributes["spancost.workspace.id"] == "acme"
    assert (agent.attributes["spancost.eval.passed"], agent.attributes["spancost.eval.score"]) == (True, 0.92)
    assert agent.attributes["spancost.eval.name"] == "exact-match"
    assert spans["chat gpt-4o-mini"][0].attributes["spancost.run.id"] == "golden-2026-12-01"


def test_roll_up_state_is_bounded_and_dropped_with_its_trace() -> None:
    rollups = Rollups(limit=100)
    rollups.started(1, None, trace_id=7, rolls_up=True)
    for span_id in range(2, 1002):  # children that never end
        rollups.started(span_id, 1, trace_id=7, rolls_up=False)
    assert len(rollups) == 100
    rollups.started(5000, None, trace_id=8, rolls_up=True)
    rollups.started(5001, 5000, trace_id=8, rolls_up=False)  # abandoned: never ends
    totals = rollups.ended(5000)
    assert totals is not None
    assert all(rollups.ended(span_id) is None for span_id in (5000, 5001)), "the run's trace is forgotten"


def test_roll_up_memory_does_not_grow_over_many_runs(
    instrumented: InMemorySpanExporter, tracer_provider
) -> None:
    from spancost.instrumentation.processor import installed_processor

    stage = installed_processor(tracer_provider)
    client = _client()
    for _ in range(200):
        with spancost.agent("loop"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(stage._rollups) == 0
    assert len(stage._open_calls) == 0


# --- two instrumentations, one call ---------------------------------------------------------------


def test_inside_another_instrumentations_call_span_spancost_adds_none(
    instrumented: InMemorySpanExporter,
) -> None:
    """OpenLLMetry-style: another wrapper outside spancost's opens the call span; it is the one priced."""
    tracer = trace.get_tracer("openllmetry-like")
    with tracer.start_as_current_span(
        "openai.chat",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
        },
    ) as outer:
        _client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        outer.set_attributes({"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100})
    (span,) = [
        s for s in instrumented.get_finished_spans() if s.attributes.get("gen_ai.operation.name") == "chat"
    ]
    assert span.name == "openai.chat"
    assert span.attributes["gen_ai.usage.cost.amount"] == CALL_COST


def test_a_call_span_started_inside_spancosts_is_marked_duplicate(instrumented: InMemorySpanExporter) -> None:
    """Another instrumentation inside spancost's wrapper (here at the HTTP layer) emits a second call span."""
    tracer = trace.get_tracer("nested-emitter")

    def handler(request: httpx2.Request) -> httpx2.Response:
        tracer.start_span(
            "chat gpt-4o-mini",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
            },
        ).end()
        return httpx2.Response(200, json=CHAT)

    with spancost.agent("dedupe"):
        openai_client(handler).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    exported = instrumented.get_finished_spans()
    calls = [s for s in exported if s.attributes.get("gen_ai.operation.name") == "chat"]
    duplicates = [s for s in exported if "spancost.duplicate_of" in s.attributes]
    assert len(calls) == 1, "exactly one inference span per call reaches the exporter"
    assert calls[0].attributes["gen_ai.usage.cost.amount"] == CALL_COST
    (duplicate,) = duplicates
    assert duplicate.attributes["spancost.duplicate_of"] == format(calls[0].context.span_id, "016x")
    assert not any(key.startswith("gen_ai.usage.") for key in duplicate.attributes)
    assert duplicate.parent.span_id == calls[0].context.span_id, "it stays in the trace"
    (agent,) = _by_name(instrumented)["invoke_agent dedupe"]
    assert agent.attributes["spancost.rollup.llm_calls"] == 1


# --- metrics ---------------------------------------------------------------------------------------


def test_client_metrics_have_low_cardinality_attributes_only() -> None:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(
        SpancostSpanProcessor(
            SimpleSpanProcessor(exporter), meter_provider=MeterProvider(metric_readers=[reader])
        )
    )
    tracer = provider.get_tracer("t")
    with spancost.tags(prompt="summarize", user_id="u-1", workspace_id="acme"):
        for _ in range(2):
            span = tracer.start_span(
                "chat gpt-4o-mini",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.output_tokens": 100,
                },
            )
            span.end()
    with spancost.tags(prompt="other"):  # a failed call: its duration, with the error, and no tokens
        failed = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
        tracer.start_span("chat gpt-4o-mini", attributes={**failed, "error.type": "APITimeoutError"}).end()
    assert threading.active_count() >= 1
    points = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = list(metric.data.data_points)
    cost = points["spancost.client.cost"]
    assert len(cost) == 1
    assert cost[0].value == pytest.approx(2 * CALL_COST)
    tokens = {dict(p.attributes)["gen_ai.token.type"]: p for p in points["gen_ai.client.token.usage"]}
    assert (tokens["input"].sum, tokens["output"].sum, tokens["input"].count) == (2000, 200, 2)
    durations = {
        dict(p.attributes)["spancost.prompt.name"]: p for p in points["gen_ai.client.operation.duration"]
    }
    assert durations["summarize"].count == 2
    assert "error.type" not in durations["summarize"].attributes
    assert durations["other"].count == 1
    assert durations["other"].attributes["error.type"] == "APITimeoutError"
    assert all(dict(p.attributes)["spancost.prompt.name"] == "summarize" for p in tokens.values())
    for name, data in points.items():
        for point in data:
            keys = set(point.attributes)
            assert keys <= {
                "gen_ai.operation.name",
                "gen_ai.provider.name",
                "gen_ai.request.model",
                "gen_ai.response.model",
                "spancost.prompt.name",
                "gen_ai.token.type",
                "error.type",
            }, name


# --- privacy across emitters ----------------------------------------------------------------------


def _emit_with_content(tracer) -> None:
    span = tracer.start_span(
        "openai.chat",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
            "gen_ai.input.messages": '[{"role": "user", "parts": [{"content": "secret question"}]}]',
            "gen_ai.prompt.0.content": "secret question",
            "gen_ai.completion.0.content": "secret answer",
            "http.route": "/v1/chat/completions",
        },
    )
    span.add_event("gen_ai.user.message", {"content": "secret question"})
    span.add_event("retry", {"attempt": 1})
    span.end()


def test_content_from_other_emitters_is_dropped_unless_opted_in(
    instrumented: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracer = trace.get_tracer("openllmetry-like")
    _emit_with_content(tracer)
    (span,) = instrumented.get_finished_spans()
    assert not any("secret" in str(value) for value in span.attributes.values())
    assert span.attributes["http.route"] == "/v1/chat/completions"
    assert span.attributes["gen_ai.usage.cost.amount"] == CALL_COST
    assert [event.name for event in span.events] == ["retry"]

    instrumented.clear()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    _emit_with_content(tracer)
    (span,) = instrumented.get_finished_spans()
    assert span.attributes["gen_ai.prompt.0.content"] == "secret question"
    assert [event.name for event in span.events] == ["gen_ai.user.message", "retry"]
