"""Patching the openai SDK: every method wrapped once however often spancost is installed, restored to the
very same object by `uninstrument()`, and a method an SDK version lacks is skipped rather than an error."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import openai
import pytest
import wrapt
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_openai_traffic import MESSAGES, ChatServer, ResponsesServer, client_for, run

import spancost
from spancost.instrumentation import openai as openai_patch
from spancost.instrumentation._patching import Patch
from spancost.instrumentation.openai import CHAT, PATCHES, OpenAIInstrumentor, sync_call


def _slot(patch: Patch) -> Any:
    """What the class itself holds under the method's name (no descriptor binding)."""
    return vars(getattr(importlib.import_module(patch.module), patch.owner))[patch.method]


def _one_call_per_api() -> None:
    client = client_for("sync", ChatServer())
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client_for("sync", ResponsesServer()).responses.create(model="gpt-4o-mini", input="hi")


def test_every_documented_method_is_patched() -> None:
    patched = {(p.owner, p.method) for p in OpenAIInstrumentor().patches}
    for owner in ("Completions", "AsyncCompletions", "Responses", "AsyncResponses"):
        assert {(owner, "create"), (owner, "parse"), (owner, "stream")} <= patched
    assert {("Embeddings", "create"), ("AsyncEmbeddings", "create")} <= patched
    assert len(patched) == len(PATCHES) == 14


def test_uninstrument_restores_the_sdk_and_instrumenting_twice_wraps_once(
    spans: InMemorySpanExporter,
) -> None:
    originals = {patch: _slot(patch) for patch in PATCHES}
    spancost.instrument()
    spancost.instrument()
    try:
        for patch, original in originals.items():
            wrapper = _slot(patch)
            assert isinstance(wrapper, wrapt.FunctionWrapper), patch
            assert wrapper.__wrapped__ is original, f"{patch.owner}.{patch.method} is wrapped once"
        _one_call_per_api()
        assert len(spans.get_finished_spans()) == 2, "one span per call"
    finally:
        spancost.uninstrument()
    for patch, original in originals.items():
        assert _slot(patch) is original, f"{patch.owner}.{patch.method} is the SDK's own object again"
    _one_call_per_api()
    assert len(spans.get_finished_spans()) == 2, "no span once uninstrumented"


def test_async_methods_look_the_same_to_inspect(spans: InMemorySpanExporter) -> None:
    """Frameworks ask `inspect.iscoroutinefunction` whether to await a callable: the answer stays."""

    def answers() -> list[bool]:
        client = client_for("async", ChatServer())
        methods = (
            client.chat.completions.create,
            client.chat.completions.parse,
            client.chat.completions.stream,
        )
        methods += (client.responses.create, client.responses.parse, client.embeddings.create)
        return [inspect.iscoroutinefunction(method) for method in methods]

    plain = answers()
    spancost.instrument()
    try:
        assert answers() == plain
    finally:
        spancost.uninstrument()
    assert set(plain) == {True, False}, "both kinds are compared"


def test_a_method_this_sdk_lacks_is_skipped_not_an_error(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = (
        Patch(
            "openai.resources.chat.completions.completions", "Completions", "not_in_this_sdk", sync_call(CHAT)
        ),
        Patch("openai.resources.not_in_this_sdk", "Gone", "create", sync_call(CHAT)),
    )
    monkeypatch.setattr(openai_patch, "PATCHES", PATCHES + missing)
    spancost.instrument()
    try:
        assert len(OpenAIInstrumentor().patches) == len(PATCHES)
        run_chat = client_for("sync", ChatServer()).chat.completions.create
        run_chat(model="gpt-4o-mini", messages=MESSAGES)
        assert len(spans.get_finished_spans()) == 1
    finally:
        spancost.uninstrument()
    assert not isinstance(_slot(PATCHES[0]), wrapt.FunctionWrapper)


def test_an_async_call_never_awaited_starts_no_span(instrumented: InMemorySpanExporter) -> None:
    """The async stream helper calls `create` in `.stream()` and awaits it on entry: no entry, no call."""
    server = ChatServer()

    async def never_entered() -> None:
        client_for("async", server).chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES)

    with pytest.warns(RuntimeWarning, match="never awaited"):
        run(never_entered())
    assert server.requests == []
    assert instrumented.get_finished_spans() == ()


def test_inside_another_instrumentations_call_span_a_stream_is_left_alone(
    instrumented: InMemorySpanExporter,
) -> None:
    """OpenLLMetry or the OTel instrumentor wrapped the SDK outside spancost: their span counts, and
    spancost neither adds a span nor asks the server for a usage chunk it would not be there to hide."""
    server = ChatServer()
    outer = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
    with trace.get_tracer("another-instrumentation").start_as_current_span(
        "chat gpt-4o-mini", attributes=outer
    ):
        stream = client_for("sync", server).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        chunks = list(stream)

    assert type(stream) is openai.Stream, "the SDK's own stream, not a proxy"
    assert all(chunk.choices for chunk in chunks)
    assert "stream_options" not in server.body()
    (span,) = instrumented.get_finished_spans()
    assert span.instrumentation_scope.name == "another-instrumentation"
