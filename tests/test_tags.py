"""Attribution tags follow the code: nested blocks, threads copying the context, asyncio tasks, generators."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spancost
from spancost.instrumentation import current_tags

tracer = trace.get_tracer("tests.tags")


def _span_tags(exporter: InMemorySpanExporter) -> dict[str, dict[str, str]]:
    return {
        s.name: {k: v for k, v in s.attributes.items() if k.startswith("spancost.") or k == "user.id"}
        for s in exporter.get_finished_spans()
    }


def test_nested_tags_merge_inner_wins_and_unwind(instrumented: InMemorySpanExporter) -> None:
    with spancost.tags(user_id="u1", workspace_id="acme", feature="search"):
        with spancost.tags(feature="rerank", prompt="rerank-v2"):
            tracer.start_span("inner").end()
        tracer.start_span("outer").end()
    tracer.start_span("after").end()
    tags = _span_tags(instrumented)
    assert tags["inner"] == {
        "user.id": "u1",
        "spancost.workspace.id": "acme",
        "spancost.feature": "rerank",
        "spancost.prompt.name": "rerank-v2",
    }
    assert tags["outer"] == {"user.id": "u1", "spancost.workspace.id": "acme", "spancost.feature": "search"}
    assert tags["after"] == {}


def test_threads_that_copy_the_context_keep_the_tags(instrumented: InMemorySpanExporter) -> None:
    def work(name: str) -> None:
        tracer.start_span(name).end()

    with spancost.tags(workspace_id="globex"), ThreadPoolExecutor(2) as pool:
        context = contextvars.copy_context()
        pool.submit(context.run, work, "copied").result()
        pool.submit(work, "not-copied").result()
    tags = _span_tags(instrumented)
    assert tags["copied"] == {"spancost.workspace.id": "globex"}
    assert tags["not-copied"] == {}


def test_asyncio_tasks_inherit_and_isolate_tags(instrumented: InMemorySpanExporter) -> None:
    async def call(name: str, user: str) -> None:
        with spancost.tags(user_id=user):
            await asyncio.sleep(0)
            tracer.start_span(name).end()

    async def main() -> None:
        with spancost.tags(feature="chat"):
            await asyncio.gather(call("a", "ua"), call("b", "ub"), asyncio.create_task(call("c", "uc")))

    asyncio.run(main())
    tags = _span_tags(instrumented)
    for name in "abc":
        assert tags[name] == {"spancost.feature": "chat", "user.id": f"u{name}"}


def test_decorator_on_functions_coroutines_and_generators(instrumented: InMemorySpanExporter) -> None:
    @spancost.tags(prompt="plain")
    def plain() -> str:
        tracer.start_span("plain").end()
        return "ok"

    @spancost.tags(prompt="coro")
    async def coro() -> str:
        await asyncio.sleep(0)
        tracer.start_span("coro").end()
        return "ok"

    @spancost.tags(prompt="gen")
    def gen():
        tracer.start_span("gen-1").end()
        received = yield 1
        tracer.start_span(f"gen-{received}").end()
        yield 3

    @spancost.tags(prompt="agen")
    async def agen():
        tracer.start_span("agen").end()
        yield 1

    assert plain() == "ok"
    assert asyncio.run(coro()) == "ok"
    iterator = gen()
    assert next(iterator) == 1
    # Between steps the caller's code is outside the generator and must not carry its tags.
    assert current_tags() == {}
    assert iterator.send(2) == 3

    async def drain() -> list[int]:
        return [item async for item in agen()]

    assert asyncio.run(drain()) == [1]
    tags = _span_tags(instrumented)
    for name, prompt in (
        ("plain", "plain"),
        ("coro", "coro"),
        ("gen-1", "gen"),
        ("gen-2", "gen"),
        ("agen", "agen"),
    ):
        assert tags[name] == {"spancost.prompt.name": prompt}


def test_generator_decorator_forwards_throw_and_close() -> None:
    seen = []

    @spancost.tags(prompt="gen")
    def gen():
        try:
            yield 1
        except KeyError:
            seen.append(dict(current_tags()))
            yield 2
        finally:
            seen.append("closed")

    iterator = gen()
    next(iterator)
    assert iterator.throw(KeyError("x")) == 2
    iterator.close()
    assert seen == [{"spancost.prompt.name": "gen"}, "closed"]


def test_unknown_tag_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="unknown tag\\(s\\) workspace; known tags: prompt"):
        spancost.tags(workspace="acme")
