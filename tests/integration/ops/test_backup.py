"""``reclaim db backup``: an online copy of the SQLite store that is whole or absent."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.ops.backup import BackupError, backup_sqlite
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.tables import users

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(users), [{"upn": f"u{i}@corp.example", "first_seen": 0} for i in range(5000)]
        )
    return engine


def count_users(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])


def test_backup_while_another_connection_writes(store: Engine, tmp_path: Path) -> None:
    stop = threading.Event()

    def keep_writing() -> None:
        n = 0
        while not stop.is_set():
            with store.begin() as conn:
                conn.execute(insert(users).values(upn=f"late{n}@corp.example", first_seen=0))
            n += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        size = backup_sqlite(store, tmp_path / "copy.db")
    finally:
        stop.set()
        writer.join()
    copied = count_users(tmp_path / "copy.db")
    with store.connect() as conn:
        now = conn.execute(select(func.count()).select_from(users)).scalar_one()
    assert size == (tmp_path / "copy.db").stat().st_size
    assert 5000 <= copied <= now  # a consistent snapshot from some moment of the run
    with sqlite3.connect(tmp_path / "copy.db") as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not (tmp_path / "copy.db.partial").exists()


def test_backup_refuses_to_overwrite(store: Engine, tmp_path: Path) -> None:
    target = tmp_path / "exists.db"
    target.write_bytes(b"keep me")
    with pytest.raises(BackupError, match="already exists"):
        backup_sqlite(store, target)
    assert target.read_bytes() == b"keep me"


def test_backup_of_postgresql_points_to_pg_dump() -> None:
    engine = make_engine("postgresql+psycopg://u@127.0.0.1:1/db")
    with pytest.raises(BackupError, match="pg_dump"):
        backup_sqlite(engine, Path("/nonexistent/x.db"))


def test_cli_backup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    config = tmp_path / "reclaim.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n")
    assert runner.invoke(app, ["db", "upgrade", "--config", str(config)]).exit_code == 0
    result = runner.invoke(app, ["db", "backup", str(tmp_path / "b.db"), "--config", str(config)])
    assert result.exit_code == 0, result.stderr
    assert "integrity check ok" in result.stdout
    again = runner.invoke(app, ["db", "backup", str(tmp_path / "b.db"), "--config", str(config)])
    assert again.exit_code == 2 and "already exists" in again.stderr
