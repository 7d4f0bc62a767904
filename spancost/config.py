"""`spancost.toml`: the budget, the alert thresholds, where notifications go and how Grafana reaches
ClickHouse. Every key has a default; a file sets only what it changes.

```toml
[budget]
monthly_usd = 10000.0
[alerts]
anomaly_sigmas = 2.5
[notify]
email = ["finops@example.com"]
```

`load_config()` reads the file (an explicit path, else the file `SPANCOST_CONFIG` names, else
`./spancost.toml` when there is one, else the defaults) and checks it strictly: an unknown section or
key, a value of the wrong type or out of range raises `ConfigError`, which lists every problem at once,
each with the file, the section and the key. Secrets are never in the file: it names the environment
variables Grafana reads them from.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_ENV = "SPANCOST_CONFIG"
"""The environment variable that names the config file."""
DEFAULT_FILE = "spancost.toml"
"""The file looked for in the working directory when no path is given."""

RULE_EVALUATION_BASE_SECONDS = 10
"""Grafana evaluates alert rules on a 10 s tick: a rule group's interval must be a multiple of it."""


class ConfigError(ValueError):
    """A config file that cannot be used; `problems` lists every problem, one line each, in the form
    `FILE: [section] key: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        header = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(
            f"invalid spancost config ({header}):\n" + "\n".join(f"  {p}" for p in self.problems)
        )


# --- value checks ------------------------------------------------------------------------------------------

_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?",
)
_DURATION_UNITS_MS = (
    365 * 86_400_000,
    7 * 86_400_000,
    86_400_000,
    3_600_000,
    60_000,
    1_000,
    1,
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EMAIL = re.compile(r"[^@\s;,<>\"]+@[^@\s;,<>\"]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_duration(text: str) -> float:
    """Seconds in a Grafana (Prometheus) duration: `30s`, `5m`, `1h30m`, `2d`, `0`; units y w d h m s ms,
    largest first, each at most once. ValueError for anything else."""
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h30m)")
    millis = sum(
        int(count) * unit for count, unit in zip(match.groups(), _DURATION_UNITS_MS, strict=True) if count
    )
    return millis / 1000


def _duration(minimum_s: float, multiple_of_s: int | None = None) -> Callable[[Any], str | None]:
    def check(value: str) -> str | None:
        try:
            seconds = parse_duration(value)
        except ValueError:
            return f"must be a duration such as 30s, 5m or 1h, got {value!r}"
        if seconds < minimum_s:
            return f"must be at least {minimum_s:g}s, got {value!r}"
        if seconds != int(seconds):
            return f"must be a whole number of seconds, got {value!r}"
        if multiple_of_s and seconds % multiple_of_s:
            return (
                f"must be a multiple of {multiple_of_s}s (Grafana evaluates rules on a"
                f" {multiple_of_s}s tick), got {value!r}"
            )
        return None

    return check


def _at_least(minimum: float, *, strict: bool = False) -> Callable[[Any], str | None]:
    def check(value: float) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        if value < minimum or (strict and value == minimum):
            return f"must be {'>' if strict else '≥'} {minimum:g}, got {value!r}"
        return None

    return check


def _between(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}, got {value!r}"

    return check


def _env_name(*, optional: bool) -> Callable[[Any], str | None]:
    def check(value: str) -> str | None:
        if optional and value == "":
            return None
        if _ENV_NAME.fullmatch(value):
            return None
        return f"must be an environment variable name (letters, digits, _; not a digit first), got {value!r}"

    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(map(repr, choices))}, got {value!r}"

    return check


def _host(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    if "://" in value or "/" in value:
        return f"must be a host name (no scheme or path; the port is clickhouse_port), got {value!r}"
    if any(ch.isspace() for ch in value):
        return f"must be a host name without spaces, got {value!r}"
    return None


def _identifier(value: str) -> str | None:
    if _IDENTIFIER.fullmatch(value):
        return None
    return f"must be a ClickHouse database name (letters, digits, _), got {value!r}"


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _emails(value: tuple[str, ...]) -> str | None:
    bad = [address for address in value if not _EMAIL.fullmatch(address)]
    if bad:
        return f"must be e-mail addresses (one per string), not {', '.join(map(repr, bad))}"
    if len(set(value)) != len(value):
        return "lists an address twice"
    return None


def _key(default: Any, kind: type, check: Callable[[Any], str | None] | None = None) -> Any:
    """A config key: its default, the TOML type it takes and a check of its value."""
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata={"kind": kind, "check": check})
    return field(default=default, metadata={"kind": kind, "check": check})


# --- the sections ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetConfig:
    """`[budget]`"""

    monthly_usd: float = _key(0.0, float, _at_least(0))
    """The month's LLM budget in USD; 0: no budget (budget alerts and panels then say there is none)."""

    @property
    def enabled(self) -> bool:
        return self.monthly_usd > 0


@dataclass(frozen=True)
class AlertsConfig:
    """`[alerts]`: the thresholds the generated Grafana alert rules use."""

    anomaly_days: int = _key(30, int, _at_least(2))
    """Daily spend anomaly: today is compared with the previous this many days."""
    anomaly_sigmas: float = _key(3.0, float, _at_least(0, strict=True))
    """...and fires above their mean + this many standard deviations."""
    pace_ratio: float = _key(1.2, float, _at_least(0, strict=True))
    """Budget pace fires when month-to-date spend > pace_ratio × budget × elapsed fraction of the month."""
    prompt_jump_pct: float = _key(20.0, float, _at_least(0, strict=True))
    """Per-prompt cost per call up more than this many percent, week over week."""
    prompt_min_calls: int = _key(50, int, _at_least(1))
    """...only for prompts with at least this many calls in each of the two weeks."""
    interval: str = _key("5m", str, _duration(RULE_EVALUATION_BASE_SECONDS, RULE_EVALUATION_BASE_SECONDS))
    """How often Grafana evaluates the rule group (a Grafana duration, a multiple of 10s)."""
    pending: str = _key("15m", str, _duration(0))
    """How long a condition must hold before the alert fires (the rule's `for`)."""

    @property
    def interval_seconds(self) -> int:
        return int(parse_duration(self.interval))

    @property
    def pending_seconds(self) -> int:
        return int(parse_duration(self.pending))


@dataclass(frozen=True)
class NotifyConfig:
    """`[notify]`: the contact points alerts are sent to."""

    slack_webhook_env: str = _key("SPANCOST_SLACK_WEBHOOK_URL", str, _env_name(optional=True))
    """The environment variable Grafana reads the Slack incoming-webhook URL from (the URL is never
    written in a file); empty: no Slack contact point."""
    slack_channel: str = _key("", str)
    """Channel to post to, overriding the webhook's own; empty: the webhook's channel."""
    email: tuple[str, ...] = _key((), list, _emails)
    """Addresses alerts are e-mailed to; empty: no e-mail contact point (Grafana needs SMTP set up)."""

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_webhook_env)


@dataclass(frozen=True)
class GrafanaConfig:
    """`[grafana]`: how Grafana's ClickHouse datasource reaches the store. The defaults are the compose
    stack's ClickHouse (docker-compose.yml)."""

    clickhouse_host: str = _key("clickhouse", str, _host)
    """Host name of the ClickHouse server, as Grafana sees it."""
    clickhouse_port: int = _key(8123, int, _between(1, 65535))
    """Its port: 8123 (HTTP), 8443 (HTTPS), 9000 (native) or 9440 (native, TLS)."""
    clickhouse_protocol: str = _key("http", str, _one_of("http", "native"))
    """`http` or `native`."""
    clickhouse_secure: bool = _key(False, bool)
    """Connect with TLS (ClickHouse Cloud needs it)."""
    clickhouse_database: str = _key("otel", str, _identifier)
    """The database holding otel_traces and spancost's tables."""
    clickhouse_user: str = _key("spancost", str, _not_empty)
    """The user Grafana queries as (best a read-only one)."""
    clickhouse_password_env: str = _key("CLICKHOUSE_PASSWORD", str, _env_name(optional=True))
    """The environment variable Grafana reads that user's password from; empty: no password."""


SECTIONS: dict[str, type] = {
    "budget": BudgetConfig,
    "alerts": AlertsConfig,
    "notify": NotifyConfig,
    "grafana": GrafanaConfig,
}


@dataclass(frozen=True)
class SpancostConfig:
    """Everything `spancost.toml` sets; `SpancostConfig()` is the defaults."""

    budget: BudgetConfig = field(default_factory=BudgetConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    grafana: GrafanaConfig = field(default_factory=GrafanaConfig)
    source: Path | None = field(default=None, compare=False)
    """The file it was read from; None: the defaults."""


# --- reading -------------------------------------------------------------------------------------------


_TOML_TYPE = {float: "a number", int: "an integer", str: "a string", bool: "true or false", list: "a list"}


def _typed(value: Any, kind: type) -> tuple[bool, Any]:
    """Whether `value` (as tomllib gives it) is of `kind`, and the value as the dataclass holds it."""
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is list:
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
        return ok, tuple(value) if ok else value
    return isinstance(value, kind), value


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value})
        return f"a list of {'/'.join(kinds)}" if kinds else "a list"
    return f"{value!r} ({type(value).__name__})"


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(choices))}"


def _section(cls: type, name: str, table: Mapping[str, Any], where: str, problems: list[str]) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        spec = known.get(key)
        if spec is None:
            problems.append(f"{where}: [{name}] unknown key {key!r}{_suggest(key, list(known))}")
            continue
        kind = spec.metadata["kind"]
        ok, value = _typed(raw, kind)
        if not ok:
            expected = "a list of strings" if kind is list else _TOML_TYPE[kind]
            problems.append(f"{where}: [{name}] {key}: must be {expected}, got {_type_name(raw)}")
            continue
        check = spec.metadata["check"]
        message = check(value) if check else None
        if message:
            problems.append(f"{where}: [{name}] {key}: {message}")
            continue
        values[key] = value
    return cls(**values)


def config_from_dict(data: Mapping[str, Any], source: Path | str | None = None) -> SpancostConfig:
    """A config from parsed TOML (tables as dicts); ConfigError lists every problem with it."""
    where = str(source) if source is not None else DEFAULT_FILE
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, table in data.items():
        cls = SECTIONS.get(name)
        if cls is None:
            problems.append(f"{where}: unknown section [{name}]{_suggest(name, list(SECTIONS))}")
            continue
        if not isinstance(table, dict):
            problems.append(
                f"{where}: [{name}] must be a table ([{name}] with keys under it), got {_type_name(table)}"
            )
            continue
        sections[name] = _section(cls, name, table, where, problems)
    config = SpancostConfig(**sections, source=Path(source) if source is not None else None)
    if config.notify.slack_channel and not config.notify.slack_enabled:
        problems.append(
            f"{where}: [notify] slack_channel: is set, but Slack is off (slack_webhook_env is empty)"
        )
    if problems:
        raise ConfigError(problems)
    return config


def parse_config(text: str, source: Path | str | None = None) -> SpancostConfig:
    """A config from the text of a TOML file; ConfigError lists every problem with it."""
    where = str(source) if source is not None else DEFAULT_FILE
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: not valid TOML: {exc}"]) from None
    return config_from_dict(data, source)


def read_config(path: Path | str) -> SpancostConfig:
    """The config in the file at `path`; ConfigError when it cannot be read or is not right."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such config file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a config file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror or exc})"]) from None
    return parse_config(text, path)


def load_config(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
) -> SpancostConfig:
    """The config in force: the file at `path`; else the one SPANCOST_CONFIG names; else ./spancost.toml
    when it exists; else the defaults. A file named explicitly (argument or variable) must exist."""
    if path is not None:
        return read_config(path)
    environ = os.environ if environ is None else environ
    named = environ.get(CONFIG_ENV, "").strip()
    if named:
        return read_config(named)
    local = Path(cwd if cwd is not None else Path.cwd()) / DEFAULT_FILE
    if local.is_file():
        return read_config(local)
    return SpancostConfig()


def defaults() -> dict[str, dict[str, Any]]:
    """Every section's keys and their defaults, as a TOML file would spell them."""
    result: dict[str, dict[str, Any]] = {}
    for name, cls in SECTIONS.items():
        section: dict[str, Any] = {}
        for spec in fields(cls):
            value = spec.default if spec.default is not MISSING else spec.default_factory()  # type: ignore[misc]
            section[spec.name] = list(value) if isinstance(value, tuple) else value
        result[name] = section
    return result
