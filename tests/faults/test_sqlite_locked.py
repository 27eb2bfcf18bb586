"""SQLite locked by another process: Reclaim waits for the lock instead of failing,
then does its work; the store stays whole."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO controls VALUES ('held-by-other', '1', 0, 'other')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def test_import_waits_for_another_process_holding_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    config = tmp_path / "reclaim.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n")
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    usage = tmp_path / "u.csv"
    usage.write_text("user,app,timestamp,seconds\nann@corp.example,Miro,2026-11-02T09:00:00Z,60\n")
    db = tmp_path / "data" / "reclaim.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = runner.invoke(app, ["usage", "import", str(usage), "--config", str(config)])
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert holder.returncode == 0  # the other process got its commit in, too
    assert waited > 1.0  # it did wait for the lock rather than fail or skip the write
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM usage_daily").fetchone()[0] == 1
        assert (
            conn.execute("SELECT count(*) FROM controls WHERE key='held-by-other'").fetchone()[0]
            == 1
        )
