"""The new commands end to end on SQLite: identities, osquery import and watch, sources."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from tests.integration.usage_sources.helpers import ALICE_SID, IDENTITIES
from tests.unit.usage_sources.osquery_lines import event, log

runner = CliRunner()
CONFIG = """\
data_dir: {data}
policies:
  - name: Visio
    apps: [Microsoft Visio, '*\\Office16\\VISIO.EXE']
    group: {{name: Visio users}}
    workflow: manual
    seat_cost: {{amount: 15}}
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


def test_identities_osquery_import_watch_and_sources(config: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text(IDENTITIES + "nobody,S-1-5-21-9\n")
    code, out, err = invoke("identities", "import", str(ids), "--config", str(config))
    assert code == 0 and "3 identities stored, 1 rejected" in out
    assert f"{ids}:5: not a UPN 'nobody'" in err

    hour_ago = int(time.time()) - 3600
    visio = r"C:\Program Files\Microsoft Office\root\Office16\VISIO.EXE"
    stranger = "S-1-5-21-1004336348-1177238915-682003330-2001"
    results = tmp_path / "osqueryd.results.log"
    results.write_bytes(
        log(
            event(
                "reclaim_userassist",
                {"path": visio, "last_execution_time": hour_ago, "sid": ALICE_SID},
            ),
            event(
                "reclaim_userassist",
                {"path": visio, "last_execution_time": hour_ago, "sid": stranger},
            ),
        )
    )
    code, out, err = invoke(
        "usage", "import", "--format", "osquery", str(results), "--config", str(config)
    )
    assert code == 0, err
    assert "2 lines: 1 new uses, 0 already recorded, 0 observations, 1 rejected" in out
    assert f"{results}:2: unknown SID {stranger}" in err
    assert f"unknown SIDs (import them: reclaim identities import): {stranger} (1)" in err

    code, out, _ = invoke("members", "list", "--policy", "Visio", "--json", "--config", str(config))
    assert code == 0 and json.loads(out) == []  # nobody in the group yet; the use is stored

    watched = tmp_path / "live.log"
    watched.write_bytes(
        log(
            event(
                "reclaim_userassist",
                {"path": visio, "last_execution_time": hour_ago + 60, "sid": ALICE_SID},
            )
        )
    )
    code, out, _ = invoke("usage", "watch", str(watched), "--once", "--config", str(config))
    assert code == 0 and "1 lines: 1 new uses" in out
    code, out, _ = invoke("usage", "watch", str(watched), "--once", "--config", str(config))
    assert code == 0 and "0 lines: 0 new uses" in out  # resumed where it stopped

    code, out, err = invoke("usage", "sources", "--json", "--check", "--config", str(config))
    assert code == 0, err
    (osquery,) = json.loads(out)
    assert osquery["name"] == "osquery" and osquery["status"] == "fresh"
    assert (osquery["rows_accepted"], osquery["rows_rejected"], osquery["users_observed"]) == (
        2,
        1,
        1,
    )


def test_osquery_pack_and_wrong_formats(config: Path, tmp_path: Path) -> None:
    code, out, _ = invoke("usage", "osquery-pack")
    assert code == 0 and "reclaim_userassist" in json.loads(out)["queries"]
    f = tmp_path / "x.log"
    f.write_text("{}\n")
    code, _, err = invoke("usage", "import", "--format", "xml", str(f), "--config", str(config))
    assert code == 2 and "csv, ndjson, osquery" in err
    csv = tmp_path / "usage.csv"
    csv.write_text("user,app,date\na@x.test,VISIO.EXE,2026-10-01\n")
    args = ("usage", "import", "--format", "osquery", str(csv), "--config", str(config))
    code, _, err = invoke(*args)
    assert code == 1 and "not an osquery results log" in err and "nothing was imported" in err
    code, _, err = invoke("usage", "watch", "--format", "csv", str(f), "--config", str(config))
    assert code == 2 and "--format must be osquery" in err
    code, _, err = invoke("usage", "pull", "--config", str(config))
    assert code == 2 and "no entra: section" in err
