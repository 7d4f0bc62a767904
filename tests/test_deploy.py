"""docker-compose.yml, the Dockerfile and deploy/otelcol-upstream.yaml, checked by parsing them (no
container engine runs here): pinned images, a `spancost serve` command the real CLI accepts and that
points at the compose ClickHouse, ports, volumes, health checks, what the image installs, and an
upstream collector that writes spancost's own `otel_traces` table.

Compose variables are expanded as `docker compose up` does with none of them set (their defaults).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import REPO

from spancost.cli.app import serve
from spancost.collector.config import ReceiverConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
UPSTREAM_CONFIG = REPO / "deploy" / "otelcol-upstream.yaml"

# What the upstream exporter inserts into its traces table, column by column (opentelemetry-collector-
# contrib, exporter/clickhouseexporter/internal/sql_templates/traces_insert.sql), with the types its
# own DDL gives them (traces_table.sql there), as ClickHouse reports them in system.columns.
UPSTREAM_TRACE_COLUMNS = {
    "Timestamp": "DateTime64(9)",
    "TraceId": "String",
    "SpanId": "String",
    "ParentSpanId": "String",
    "TraceState": "String",
    "SpanName": "LowCardinality(String)",
    "SpanKind": "LowCardinality(String)",
    "ServiceName": "LowCardinality(String)",
    "ResourceAttributes": "Map(LowCardinality(String), String)",
    "ScopeName": "String",
    "ScopeVersion": "String",
    "SpanAttributes": "Map(LowCardinality(String), String)",
    "Duration": "UInt64",
    "StatusCode": "LowCardinality(String)",
    "StatusMessage": "String",
    "Events.Timestamp": "Array(DateTime64(9))",
    "Events.Name": "Array(LowCardinality(String))",
    "Events.Attributes": "Array(Map(LowCardinality(String), String))",
    "Links.TraceId": "Array(String)",
    "Links.SpanId": "Array(String)",
    "Links.TraceState": "Array(String)",
    "Links.Attributes": "Array(Map(LowCardinality(String), String))",
}


# --- reading the files ---------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable expansion (`${X}`, `${X:-default}`, `${X-default}`, `${X:?error}`, `$$`),
    applied to every string of a loaded file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def expand(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, operator, default = match[1] or match[4], match[2], match[3]
        current = env.get(name)
        if operator == ":-":
            return current or default
        if operator == "-":
            return default if current is None else current
        if operator in (":?", "?") and not current:
            raise AssertionError(f"compose requires ${name} to be set: {default}")
        return current or ""

    return _VARIABLE.sub(expand, value)


def load_compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), env={})


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def instruction(name: str) -> str:
    """The arguments of the last NAME instruction (the one in force)."""
    found = [arguments for keyword, arguments in dockerfile_instructions() if keyword == name]
    assert found, f"the Dockerfile has no {name}"
    return found[-1]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """repository, tag, digest of an image reference."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
    else:
        repository, tag = name, None
    return repository, tag, digest or None


def container_ports(service: dict[str, Any]) -> set[int]:
    """The container side of each published port (`"HOST:CONTAINER"`, `"CONTAINER"` or long syntax)."""
    ports = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def published(service: dict[str, Any]) -> dict[int, int]:
    """container port → host port."""
    mapping = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).split("/")[0].rpartition(":")
        mapping[int(container)] = int(host.rsplit(":", 1)[-1]) if host else int(container)
    return mapping


def mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, source, target) for each volume entry; kind is `volume` (named) or `bind`."""
    found = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            kind, source, target = entry["type"], entry.get("source", ""), entry["target"]
        else:
            source, target = str(entry).split(":")[:2]
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        found.append((kind, source, target))
    return found


def serve_context(args: list[str]) -> Any:
    """The compose command parsed by the real `spancost serve` (the image's ENTRYPOINT is spancost)."""
    assert args[0] == "serve", f"the spancost service runs `spancost {args[0]}`, not serve"
    return serve.make_context("serve", list(args[1:]))


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def spancost_service() -> tuple[str, dict[str, Any]]:
    """The service built from this repository's Dockerfile."""
    built = [(name, service) for name, service in SERVICES.items() if "build" in service]
    assert len(built) == 1, f"expected one service built from the repository, found {[n for n, _ in built]}"
    return built[0]


def service_by_image(repository: str) -> tuple[str, dict[str, Any]]:
    found = [(n, s) for n, s in SERVICES.items() if image_parts(s.get("image", ""))[0] == repository]
    assert len(found) == 1, f"expected one service running {repository}, found {[n for n, _ in found]}"
    return found[0]


# --- images --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned_to_a_version(name: str) -> None:
    service = SERVICES[name]
    assert "image" in service or "build" in service, f"{name} has neither an image nor a build"
    if "image" not in service:
        return
    _, tag, digest = image_parts(service["image"])
    assert tag is not None or digest is not None, f"{name}: {service['image']} is untagged (latest)"
    assert tag != "latest", f"{name}: {service['image']} is not pinned"
    if "build" in service:
        return  # the name the local build is tagged with, not something pulled
    assert digest is not None or re.fullmatch(r"v?\d+(\.\d+)+", tag or ""), (
        f"{name}: {service['image']} is not pinned to a version"
    )


def test_clickhouse_and_the_upstream_collector_are_the_expected_pinned_images() -> None:
    _, clickhouse = service_by_image("clickhouse/clickhouse-server")
    _, tag, _ = image_parts(clickhouse["image"])
    assert re.fullmatch(r"2\d\.\d+(\.\d+)*", tag or ""), clickhouse["image"]
    assert f"ClickHouse {tag}" in (REPO / "README.md").read_text(), "the README names another version"

    _, upstream = service_by_image("otel/opentelemetry-collector-contrib")
    _, tag, _ = image_parts(upstream["image"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag or ""), upstream["image"]


# --- the spancost service ------------------------------------------------------------------------------


def test_the_spancost_service_builds_the_repository_dockerfile() -> None:
    _, service = spancost_service()
    build = service["build"]
    context, dockerfile = (
        (build, "Dockerfile")
        if isinstance(build, str)
        else (build["context"], build.get("dockerfile", "Dockerfile"))
    )
    assert (COMPOSE_FILE.parent / context / dockerfile).resolve() == DOCKERFILE


def test_the_serve_command_parses_and_stores_in_the_compose_clickhouse() -> None:
    _, service = spancost_service()
    context = serve_context(service["command"])  # raises on anything `spancost serve` would refuse
    params = context.params

    store = urlsplit(params["store"])
    assert store.scheme == "http"
    assert store.hostname in SERVICES, f"the store {store.hostname!r} is not a compose service"
    clickhouse_name, clickhouse = service_by_image("clickhouse/clickhouse-server")
    assert store.hostname == clickhouse_name
    assert store.port == 8123
    assert store.path == "/otel"
    environment = clickhouse["environment"]
    assert environment["CLICKHOUSE_DB"] == "otel"
    assert (store.username, store.password) == (
        environment["CLICKHOUSE_USER"],
        environment["CLICKHOUSE_PASSWORD"],
    )


def test_the_serve_command_listens_on_the_published_ports() -> None:
    _, service = spancost_service()
    params = serve_context(service["command"]).params
    ports = published(service)
    assert {4317, 4318} <= set(ports), f"published container ports: {sorted(ports)}"
    assert (ports[4317], ports[4318]) == (4317, 4318), "OTLP is published on the standard host ports"
    assert {params["grpc_port"], params["http_port"]} == {4317, 4318}
    assert params["grpc_port"] == 4317
    assert params["http_port"] == 4318
    assert params["host"] == "0.0.0.0", "inside a container, 127.0.0.1 is out of reach of published ports"
    exposed = {int(port.split("/")[0]) for port in instruction("EXPOSE").split()}
    assert {params["grpc_port"], params["http_port"]} <= exposed


def test_an_unset_auth_token_leaves_authentication_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose passes SPANCOST_AUTH_TOKEN as an empty string when it is not set: that must mean no
    token, not an invalid one that stops the server from starting."""
    _, service = spancost_service()
    for name, value in service.get("environment", {}).items():
        monkeypatch.setenv(name, str(value))
    assert service["environment"]["SPANCOST_AUTH_TOKEN"] == ""
    params = serve_context(service["command"]).params
    config = ReceiverConfig.from_env(host=params["host"], auth_token=params["auth_token"])
    assert config.auth_token is None
    assert config.validate() == []


def test_the_spool_is_on_the_named_volume() -> None:
    _, service = spancost_service()
    params = serve_context(service["command"]).params
    targets = {target: kind for kind, _, target in mounts(service)}
    assert targets.get(params["spool"]) == "volume", f"--spool {params['spool']} is not on a named volume"


def test_the_image_user_owns_the_volumes_it_writes() -> None:
    """A new named volume takes the owner of the directory it is mounted on; a directory the image
    does not have is made by Docker, owned by root, and the image's USER cannot write in it."""
    user = instruction("USER").split(":")[0]
    made: set[str] = set()
    owned: list[tuple[str, bool]] = []  # path, recursively
    for keyword, arguments in dockerfile_instructions():
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;", arguments):
            words = shlex.split(command)
            if not words:
                continue
            flags = [w for w in words[1:] if w.startswith("-")]
            operands = [w for w in words[1:] if not w.startswith("-")]
            if words[0] == "mkdir":
                made.update(operands)
            elif words[0] == "chown" and operands and operands[0].split(":")[0] == user:
                recursive = any(flag in ("-R", "--recursive") for flag in flags)
                owned.extend((path, recursive) for path in operands[1:])
    _, service = spancost_service()
    for kind, source, target in mounts(service):
        if kind != "volume":
            continue
        assert target in made, (
            f"the image has no {target} for the volume {source}: Docker makes it, root-owned"
        )
        assert any(
            target == path or (recursive and target.startswith(path.rstrip("/") + "/"))
            for path, recursive in owned
        ), f"{target} (volume {source}) is not owned by the image's user {user}"


# --- volumes, dependencies, health checks --------------------------------------------------------------


def _healthcheck(name: str) -> bool:
    """Whether the service has a health check: its own, or its built image's HEALTHCHECK."""
    service = SERVICES[name]
    own = service.get("healthcheck")
    if own is not None:
        return not own.get("disable") and own.get("test") not in (["NONE"], "NONE")
    if "build" in service:
        return not instruction("HEALTHCHECK").upper().startswith("NONE")
    return False


def test_every_named_volume_is_declared_and_every_bind_source_exists() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        for kind, source, target in mounts(service):
            if kind == "volume":
                assert source in declared, f"{name} mounts the volume {source}, not declared at the top level"
            else:
                assert (COMPOSE_FILE.parent / source).exists(), (
                    f"{name} mounts {source}, which does not exist"
                )
            assert target.startswith("/"), f"{name}: {target} is not an absolute container path"


def test_healthy_dependencies_have_health_checks() -> None:
    conditions = 0
    for name, service in SERVICES.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {dependency: {"condition": "service_started"} for dependency in depends}
        for dependency, settings in depends.items():
            assert dependency in SERVICES, f"{name} depends on {dependency}, which is not a service"
            if not service.get("profiles"):
                assert not SERVICES[dependency].get("profiles"), (
                    f"{name} runs by default but depends on {dependency}, which runs only in a profile"
                )
            if settings.get("condition") == "service_healthy":
                conditions += 1
                assert _healthcheck(dependency), (
                    f"{name} waits for {dependency} to be healthy; it has no check"
                )
    assert conditions >= 2


def test_the_image_health_check_asks_the_serve_health_route() -> None:
    check = instruction("HEALTHCHECK")
    assert " CMD " in f" {check} "
    urls = re.findall(r"https?://[^\s'\"]+", check)
    assert len(urls) == 1, check
    url = urlsplit(urls[0])
    _, service = spancost_service()
    params = serve_context(service["command"]).params
    assert url.hostname in ("127.0.0.1", "localhost")
    assert url.port == params["http_port"] == 4318
    assert url.path == "/health"


# --- what the image installs ---------------------------------------------------------------------------


def _extras_closure(extra: str, optional: Mapping[str, list[str]], name: str) -> set[str]:
    closure, pending = set(), [extra]
    while pending:
        current = pending.pop()
        if current in closure:
            continue
        assert current in optional, f"the extra {current!r} is not in pyproject.toml"
        closure.add(current)
        for requirement in optional[current]:
            match = re.fullmatch(rf"{re.escape(name)}\[([\w,\s-]+)\]", requirement.strip())
            if match:
                pending.extend(part.strip() for part in match[1].split(","))
    return closure


def test_the_image_installs_the_collector_extra_and_runs_spancost() -> None:
    runs = " ".join(arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN")
    installs = re.findall(r"pip install\s+(?:-\S+\s+)*[\"']?\.\[([\w,\s-]+)\][\"']?", runs)
    assert installs, "the Dockerfile does not pip install the repository with an extra"
    project = pyproject()["project"]
    extras = set()
    for listed in installs:
        for extra in listed.split(","):
            extras |= _extras_closure(extra.strip(), project["optional-dependencies"], project["name"])
    assert "collector" in extras, f"the image installs {sorted(extras)}: `spancost serve` needs collector"

    assert json.loads(instruction("ENTRYPOINT")) == ["spancost"]
    assert json.loads(instruction("CMD"))[0] == "serve"


def test_the_image_copies_every_source_folder_the_install_reads() -> None:
    setuptools = pyproject()["tool"]["setuptools"]
    folders = {"spancost", *setuptools["package-dir"].values()}
    needed = folders | {"pyproject.toml", pyproject()["project"]["readme"]}
    copied = set()
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY":
            *sources, _ = [word for word in arguments.split() if not word.startswith("--")]
            copied.update(source.rstrip("/") for source in sources)
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert not needed & ignored, f".dockerignore leaves out {sorted(needed & ignored)}"


def test_a_regular_install_has_every_package() -> None:
    """The image installs with `pip install .`, not editable: a subpackage missing from
    [tool.setuptools] packages is missing from the image, and `spancost serve` fails to import it."""
    setuptools = pyproject()["tool"]["setuptools"]
    roots = {"spancost": "spancost", **setuptools["package-dir"]}
    on_disk = set()
    for package, folder in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            on_disk.add(".".join((package, *relative)))
    missing = on_disk - set(setuptools["packages"])
    assert not missing, f"packages left out of [tool.setuptools] packages: {sorted(missing)}"


# --- the upstream collector ----------------------------------------------------------------------------


def upstream() -> tuple[str, dict[str, Any], dict[str, Any]]:
    name, service = service_by_image("otel/opentelemetry-collector-contrib")
    command = service["command"]
    args = shlex.split(command) if isinstance(command, str) else list(command)
    configs = [arg.split("=", 1)[1] for arg in args if arg.startswith("--config=")]
    configs += [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--config"]
    assert len(configs) == 1, f"{name}: expected one --config, found {configs}"
    sources = [source for kind, source, target in mounts(service) if kind == "bind" and target == configs[0]]
    assert sources, f"{name} reads {configs[0]}, which no bind mount provides"
    assert (COMPOSE_FILE.parent / sources[0]).resolve() == UPSTREAM_CONFIG
    return name, service, yaml.safe_load(UPSTREAM_CONFIG.read_text())


def test_the_upstream_collector_is_an_optional_profile() -> None:
    name, service, _ = upstream()
    assert service.get("profiles"), f"{name} should run only with --profile"
    taken = set(published(spancost_service()[1]).values())
    assert not taken & set(published(service).values()), "both collectors publish the same host port"


def test_the_upstream_exporter_writes_the_spancost_table_and_never_creates_it() -> None:
    name, service, config = upstream()
    exporter = config["exporters"]["clickhouse"]
    assert exporter["create_schema"] is False
    assert exporter["traces_table_name"] == "otel_traces"
    _, spancost = spancost_service()
    store = urlsplit(serve_context(spancost["command"]).params["store"])
    assert exporter["database"] == store.path.strip("/") == "otel"

    endpoint = urlsplit(exporter["endpoint"])
    clickhouse_name, _ = service_by_image("clickhouse/clickhouse-server")
    assert endpoint.hostname == clickhouse_name
    assert (endpoint.scheme, endpoint.port) in (("tcp", 9000), ("clickhouse", 9000), ("http", 8123))
    for field in ("username", "password"):
        variable = re.fullmatch(r"\$\{env:(\w+)\}", str(exporter[field]))
        assert variable, f"{field}: {exporter[field]!r}"
        assert variable[1] in service.get("environment", {}), f"{name} does not set {variable[1]}"

    depends = service.get("depends_on") or {}
    assert spancost_service()[0] in depends, (
        "the upstream collector must wait for spancost to make the schema"
    )


def test_the_upstream_traces_pipeline_goes_from_otlp_to_clickhouse() -> None:
    _, service, config = upstream()
    pipeline = config["service"]["pipelines"]["traces"]
    assert "otlp" in pipeline["receivers"]
    assert pipeline["exporters"] == ["clickhouse"]
    for kind in ("receivers", "processors", "exporters"):
        for component in pipeline.get(kind, []):
            assert component in config[kind], f"the pipeline uses {kind} {component}, which is not configured"
    protocols = config["receivers"]["otlp"]["protocols"]
    listening = {int(protocols[protocol]["endpoint"].rsplit(":", 1)[1]) for protocol in ("grpc", "http")}
    assert listening == container_ports(service)
    for protocol in ("grpc", "http"):
        assert protocols[protocol]["endpoint"].startswith("0.0.0.0:"), (
            f"{protocol} is out of reach in a container"
        )


def test_the_store_has_the_columns_the_upstream_exporter_inserts(store: Any) -> None:
    _, _, config = upstream()
    table = config["exporters"]["clickhouse"]["traces_table_name"]
    columns = store.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String}",
        {"db": store.database, "table": table},
    ).rows
    assert columns, f"spancost's schema has no table {table}"
    types = dict(columns)
    assert {name: types.get(name) for name in UPSTREAM_TRACE_COLUMNS} == UPSTREAM_TRACE_COLUMNS
