"""spancost.toml: the defaults, a file that sets every key, where the file is looked for, and every kind
of mistake reported with its file, section and key, all of them at once."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import REPO

from spancost.config import (
    CONFIG_ENV,
    SECTIONS,
    AlertsConfig,
    BudgetConfig,
    ConfigError,
    GrafanaConfig,
    NotifyConfig,
    SpancostConfig,
    config_from_dict,
    defaults,
    load_config,
    parse_config,
    parse_duration,
    read_config,
)

EXAMPLE = REPO / "spancost.toml.example"

FULL = """
[budget]
monthly_usd = 2500

[alerts]
anomaly_days = 14
anomaly_sigmas = 2.5
pace_ratio = 1.5
prompt_jump_pct = 35.5
prompt_min_calls = 200
interval = "1m30s"
pending = "0s"

[notify]
slack_webhook_env = "TEAM_SLACK_HOOK"
slack_channel = "#llm-spend"
email = ["finops@example.com", "oncall@example.org"]

[grafana]
clickhouse_host = "ch.internal"
clickhouse_port = 9440
clickhouse_protocol = "native"
clickhouse_secure = true
clickhouse_database = "telemetry"
clickhouse_user = "grafana_reader"
clickhouse_password_env = ""
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "cfg.toml")
    return caught.value.problems


def only_problem(text: str) -> str:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- defaults and a full file --------------------------------------------------------------------------


def test_the_defaults() -> None:
    config = SpancostConfig()
    assert config.budget == BudgetConfig(monthly_usd=0.0)
    assert not config.budget.enabled
    assert config.alerts == AlertsConfig(
        anomaly_days=30,
        anomaly_sigmas=3.0,
        pace_ratio=1.2,
        prompt_jump_pct=20.0,
        prompt_min_calls=50,
        interval="5m",
        pending="15m",
    )
    assert (config.alerts.interval_seconds, config.alerts.pending_seconds) == (300, 900)
    assert config.notify == NotifyConfig(
        slack_webhook_env="SPANCOST_SLACK_WEBHOOK_URL", slack_channel="", email=()
    )
    assert config.notify.slack_enabled
    assert config.grafana == GrafanaConfig(
        clickhouse_host="clickhouse",
        clickhouse_port=8123,
        clickhouse_protocol="http",
        clickhouse_secure=False,
        clickhouse_database="otel",
        clickhouse_user="spancost",
        clickhouse_password_env="CLICKHOUSE_PASSWORD",
    )
    assert config.source is None


def test_an_empty_file_and_empty_sections_are_the_defaults() -> None:
    assert parse_config("") == SpancostConfig()
    assert parse_config("[budget]\n[alerts]\n[notify]\n[grafana]\n") == SpancostConfig()


def test_a_file_that_sets_every_key() -> None:
    config = parse_config(FULL, "full.toml")
    assert config.source == Path("full.toml")
    assert config.budget.monthly_usd == 2500.0
    assert isinstance(config.budget.monthly_usd, float)
    assert config.budget.enabled
    alerts = config.alerts
    assert (alerts.anomaly_days, alerts.anomaly_sigmas, alerts.pace_ratio) == (14, 2.5, 1.5)
    assert (alerts.prompt_jump_pct, alerts.prompt_min_calls) == (35.5, 200)
    assert (alerts.interval_seconds, alerts.pending_seconds) == (90, 0)
    assert config.notify == NotifyConfig(
        slack_webhook_env="TEAM_SLACK_HOOK",
        slack_channel="#llm-spend",
        email=("finops@example.com", "oncall@example.org"),
    )
    assert config.grafana == GrafanaConfig(
        clickhouse_host="ch.internal",
        clickhouse_port=9440,
        clickhouse_protocol="native",
        clickhouse_secure=True,
        clickhouse_database="telemetry",
        clickhouse_user="grafana_reader",
        clickhouse_password_env="",
    )
    # every key of every section was set to something other than its default
    for section, keys in defaults().items():
        for key, default in keys.items():
            value = getattr(getattr(config, section), key)
            assert value != (tuple(default) if isinstance(default, list) else default), f"[{section}] {key}"


def test_a_file_can_switch_slack_off() -> None:
    config = parse_config('[notify]\nslack_webhook_env = ""\n')
    assert not config.notify.slack_enabled


def test_the_config_is_frozen() -> None:
    config = SpancostConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.budget.monthly_usd = 5.0  # type: ignore[misc]


def test_the_example_file_loads_and_names_every_key() -> None:
    config = read_config(EXAMPLE)
    assert config.budget.monthly_usd == 10000.0
    assert dataclasses.replace(config, budget=BudgetConfig()) == SpancostConfig(), (
        "the example shows a default for every key but the budget"
    )
    lines = EXAMPLE.read_text().splitlines()
    for section, keys in defaults().items():
        start = lines.index(f"[{section}]")
        for key in keys:
            at = next((i for i, line in enumerate(lines) if line.startswith(f"{key} = ")), None)
            assert at is not None, f"the example has no [{section}] {key}"
            assert at > start, f"[{section}] {key} is above [{section}] in the example"
            # a comment explains each key: above it, or above the run of keys it belongs to
            above = at - 1
            while re.match(r"[a-z_]+ = ", lines[above]):
                above -= 1
            assert lines[above].startswith("# "), f"[{section}] {key} has no comment above it"


def test_defaults_lists_every_section_and_field() -> None:
    table = defaults()
    assert set(table) == set(SECTIONS)
    for name, cls in SECTIONS.items():
        assert set(table[name]) == {f.name for f in dataclasses.fields(cls)}
    assert config_from_dict(table) == SpancostConfig()


# --- durations -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), ("1w", 604800), ("0", 0)],
)
def test_grafana_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m5", "5 m", "5min", "1m1h", "1.5h", "-5m", "5M", "1h1h"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# --- where the file is looked for ---------------------------------------------------------------------


def test_no_file_anywhere_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(environ={}, cwd=tmp_path) == SpancostConfig()


def test_the_working_directory_file(tmp_path: Path) -> None:
    (tmp_path / "spancost.toml").write_text("[budget]\nmonthly_usd = 7.5\n")
    config = load_config(environ={}, cwd=tmp_path)
    assert config.budget.monthly_usd == 7.5
    assert config.source == tmp_path / "spancost.toml"


def test_the_environment_variable_wins_over_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "spancost.toml").write_text("[budget]\nmonthly_usd = 1\n")
    named = tmp_path / "elsewhere.toml"
    named.write_text("[budget]\nmonthly_usd = 2\n")
    assert load_config(environ={CONFIG_ENV: str(named)}, cwd=tmp_path).budget.monthly_usd == 2.0


def test_an_explicit_path_wins_over_everything(tmp_path: Path) -> None:
    (tmp_path / "spancost.toml").write_text("[budget]\nmonthly_usd = 1\n")
    named = tmp_path / "env.toml"
    named.write_text("[budget]\nmonthly_usd = 2\n")
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[budget]\nmonthly_usd = 3\n")
    config = load_config(explicit, environ={CONFIG_ENV: str(named)}, cwd=tmp_path)
    assert config.budget.monthly_usd == 3.0


def test_the_process_environment_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = tmp_path / "env.toml"
    named.write_text("[alerts]\nanomaly_days = 9\n")
    monkeypatch.setenv(CONFIG_ENV, str(named))
    assert load_config().alerts.anomaly_days == 9


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: no such config file")):
        load_config(missing)
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: no such config file")):
        load_config(environ={CONFIG_ENV: str(missing)}, cwd=tmp_path)


def test_a_directory_or_binary_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        read_config(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"[budget]\nmonthly_usd = 1 # \xff\xfe\n")
    with pytest.raises(ConfigError, match=re.escape(f"{binary}: not UTF-8")):
        read_config(binary)


# --- every kind of mistake ------------------------------------------------------------------------------


def test_invalid_toml_names_the_file_and_line() -> None:
    problem = only_problem("[budget]\nmonthly_usd = \n")
    assert problem.startswith("cfg.toml: not valid TOML: ")
    assert "line 2" in problem


def test_an_unknown_section_is_named_with_a_suggestion() -> None:
    assert only_problem("[alert]\nanomaly_days = 3\n") == (
        "cfg.toml: unknown section [alert]; did you mean 'alerts'?"
    )
    assert only_problem("[pricing]\n") == (
        "cfg.toml: unknown section [pricing]; known: alerts, budget, grafana, notify"
    )


def test_a_section_that_is_not_a_table() -> None:
    assert only_problem("budget = 100\n") == (
        "cfg.toml: [budget] must be a table ([budget] with keys under it), got 100 (int)"
    )


def test_an_unknown_key_is_named_with_its_section_and_a_suggestion() -> None:
    assert only_problem("[budget]\nmontly_usd = 5\n") == (
        "cfg.toml: [budget] unknown key 'montly_usd'; did you mean 'monthly_usd'?"
    )
    assert only_problem("[grafana]\nurl = 'http://x'\n").startswith("cfg.toml: [grafana] unknown key 'url'; ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[budget]\nmonthly_usd = "100"', "[budget] monthly_usd: must be a number, got '100' (str)"),
        ("[budget]\nmonthly_usd = true", "[budget] monthly_usd: must be a number, got true (a boolean)"),
        ("[alerts]\nanomaly_days = 30.0", "[alerts] anomaly_days: must be an integer, got 30.0 (float)"),
        (
            "[alerts]\nanomaly_days = false",
            "[alerts] anomaly_days: must be an integer, got false (a boolean)",
        ),
        ("[alerts]\ninterval = 300", "[alerts] interval: must be a string, got 300 (int)"),
        ('[notify]\nemail = "a@b.c"', "[notify] email: must be a list of strings, got 'a@b.c' (str)"),
        (
            '[notify]\nemail = ["a@b.c", 3]',
            "[notify] email: must be a list of strings, got a list of int/str",
        ),
        (
            "[grafana]\nclickhouse_port = '8123'",
            "[grafana] clickhouse_port: must be an integer, got '8123' (str)",
        ),
        (
            "[grafana]\nclickhouse_secure = 1",
            "[grafana] clickhouse_secure: must be true or false, got 1 (int)",
        ),
        ("[grafana]\nclickhouse_host = {a = 1}", "[grafana] clickhouse_host: must be a string, got a table"),
    ],
)
def test_wrong_types(text: str, problem: str) -> None:
    assert only_problem(text) == f"cfg.toml: {problem}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[budget]\nmonthly_usd = -1", "[budget] monthly_usd: must be ≥ 0, got -1.0"),
        ("[budget]\nmonthly_usd = nan", "[budget] monthly_usd: must be a finite number, got nan"),
        ("[budget]\nmonthly_usd = inf", "[budget] monthly_usd: must be a finite number, got inf"),
        ("[alerts]\nanomaly_days = 1", "[alerts] anomaly_days: must be ≥ 2, got 1"),
        ("[alerts]\nanomaly_sigmas = 0", "[alerts] anomaly_sigmas: must be > 0, got 0.0"),
        ("[alerts]\npace_ratio = -0.5", "[alerts] pace_ratio: must be > 0, got -0.5"),
        ("[alerts]\nprompt_jump_pct = 0.0", "[alerts] prompt_jump_pct: must be > 0, got 0.0"),
        ("[alerts]\nprompt_min_calls = 0", "[alerts] prompt_min_calls: must be ≥ 1, got 0"),
        ("[grafana]\nclickhouse_port = 0", "[grafana] clickhouse_port: must be between 1 and 65535, got 0"),
        (
            "[grafana]\nclickhouse_port = 70000",
            "[grafana] clickhouse_port: must be between 1 and 65535, got 70000",
        ),
    ],
)
def test_out_of_range_numbers(text: str, problem: str) -> None:
    assert only_problem(text) == f"cfg.toml: {problem}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('interval = "5 minutes"', "interval: must be a duration such as 30s, 5m or 1h, got '5 minutes'"),
        ('interval = "5"', "interval: must be a duration such as 30s, 5m or 1h, got '5'"),
        ('interval = ""', "interval: must be a duration such as 30s, 5m or 1h, got ''"),
        ('interval = "0s"', "interval: must be at least 10s, got '0s'"),
        (
            'interval = "15s"',
            "interval: must be a multiple of 10s (Grafana evaluates rules on a 10s tick), got '15s'",
        ),
        ('interval = "10500ms"', "interval: must be a whole number of seconds, got '10500ms'"),
        ('pending = "m15"', "pending: must be a duration such as 30s, 5m or 1h, got 'm15'"),
        ('pending = "1500ms"', "pending: must be a whole number of seconds, got '1500ms'"),
    ],
)
def test_bad_durations(text: str, problem: str) -> None:
    assert only_problem(f"[alerts]\n{text}\n") == f"cfg.toml: [alerts] {problem}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[notify]\nslack_webhook_env = "https://hooks.slack.com/services/T/B/X"',
            "[notify] slack_webhook_env: must be an environment variable name (letters, digits, _; not a"
            " digit first), got 'https://hooks.slack.com/services/T/B/X'",
        ),
        (
            '[grafana]\nclickhouse_password_env = "1PASSWORD"',
            "[grafana] clickhouse_password_env: must be an environment variable name (letters, digits, _;"
            " not a digit first), got '1PASSWORD'",
        ),
        (
            '[notify]\nemail = ["finops@example.com", "not an address", "a@b;c@d"]',
            "[notify] email: must be e-mail addresses (one per string), not 'not an address', 'a@b;c@d'",
        ),
        ('[notify]\nemail = ["a@b.c", "a@b.c"]', "[notify] email: lists an address twice"),
        (
            '[notify]\nslack_webhook_env = ""\nslack_channel = "#spend"',
            "[notify] slack_channel: is set, but Slack is off (slack_webhook_env is empty)",
        ),
        (
            '[grafana]\nclickhouse_host = "http://clickhouse:8123"',
            "[grafana] clickhouse_host: must be a host name (no scheme or path; the port is clickhouse_port),"
            " got 'http://clickhouse:8123'",
        ),
        ('[grafana]\nclickhouse_host = " "', "[grafana] clickhouse_host: must not be empty"),
        (
            '[grafana]\nclickhouse_protocol = "https"',
            "[grafana] clickhouse_protocol: must be one of 'http', 'native', got 'https'",
        ),
        (
            '[grafana]\nclickhouse_database = "otel; DROP"',
            "[grafana] clickhouse_database: must be a ClickHouse database name (letters, digits, _),"
            " got 'otel; DROP'",
        ),
        ('[grafana]\nclickhouse_user = ""', "[grafana] clickhouse_user: must not be empty"),
    ],
)
def test_bad_names_and_addresses(text: str, problem: str) -> None:
    assert only_problem(text) == f"cfg.toml: {problem}"


def test_every_problem_is_reported_at_once() -> None:
    text = """
[budget]
monthly_usd = -5
[alerts]
anomaly_days = "thirty"
interval = "15s"
typo = 1
[notify]
email = ["nope"]
[grafana]
clickhouse_port = 0
[extra]
"""
    problems = problems_of(text)
    assert problems == [
        "cfg.toml: [budget] monthly_usd: must be ≥ 0, got -5.0",
        "cfg.toml: [alerts] anomaly_days: must be an integer, got 'thirty' (str)",
        "cfg.toml: [alerts] interval: must be a multiple of 10s (Grafana evaluates rules on a 10s tick),"
        " got '15s'",
        "cfg.toml: [alerts] unknown key 'typo'; known: anomaly_days, anomaly_sigmas, interval, pace_ratio,"
        " pending, prompt_jump_pct, prompt_min_calls",
        "cfg.toml: [notify] email: must be e-mail addresses (one per string), not 'nope'",
        "cfg.toml: [grafana] clickhouse_port: must be between 1 and 65535, got 0",
        "cfg.toml: unknown section [extra]; known: alerts, budget, grafana, notify",
    ]
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "cfg.toml")
    message = str(caught.value)
    assert message.startswith("invalid spancost config (7 problems):\n")
    assert all(problem in message for problem in problems)


def test_a_file_read_from_disk_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "spancost.toml"
    path.write_text("[alerts]\nanomaly_sigmas = -1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(environ={}, cwd=tmp_path)
    assert caught.value.problems == [f"{path}: [alerts] anomaly_sigmas: must be > 0, got -1.0"]


def test_nan_is_not_accepted_anywhere_a_number_is() -> None:
    for key in ("anomaly_sigmas", "pace_ratio", "prompt_jump_pct"):
        problem = only_problem(f"[alerts]\n{key} = nan\n")
        assert problem == f"cfg.toml: [alerts] {key}: must be a finite number, got nan"
