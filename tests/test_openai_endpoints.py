"""Azure OpenAI and OpenAI-compatible servers: the provider is named from the host, Azure's deployment is
the request model while pricing follows the response model, and stream usage is asked for only where
the host is known to accept `stream_options`."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_openai_traffic import (
    MESSAGES,
    ChatServer,
    client_for,
    one_span,
    run,
    streamed_attributes,
    uninstrumented,
)

from spancost.instrumentation.openai import provider_for_host

AZURE_ENDPOINT = "https://contoso.openai.azure.com"
AZURE_MODEL = "gpt-4o-2024-08-06"
# CHAT_USAGE on gpt-4o: 176 × $2.50/M + 1024 cached × $1.25/M + 40 × $10/M = $0.00044 + $0.00128 + $0.0004
AZURE_COST = 0.00212


@pytest.mark.parametrize(
    ("host", "port", "provider"),
    [
        pytest.param("api.openai.com", 443, "openai", id="openai"),
        pytest.param("eu.api.openai.com", 443, "openai", id="openai-data-residency"),
        pytest.param("contoso.openai.azure.com", 443, "azure.ai.openai", id="azure-openai"),
        pytest.param("contoso.cognitiveservices.azure.com", 443, "azure.ai.openai", id="azure-cognitive"),
        pytest.param("contoso.services.ai.azure.com", 443, "azure.ai.openai", id="azure-ai-foundry"),
        pytest.param("api.groq.com", 443, "groq", id="groq"),
        pytest.param("api.together.xyz", 443, "together_ai", id="together"),
        pytest.param("api.deepseek.com", 443, "deepseek", id="deepseek"),
        pytest.param("openrouter.ai", 443, "openrouter", id="openrouter"),
        pytest.param("bedrock-runtime.us-east-1.amazonaws.com", 443, "aws.bedrock", id="bedrock-runtime"),
        pytest.param("bedrock-mantle.us-east-1.api.aws", 443, "aws.bedrock", id="bedrock-mantle"),
        pytest.param("us-central1-aiplatform.googleapis.com", 443, "gcp.vertex_ai", id="vertex-regional"),
        pytest.param("aiplatform.googleapis.com", 443, "gcp.vertex_ai", id="vertex-global"),
        pytest.param("localhost", 11434, "ollama", id="ollama"),
        pytest.param("127.0.0.1", 8000, "vllm", id="vllm"),
        pytest.param("localhost", 1234, "lm_studio", id="lm-studio"),
        pytest.param("::1", 8080, "openai", id="other-local-server"),
        pytest.param("llm.internal.example", 11434, "openai", id="unknown-remote-host"),
        pytest.param("notopenrouter.ai", 443, "openai", id="suffix-is-not-a-subdomain"),
        pytest.param(None, None, "openai", id="no-host"),
    ],
)
def test_provider_is_named_from_the_host(host: str | None, port: int | None, provider: str) -> None:
    assert provider_for_host(host, port) == provider


def azure_client(mode: str, handler: Any, **kwargs: Any) -> Any:
    http = httpx2.AsyncClient if mode == "async" else httpx2.Client
    cls = openai.AsyncAzureOpenAI if mode == "async" else openai.AzureOpenAI
    kwargs.setdefault("api_version", "2024-10-21")
    return cls(
        azure_endpoint=AZURE_ENDPOINT,
        api_key="test_azure_api_key",
        max_retries=0,
        http_client=http(transport=httpx2.MockTransport(handler)),
        **kwargs,
    )


def chat(mode: str, client: Any, **kwargs: Any) -> Any:
    if mode == "sync":
        result = client.chat.completions.create(messages=MESSAGES, **kwargs)
        return list(result) if kwargs.get("stream") else result

    async def awaited() -> Any:
        result = await client.chat.completions.create(messages=MESSAGES, **kwargs)
        return [chunk async for chunk in result] if kwargs.get("stream") else result

    return run(awaited())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_azure_deployment_is_the_request_model_and_the_response_model_prices(
    mode: str, instrumented: InMemorySpanExporter
) -> None:
    """Deployment `support-bot` serves gpt-4o-2024-08-06: priced as gpt-4o, $0.00212 (see AZURE_COST)."""
    server = ChatServer(model=AZURE_MODEL)
    chat(mode, azure_client(mode, server), model="support-bot")

    assert server.requests[0].url.path == "/openai/deployments/support-bot/chat/completions"
    span = one_span(instrumented)
    assert span.name == "chat support-bot"
    attributes = span.attributes
    assert attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert attributes["server.address"] == "contoso.openai.azure.com"
    assert (attributes["gen_ai.request.model"], attributes["gen_ai.response.model"]) == (
        "support-bot",
        AZURE_MODEL,
    )
    assert attributes["spancost.price.key"] == "openai/gpt-4o"
    assert attributes["gen_ai.usage.cost.amount"] == AZURE_COST
    assert "test_azure_api_key" not in str(dict(attributes))


def test_azure_client_bound_to_a_deployment_names_it_whatever_the_model_argument(
    instrumented: InMemorySpanExporter,
) -> None:
    server = ChatServer(model=AZURE_MODEL)
    chat("sync", azure_client("sync", server, azure_deployment="support-bot"), model="gpt-4o")

    assert server.requests[0].url.path == "/openai/deployments/support-bot/chat/completions"
    attributes = one_span(instrumented).attributes
    assert (attributes["gen_ai.request.model"], attributes["gen_ai.response.model"]) == (
        "support-bot",
        AZURE_MODEL,
    )


@pytest.mark.parametrize(
    ("api_version", "asked"),
    [
        pytest.param("2024-10-21", True, id="ga-2024-10-21"),
        pytest.param("2024-09-01-preview", True, id="preview-2024-09-01"),
        pytest.param("2025-04-01-preview", True, id="preview-2025"),
        pytest.param("2024-06-01", False, id="ga-2024-06-01-rejects-stream-options"),
        pytest.param("2024-08-01-preview", False, id="preview-2024-08-01-rejects-stream-options"),
    ],
)
def test_azure_stream_asks_for_usage_only_on_api_versions_that_accept_it(
    api_version: str, asked: bool, instrumented: InMemorySpanExporter
) -> None:
    server = ChatServer(model=AZURE_MODEL)
    with uninstrumented():
        expected = chat(
            "sync", azure_client("sync", server, api_version=api_version), model="bot", stream=True
        )
    chunks = chat("sync", azure_client("sync", server, api_version=api_version), model="bot", stream=True)

    assert [c.model_dump() for c in chunks] == [c.model_dump() for c in expected]
    assert ("stream_options" in server.body()) is asked
    attributes = streamed_attributes(one_span(instrumented))
    assert attributes.get("gen_ai.usage.cost.amount") == (AZURE_COST if asked else None)


def test_azure_responses_call_names_the_deployment_from_its_model_argument(
    instrumented: InMemorySpanExporter,
) -> None:
    """/responses is no deployment route on Azure: the body's model is the deployment."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/openai/responses"
        body = {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "model": AZURE_MODEL,
            "status": "completed",
        }
        usage = {
            "input_tokens": 1200,
            "input_tokens_details": {"cached_tokens": 1024},
            "output_tokens": 40,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 1240,
        }
        return httpx2.Response(200, json={**body, "output": [], "usage": usage})

    azure_client("sync", handler, api_version="2025-04-01-preview").responses.create(
        model="support-bot", input="hi"
    )
    attributes = one_span(instrumented).attributes
    assert (attributes["gen_ai.request.model"], attributes["gen_ai.response.model"]) == (
        "support-bot",
        AZURE_MODEL,
    )
    assert attributes["gen_ai.usage.cost.amount"] == AZURE_COST


@pytest.mark.parametrize(
    ("base_url", "provider", "asked"),
    [
        pytest.param("https://api.openai.com/v1", "openai", True, id="openai"),
        pytest.param("https://eu.api.openai.com/v1", "openai", True, id="openai-eu"),
        pytest.param("http://localhost:11434/v1", "ollama", False, id="ollama"),
        pytest.param("http://localhost:8000/v1", "vllm", False, id="vllm"),
        pytest.param("https://api.groq.com/openai/v1", "groq", False, id="groq"),
        pytest.param("https://gateway.example.com/v1", "openai", False, id="unknown-gateway"),
    ],
)
def test_compatible_servers_are_named_and_asked_for_usage_only_when_known_to_accept(
    base_url: str, provider: str, asked: bool, instrumented: InMemorySpanExporter
) -> None:
    server = ChatServer(model="llama3.2")
    chunks = chat("sync", client_for("sync", server, base_url=base_url), model="llama3.2", stream=True)

    assert all(chunk.choices for chunk in chunks)
    assert ("stream_options" in server.body()) is asked
    attributes = streamed_attributes(one_span(instrumented))
    assert attributes["gen_ai.provider.name"] == provider
    assert attributes["server.address"] == httpx2.URL(base_url).host
    assert attributes.get("gen_ai.usage.input_tokens") == (1200 if asked else None)
    if asked:
        assert attributes["spancost.cost.status"] == "unpriced", "llama3.2 has no price: unpriced, never $0"
