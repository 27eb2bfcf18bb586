"""The decision commands end to end on SQLite, as an admin would use them."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app

from .conftest import policy_yaml
from .world import build_world

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manual-workflow store with 2 unused and 3 active members of Visio, via the CLI."""
    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    policy = policy_yaml("Visio", approval=True, extra="renewal_date: 2027-03-01")
    # The commands read the real clock: the organization is built around today.
    build_world(
        db, tmp_path, policy, unused=2, active=3, now=dt.datetime.now(dt.UTC)
    ).ctx.engine.dispose()
    path = tmp_path / "reclaim.yaml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\ndatabase: {{url: '{db}'}}\npolicies:{policy}")
    return path


def invoke(config: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--config", str(config)])
    return result.exit_code, result.stdout, result.stderr


def test_candidates_plan_run_answer_tasks_report(config: Path, tmp_path: Path) -> None:
    day = dt.datetime.now(dt.UTC).date().isoformat()
    code, out, _ = invoke(config, "candidates", "--as-of", day)
    assert code == 0 and "Visio: 5 members" in out and "idle0@x.test" in out
    assert "busy0@x.test" not in out  # the table lists candidates only
    code, out, _ = invoke(config, "candidates", "--as-of", day, "--all")
    assert "busy0@x.test" in out

    code, out, _ = invoke(config, "plan", "--json")
    plan = json.loads(out)
    assert code == 0 and plan["status"] == "proposed"  # asks only: no approval needed
    assert [i["action"] for i in plan["policies"][0]["items"]] == ["ask", "ask"]
    code, out, _ = invoke(config, "plan", "show", str(plan["id"]))
    assert code == 0 and f"Plan #{plan['id']}" in out and "2 to ask" in out

    code, out, _ = invoke(config, "run", "--policy", "Visio", "--dry-run")
    assert code == 0 and "dry run" in out and "asked" in out
    code, out, _ = invoke(config, "cases", "--json")
    assert json.loads(out) == []  # the dry run kept nothing

    code, out, _ = invoke(config, "run", "--policy", "Visio")
    assert code == 0 and "opened 2 case(s)" in out and "2 asked" in out
    cases = json.loads(invoke(config, "cases", "--json")[1])
    first, second = sorted(cases, key=lambda c: c["user"])
    code, out, _ = invoke(config, "answer", str(first["id"]), "release", "--reason", "done with it")
    assert code == 0 and "answered_release" in out
    code, _, err = invoke(config, "answer", str(first["id"]), "keep")
    assert code == 2 and "cannot go from answered_release" in err
    code, out, _ = invoke(config, "answer", str(second["id"]), "keep", "--by", "helpdesk")
    assert code == 0 and "answered_keep" in out

    # require_approval: the removal waits for an approved plan.
    code, out, _ = invoke(config, "run", "--policy", "Visio")
    assert code == 0 and "1 removal(s) await approval" in out
    plans = invoke(config, "plan", "list")[1]
    run_plan = max(int(line.split()[1]) for line in plans.splitlines() if " run " in line)
    code, out, _ = invoke(config, "plan", "approve", str(run_plan), "--by", "alice")
    assert code == 0 and "approved by alice; 1 waiting removal(s) released" in out
    code, out, _ = invoke(config, "worker", "--once")
    assert code == 0 and "1 queued" in out

    code, out, _ = invoke(config, "tasks", "--json")
    tasks = json.loads(out)
    assert [(t["user"], t["action"], t["status"]) for t in tasks] == [
        (first["user"], "remove", "open")
    ]
    export = tmp_path / "tasks.csv"
    code, out, _ = invoke(config, "tasks", "export", str(export))
    with export.open() as fh:
        rows = list(csv.DictReader(fh))
    assert code == 0 and [r["user"] for r in rows] == [first["user"]]
    code, out, _ = invoke(config, "tasks", "done", str(tasks[0]["id"]), "--by", "admin")
    assert code == 0 and "removed" in out
    code, out, _ = invoke(config, "cases", "show", str(first["id"]), "--json")
    shown = json.loads(out)
    assert (shown["state"], shown["status"], shown["outcome"]) == (
        "removed",
        "success",
        "action_taken",
    )
    assert [e["cause"] for e in shown["history"]] == [
        "opened",
        "asked",
        "answered",
        "released",
        "removal_sent",
        "removed",
    ]

    code, out, _ = invoke(config, "report", "--json")
    report = json.loads(out)["policies"][0]
    assert report["seats_reclaimed"] == 1
    assert report["realized"] == {"currency": "USD", "monthly": "15", "yearly": "180"}
    assert report["renewal"]["renews_on"] == "2027-03-01"
    code, out, _ = invoke(config, "report")
    assert code == 0 and "Total USD: realized 15.00/month (180.00/year)" in out


def test_pause_resume_and_case_admin(config: Path) -> None:
    code, out, _ = invoke(config, "pause", "--reason", "audit", "--by", "ops")
    assert code == 0 and "paused" in out
    code, out, _ = invoke(config, "plan")
    assert "KILL SWITCH ON" in out
    code, out, _ = invoke(config, "resume")
    assert code == 0 and "resumed" in out
    invoke(config, "run", "--policy", "Visio")
    case_id = json.loads(invoke(config, "cases", "--json", "--open")[1])[0]["id"]
    code, out, _ = invoke(config, "cases", "cancel", str(case_id), "--by", "ops")
    assert code == 0 and "cancelled" in out
    code, _, err = invoke(config, "cases", "retry", str(case_id))
    assert code == 2 and "cannot go from cancelled" in err
    code, _, err = invoke(config, "cases", "show", "999")
    assert code == 2 and "no case #999" in err
    code, _, err = invoke(config, "plan", "approve", "999")
    assert code == 2 and "no plan #999" in err
    code, _, err = invoke(config, "answer", str(case_id), "maybe")
    assert code == 2 and "keep or release" in err
