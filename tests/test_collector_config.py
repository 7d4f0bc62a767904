"""Receiver settings: defaults in one place, every problem reported at once, the token never shown; and
both receivers run side by side on one shared ingest."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from test_collector_http import spancost_span

from spancost.collector.config import AUTH_TOKEN_ENV, ReceiverConfig, Secret
from spancost.collector.ingest import DirectPipeline
from spancost.collector.receivers import ConfigError, Receivers


def test_the_defaults_are_the_otlp_ports_and_valid() -> None:
    config = ReceiverConfig()
    assert (config.host, config.http_port, config.grpc_port) == ("127.0.0.1", 4318, 4317)
    assert config.max_body_bytes == 16 * 1024 * 1024
    assert config.max_attribute_bytes == 64 * 1024
    assert config.auth_token is None
    assert config.validate() == []


def test_validate_lists_every_problem() -> None:
    config = ReceiverConfig(
        host="",
        http_port=70000,
        grpc_port=-1,
        auth_token=Secret("has space"),
        max_body_bytes=10,
        max_attribute_bytes=10,
        submit_timeout_s=0,
        max_concurrent_requests=0,
        grpc_workers=0,
        retry_after_s=-1,
    )
    problems = config.validate()
    for setting in (
        "host",
        "http_port 70000",
        "grpc_port -1",
        "auth_token",
        "max_body_bytes 10",
        "max_attribute_bytes 10",
        "submit_timeout_s 0",
        "max_concurrent_requests 0",
        "grpc_workers 0",
        "retry_after_s -1",
    ):
        assert any(problem.startswith(setting) for problem in problems), setting
    assert len(problems) == 10
    assert ReceiverConfig(http_port=None, grpc_port=None).validate() == [
        "http_port and grpc_port are both off: enable at least one receiver"
    ]
    with pytest.raises(ConfigError, match="http_port and grpc_port are both 9000"):
        Receivers(ReceiverConfig(http_port=9000, grpc_port=9000), pipeline=None)  # type: ignore[arg-type]


def test_the_token_comes_from_the_environment_and_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUTH_TOKEN_ENV, "from-env")
    config = ReceiverConfig.from_env(http_port=None, host="0.0.0.0")
    assert config.auth_token == "from-env"
    assert config.http_port == 4318, "options left unset keep the default"
    assert config.host == "0.0.0.0"
    assert "from-env" not in repr(config)
    assert ReceiverConfig.from_env(auth_token="from-flag").auth_token == "from-flag"
    assert "from-flag" not in repr(ReceiverConfig.from_env(auth_token="from-flag"))
    monkeypatch.delenv(AUTH_TOKEN_ENV)
    assert ReceiverConfig.from_env().auth_token is None


def test_content_capture_follows_the_standard_switch_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    assert ReceiverConfig().wants_content() is True
    assert ReceiverConfig(capture_content=False).wants_content() is False
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    assert ReceiverConfig().wants_content() is False


def test_both_receivers_share_one_ingest_and_its_metrics(store: Any) -> None:
    receivers = Receivers(
        ReceiverConfig(http_port=0, grpc_port=0), DirectPipeline(store.client, store.database)
    )
    receivers.start()
    try:
        assert receivers.http is not None
        assert receivers.grpc is not None
        exporter = GrpcExporter(endpoint=f"127.0.0.1:{receivers.grpc.port}", insecure=True, timeout=10)
        assert exporter.export([spancost_span()]) is SpanExportResult.SUCCESS
        metrics = httpx2.get(f"http://127.0.0.1:{receivers.http.port}/metrics").text.splitlines()
        assert 'spancost_receiver_requests_total{protocol="grpc",code="OK"} 1' in metrics
        assert 'spancost_receiver_spans_received_total{protocol="grpc"} 1' in metrics
    finally:
        receivers.stop(1.0)
    assert store.query("SELECT count() FROM otel_traces").single_value() == 1
