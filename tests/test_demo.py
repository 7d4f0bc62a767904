"""`spancost demo` end to end in its own process (chdb allows one store directory per process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

CHECK = textwrap.dedent("""
    import json, sys
    from spancost.store import Store
    with Store(sys.argv[1]) as store:
        print(json.dumps({
            "by_prompt": dict(store.query(
                "SELECT PromptName, count() FROM llm_calls GROUP BY PromptName").rows),
            "tagged": store.query(
                "SELECT countIf(UserId != '' AND WorkspaceId != '') = count() FROM llm_calls").single_value(),
            "unpriced_models": [r[0] for r in store.query(
                "SELECT DISTINCT Model FROM llm_calls WHERE CostStatus = 'unpriced'").rows],
            "steps_under_agent": store.query(
                "SELECT count() FROM llm_calls AS c"
                " INNER JOIN otel_traces AS t ON c.TraceId = t.TraceId AND c.ParentSpanId = t.SpanId"
                " INNER JOIN otel_traces AS a ON t.TraceId = a.TraceId AND t.ParentSpanId = a.SpanId"
                " WHERE c.PromptName = 'research-step'"
                " AND t.SpanAttributes['gen_ai.tool.name'] = 'web-search'"
                " AND a.SpanAttributes['gen_ai.agent.name'] = 'research-agent'"
            ).single_value(),
            "rollup_matches": store.query(
                "SELECT countIf(abs(toFloat64OrZero(a.SpanAttributes['spancost.rollup.cost']) - c.cost)"
                " < 1e-9) = count() FROM (SELECT TraceId, toFloat64(sum(CostUSD)) AS cost FROM llm_calls"
                " WHERE Feature = 'research' GROUP BY TraceId) AS c"
                " INNER JOIN otel_traces AS a ON a.TraceId = c.TraceId"
                " WHERE a.SpanAttributes['gen_ai.operation.name'] = 'invoke_agent'"
            ).single_value(),
            "research_steps": store.query(
                "SELECT count() FROM llm_calls WHERE PromptName = 'research-step'").single_value(),
            "prompt_versions": store.query(
                "SELECT uniqExact(PromptVersion) FROM llm_calls WHERE PromptName = 'draft-reply'"
            ).single_value(),
            "days": store.query("SELECT uniqExact(toDate(Timestamp)) FROM llm_calls").single_value(),
        }))
""")


def _spancost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "spancost"), *args], capture_output=True, text=True, timeout=300
    )


def test_demo_simulates_stores_and_reports(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'demo'}"
    done = _spancost("demo", "--store", dsn, "--days", "14", "--actions", "300", "--seed", "3")
    assert done.returncode == 0, done.stderr
    for title in ("Daily spend", "Spend by prompt", "Cost per call by prompt", "Output tokens per call"):
        assert title in done.stdout
    assert f"spancost report --store {dsn} --days 14" in done.stdout.replace("\n", "")

    report = json.loads(_spancost("report", "--store", dsn, "--days", "14", "--json").stdout)
    assert report["calls"] > 300
    assert report["total_usd"] > 0
    assert report["unpriced_calls"] >= 1
    assert {row["prompt"] for row in report["spend_by_prompt"]} >= {
        "draft-reply",
        "summarize-ticket",
        "classify-intent",
        "research-step",
        "research-writeup",
    }

    checked = subprocess.run(
        [sys.executable, "-c", CHECK, dsn], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stderr
    facts = json.loads(checked.stdout)
    assert facts["tagged"] == 1, "every call carries its user and workspace"
    assert facts["unpriced_models"] == ["acme-intent-ft-3"]
    assert facts["research_steps"] > 0
    assert facts["steps_under_agent"] == facts["research_steps"], "steps nest under tool spans of the agent"
    assert facts["rollup_matches"] == 1, "each agent span's roll-up equals the sum of its calls"
    assert facts["prompt_versions"] == 2, "the draft-reply prompt edit shows as a second version"
    assert facts["days"] >= 10


def test_demo_refuses_to_empty_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    done = _spancost("demo", "--store", f"chdb://{tmp_path}", "--actions", "5")
    assert done.returncode == 1
    assert "was not made by `spancost demo`" in done.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
