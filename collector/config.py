"""The receivers' settings: one dataclass, every default here, `validate()` listing every problem."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

AUTH_TOKEN_ENV = "SPANCOST_AUTH_TOKEN"
"""The environment variable `--auth-token` falls back to."""

MIB = 1024 * 1024


class Secret(str):
    """A string that does not show itself in a repr (configs get logged and printed)."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class ReceiverConfig:
    """How `spancost serve` receives OTLP."""

    host: str = "127.0.0.1"
    """Interface both receivers listen on; 0.0.0.0 to accept other hosts (a container needs it).
    Default: this host only, as the upstream collector does."""
    http_port: int | None = 4318
    """OTLP/HTTP port (0: any free port; None: no HTTP receiver). Default 4318."""
    grpc_port: int | None = 4317
    """OTLP/gRPC port (0: any free port; None: no gRPC receiver). Default 4317."""
    auth_token: Secret | None = None
    """Bearer token every export must carry (`Authorization: Bearer ...`); None: no authentication.
    Default: SPANCOST_AUTH_TOKEN when `from_env` builds the config."""
    max_body_bytes: int = 16 * MIB
    """Largest request body, after decompression too (413 / RESOURCE_EXHAUSTED above). Default 16 MiB."""
    max_attribute_bytes: int = 64 * 1024
    """Longer attribute values (and span names, status messages) are cut to this many bytes of UTF-8
    and listed in `spancost.truncated`. Default 64 KiB."""
    submit_timeout_s: float = 10.0
    """How long a request waits for the pipeline before the client is told to retry. Default 10 s, the
    OTLP exporters' own timeout."""
    max_concurrent_requests: int = 64
    """Requests decoded or waiting on the pipeline at once; more are refused with 503 /
    RESOURCE_EXHAUSTED, which bounds memory under overload. Default 64."""
    grpc_workers: int = 16
    """Threads serving gRPC calls. Default 16."""
    price_at_ingest: bool = True
    """Price GenAI spans that arrive without a cost. Default on."""
    capture_content: bool | None = None
    """Keep prompt and completion text that other instrumentations put on model-call spans. Default:
    what OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT says (off unless set)."""
    retry_after_s: float = 5.0
    """What an overloaded or unavailable answer tells clients to wait when the pipeline names no time."""

    @classmethod
    def from_env(cls, **overrides: Any) -> ReceiverConfig:
        """The defaults, with the token from SPANCOST_AUTH_TOKEN, then `overrides` (None values skipped)."""
        token = os.environ.get(AUTH_TOKEN_ENV) or None
        config = cls(auth_token=Secret(token) if token else None)
        return config.with_(**overrides)

    def with_(self, **changes: Any) -> ReceiverConfig:
        """A copy with `changes` (None values skipped, so CLI options left unset keep the defaults)."""
        changes = {key: value for key, value in changes.items() if value is not None}
        if isinstance(changes.get("auth_token"), str):
            changes["auth_token"] = Secret(changes["auth_token"])
        return replace(self, **changes)

    def wants_content(self) -> bool:
        if self.capture_content is not None:
            return self.capture_content
        from spancost.instrumentation._inference import capture_content

        return capture_content()

    def validate(self) -> list[str]:
        """Every problem with the settings, each naming the setting and what would be right."""
        problems = []
        if not self.host or any(c.isspace() for c in self.host):
            problems.append(f"host {self.host!r}: give an interface address or name, such as 127.0.0.1")
        for name in ("http_port", "grpc_port"):
            port = getattr(self, name)
            if port is not None and not 0 <= port <= 65535:
                problems.append(f"{name} {port}: must be 0 (any free port) to 65535")
        if self.http_port is None and self.grpc_port is None:
            problems.append("http_port and grpc_port are both off: enable at least one receiver")
        if self.http_port and self.http_port == self.grpc_port:
            problems.append(f"http_port and grpc_port are both {self.http_port}: give each its own port")
        if self.auth_token is not None and (
            not self.auth_token
            or not self.auth_token.isascii()
            or not self.auth_token.isprintable()
            or " " in self.auth_token
        ):
            problems.append("auth_token: must be non-empty printable ASCII without spaces")
        if not 1024 <= self.max_body_bytes <= 2**31 - 1:
            problems.append(f"max_body_bytes {self.max_body_bytes}: must be 1024 to 2147483647")
        if not 1024 <= self.max_attribute_bytes <= self.max_body_bytes:
            problems.append(f"max_attribute_bytes {self.max_attribute_bytes}: must be 1024 to max_body_bytes")
        if not self.submit_timeout_s > 0:
            problems.append(f"submit_timeout_s {self.submit_timeout_s}: must be more than 0")
        if self.max_concurrent_requests < 1:
            problems.append(f"max_concurrent_requests {self.max_concurrent_requests}: must be 1 or more")
        if self.grpc_workers < 1:
            problems.append(f"grpc_workers {self.grpc_workers}: must be 1 or more")
        if not self.retry_after_s >= 0:
            problems.append(f"retry_after_s {self.retry_after_s}: must be 0 or more")
        return problems
