"""The `spancost` command through click's CliRunner: output for people, JSON for programs, exit codes."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, record_calls

from spancost.cli.app import cli

UTC = dt.timezone.utc


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


# --- pricing ------------------------------------------------------------------------------------------


def test_pricing_cost_prints_exact_amount_and_parts() -> None:
    """claude-sonnet-4-5: 1000 uncached × 3 + 3000 read × 0.3 + 1500 5m-write × 3.75 + 500 1h-write × 6
    + 400 × 15."""
    code, out = run(
        "pricing",
        "cost",
        "claude-sonnet-4-5-20250929",
        "--input",
        "6000",
        "--output",
        "400",
        "--cache-read",
        "3000",
        "--cache-write",
        "2000",
        "--cache-write-1h",
        "500",
    )
    assert code == 0
    assert "0.018525000 USD" in out
    assert re.search(r"cache_write\s+0.008625000", out)


def test_pricing_cost_json_at_a_date() -> None:
    code, out = run(
        "pricing", "cost", "o3", "--input", "1000", "--output", "1000", "--at", "2025-06-01", "--json"
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["ok"] is True
    assert payload["total_usd"] == "0.050000000"
    assert payload["key"] == "openai/o3"
    assert payload["parts_usd"] == {
        "input": "0.010000000",
        "output": "0.040000000",
        "cache_read": "0E-9",
        "cache_write": "0E-9",
    }


def test_pricing_cost_rejects_inconsistent_counts() -> None:
    code, out = run("pricing", "cost", "gpt-4o", "--input", "10", "--output", "1", "--cache-read", "20")
    assert code == 2
    assert "--cache-read plus --cache-write cannot exceed --input" in out


def test_pricing_show_names_the_entry_and_its_history() -> None:
    code, out = run("pricing", "show", "o3-2025-04-16")
    assert code == 0
    assert "openai/o3" in out
    assert "from 2025-06-10" in out
    code, out = run("pricing", "show", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "--json")
    payload = json.loads(out)
    assert payload["key"] == "anthropic/claude-sonnet-4-5"
    assert payload["prices"]["cache_write_1h_mtok"] == 6
    assert payload["long_context"]["above_input_tokens"] == 200000


def test_pricing_show_unknown_model_exits_1_with_advice() -> None:
    code, out = run("pricing", "show", "acme-intent-ft-3")
    assert code == 1
    assert "not in the price table" in out
    assert "SPANCOST_PRICES" in out


def test_pricing_list_json_and_provider_filter() -> None:
    code, out = run("pricing", "list", "--provider", "anthropic", "--json")
    assert code == 0
    payload = json.loads(out)
    assert {m["key"].split("/")[0] for m in payload["models"]} == {"anthropic"}
    assert any(m["key"] == "anthropic/claude-opus-4-1" for m in payload["models"])
    code, out = run("pricing", "list")
    assert "openai/gpt-5" in out
    assert "google/gemini-2.5-pro" in out


def test_a_bad_price_file_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spancost.pricing import set_default_table

    bad = tmp_path / "prices.yml"
    bad.write_text(
        "provider: acme\nname: Acme\nmodels:\n  - id: x\n    name: X\n    checked: 2026-01-01\n"
        "    source: https://acme.example\n    prices: {input_mtok: free, output_mtok: 1}\n"
    )
    monkeypatch.setenv("SPANCOST_PRICES", str(bad))
    set_default_table(None)
    try:
        code, out = run("pricing", "list", "--json")
    finally:
        set_default_table(None)
    assert code == 1
    payload = json.loads(out)
    assert payload["ok"] is False
    assert "models[0] (x).prices.input_mtok: must be a number" in payload["error"]


# --- report ------------------------------------------------------------------------------------------


def test_report_json_and_tables(store, chdb_dir: Path) -> None:
    now = dt.datetime.now(UTC)
    calls = [
        {
            "at": now - dt.timedelta(hours=30),
            "model": "gpt-4o-mini",
            "input": 1000,
            "output": 100,
            "prompt": "a",
        },
        {
            "at": now - dt.timedelta(hours=2),
            "model": "gpt-4o-mini",
            "input": 2000,
            "output": 300,
            "prompt": "b",
        },
        {"at": now - dt.timedelta(hours=1), "model": "mystery-model", "input": 5, "output": 5, "prompt": "b"},
    ]
    dsn = f"chdb://{chdb_dir}?database={store.database}"
    record_calls(dsn, store.database, calls)

    code, out = run("report", "--store", dsn, "--days", "7", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["ok"] is True
    assert payload["total_usd"] == pytest.approx(0.00021 + 0.00048)
    assert (payload["calls"], payload["unpriced_calls"]) == (3, 1)
    assert len(payload["daily_spend"]) == 7
    by_day = {row["day"]: row["cost_usd"] for row in payload["daily_spend"]}
    for call, cost in zip(calls[:2], (0.00021, 0.00048), strict=True):
        assert by_day[call["at"].date().isoformat()] >= cost

    code, out = run("report", "--store", dsn, "--days", "7")
    assert code == 0
    for title in ("Daily spend", "Spend by prompt", "Cost per call by prompt", "Output tokens per call"):
        assert title in out
    assert "1 calls used models missing from the price table" in out


def test_report_on_an_unreachable_store_exits_1() -> None:
    code, out = run("report", "--store", "http://default:secret@127.0.0.1:9/otel", "--json")
    assert code == 1
    payload = json.loads(out)
    assert payload["ok"] is False
    assert "cannot open the store http://default:***@127.0.0.1:9/otel" in payload["error"]
    assert "secret" not in out


# --- the README stays true ------------------------------------------------------------------------------


def _commands(group, prefix: str = "") -> list[str]:
    names = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        if hasattr(command, "commands"):
            names.extend(_commands(command, full + " "))
        else:
            names.append(full)
    return names


def test_readme_lists_every_command_and_its_options() -> None:
    readme = (REPO / "README.md").read_text()
    for name in _commands(cli):
        assert f"`spancost {name}" in readme, f"README does not document `spancost {name}`"
        code, out = run(*name.split(), "--help")
        assert code == 0
        for option in re.findall(r"^\s+(--[a-z0-9-]+)", out, flags=re.MULTILINE):
            if option != "--help":
                assert option in readme, f"README does not mention {option} of `spancost {name}`"
