"""The command line, end to end on SQLite, as a person would use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app

runner = CliRunner()

CONFIG = """\
data_dir: {data}
policies:
  - name: Visio
    apps: [VISIO.EXE, Microsoft Visio]
    group: {{name: Visio users}}
    workflow: manual
    seat_cost: {{amount: 15}}
    unused_days: 30
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    path = tmp_path / "reclaim.yaml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_config_check_ok_and_error(config: Path, tmp_path: Path) -> None:
    code, out, _ = invoke("config", "check", "--config", str(config))
    assert code == 0
    assert "ok" in out and "Visio" in out and "manual" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text().replace("unused_days: 30", "unused_dayz: 30"))
    code, _, err = invoke("config", "check", "--config", str(bad))
    assert code == 2
    assert f"{bad}:8: policies[0].unused_dayz: unknown key" in err


def test_import_list_and_reimport(config: Path, tmp_path: Path) -> None:
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "user,app,date,seconds\na@x.test,VISIO.EXE,2026-10-01,600\n"
        "b@x.test,Teams,2026-10-02,60\n,VISIO.EXE,2026-10-02,1\n"
    )
    code, out, err = invoke("usage", "import", str(usage), "--config", str(config))
    assert code == 0, err
    assert "2 events imported, 1 rejected" in out
    assert f"{usage}:4: missing user" in err
    code, out, _ = invoke("usage", "import", str(usage), "--config", str(config))
    assert code == 0 and "already imported" in out and "nothing changed" in out

    members = tmp_path / "members.csv"
    members.write_text("user,granted_at\na@x.test,2026-01-01\nb@x.test,\n")
    code, out, _ = invoke(
        "members", "import", str(members), "--policy", "visio", "--config", str(config)
    )
    assert code == 0 and "2 members (2 joined, 0 left)" in out
    code, out, _ = invoke(
        "members",
        "list",
        "--policy",
        "Visio",
        "--as-of",
        "2026-10-10",
        "--json",
        "--config",
        str(config),
    )
    rows = {r["user"]: r for r in json.loads(out)}
    assert rows["a@x.test"]["last_used"] == "2026-10-01"
    assert rows["a@x.test"]["minutes_in_window"] == 10.0
    assert rows["b@x.test"]["last_used"] is None
    assert rows["b@x.test"]["last_observed"] == "2026-10-02"


def test_unknown_policy_and_bad_file(config: Path, tmp_path: Path) -> None:
    members = tmp_path / "m.csv"
    members.write_text("user\na@x.test\n")
    code, _, err = invoke(
        "members", "import", str(members), "--policy", "Nope", "--config", str(config)
    )
    assert code == 2 and "no policy named 'Nope' (known: Visio)" in err
    bogus = tmp_path / "u.csv"
    bogus.write_text("this,is,not\n1,2,3\n")
    code, _, err = invoke("usage", "import", str(bogus), "--config", str(config))
    assert code == 1 and "not a usage CSV" in err and "nothing was imported" in err


def test_demo_runs_the_entra_loop_without_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store override in the environment must not pull the demo out of its directory.
    monkeypatch.setenv("RECLAIM_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    code, out, err = invoke("demo", "--data-dir", str(tmp_path / "demo"), "--users", "50")
    assert code == 0, err
    for name in ("Visio Plan 2", "Power BI Pro", "Microsoft 365 Copilot", "Project Plan 3"):
        assert f"{name}:" in out
    assert "usage events into sqlite:///" in out
    assert "Seats reclaimed:" in out and "Savings:" in out
    assert (tmp_path / "demo" / "reclaim.db").exists()
    assert not (tmp_path / "elsewhere.db").exists()
    monkeypatch.delenv("RECLAIM_DATABASE_URL")
    code, out, _ = invoke("config", "check", "--config", str(tmp_path / "demo" / "reclaim.yaml"))
    assert code == 0, out
    code, _, err = invoke("demo", "--data-dir", str(tmp_path / "demo"), "--users", "50")
    assert code == 2 and "already holds a demo" in err


def test_db_status_reports_revision(config: Path) -> None:
    code, out, _ = invoke("db", "status", "--config", str(config))
    assert code == 0 and "empty" in out and "behind" in out
    code, out, _ = invoke("db", "upgrade", "--config", str(config))
    from reclaim.store.engine import make_engine
    from reclaim.store.migrate import head_revision

    head = head_revision(make_engine("sqlite://"))
    assert code == 0 and f"empty → {head}" in out
    code, out, _ = invoke("db", "status", "--config", str(config))
    assert "up to date" in out
