"""Disk full on the data directory: a clear error, nothing half-applied, no corruption.

The data directory is a small tmpfs mounted for the test (root only; elsewhere the
test is skipped and says why). The store first takes one import that fits, then one
that cannot: the second must fail with a message that says the disk is full, leave no
trace of itself, and leave the first import intact (``PRAGMA integrity_check``).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app

runner = CliRunner()
SIZE = "3m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def usage_csv(path: Path, users: int, prefix: str) -> Path:
    with path.open("w") as fh:
        fh.write("user,app,timestamp,seconds\n")
        for i in range(users):
            for day in (3, 4, 5):
                fh.write(f"{prefix}{i:06d}@corp.example,VISIO.EXE,2026-11-{day:02d}T09:00:00Z,60\n")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # An exception that escaped the CLI is what a person would see as a traceback.
        return 1, result.stdout, "Traceback: " + repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_import_on_a_full_disk_fails_clearly_and_keeps_the_store_whole(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    config = tmp_path / "reclaim.yaml"
    config.write_text(f"data_dir: {small_disk}\n")
    small = usage_csv(tmp_path / "small.csv", 200, "a")
    big = usage_csv(tmp_path / "big.csv", 60_000, "b")  # far more than 3 MB of roll-ups

    code, out, err = invoke("usage", "import", str(small), "--config", str(config))
    assert code == 0, err

    code, out, err = invoke("usage", "import", str(big), "--config", str(config))

    assert code != 0
    assert "full" in err or "no space left" in err, err
    assert "free space" in err  # and what to do about it
    assert "Traceback" not in err + out
    db = small_disk / "reclaim.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        files = [r[0] for r in conn.execute("SELECT file_name FROM imports")]
        users = conn.execute("SELECT count(*) FROM users WHERE upn LIKE 'b%'").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM usage_daily").fetchone()[0]
    assert files == [str(small)] or [Path(f).name for f in files] == ["small.csv"]
    assert users == 0  # nothing of the failed import is left
    assert rows == 200 * 3
