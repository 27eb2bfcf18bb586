"""PostgreSQL restarted in the middle of an import: the import fails with a clear
error, leaves nothing behind, and the same file imports cleanly afterwards.

The test runs its own PostgreSQL (scripts/pg.sh, a private folder and port) so that
restarting it disturbs no other test; it is stopped by its PID at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import peers_required

ROOT = Path(__file__).resolve().parents[2]
PG_SH = ROOT / "scripts" / "pg.sh"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePg:
    def __init__(self) -> None:
        # Not under pytest's tmp_path: as root, PostgreSQL runs as 'postgres', which
        # must be able to reach its folder.
        self.dir = Path(tempfile.mkdtemp(prefix="reclaim-pgfault-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.port = _free_port()
        self.url = ""

    def start(self) -> None:
        done = subprocess.run(
            ["bash", str(PG_SH), "start", str(self.dir / "pg"), str(self.port)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            message = f"cannot start PostgreSQL: {done.stderr.strip()[:300]}"
            if peers_required():
                pytest.fail(message)
            pytest.skip(message)
        self.url = done.stdout.strip()

    def crash_stop(self) -> None:
        """'Fast' shutdown (SIGINT): sessions are cut off mid-transaction."""
        pid = int((self.dir / "pg" / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        for _ in range(300):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise AssertionError("PostgreSQL did not stop")

    def stop(self) -> None:
        subprocess.run(["bash", str(PG_SH), "stop", str(self.dir / "pg")], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePg]:
    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        message = "PostgreSQL is not installed (scripts/install-test-deps.sh)"
        if peers_required():
            pytest.fail(message)
        pytest.skip(message)
    pg = PrivatePg()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def big_usage_file(path: Path, users: int = 20_000, days: int = 30) -> int:
    total = 0
    with path.open("w") as fh:
        fh.write("user,app,timestamp,seconds\n")
        for day in range(1, days + 1):
            for u in range(users):
                fh.write(f"u{u}@corp.example,VISIO.EXE,2026-10-{day:02d}T09:00:00Z,60\n")
                total += 60
    return total


def reclaim(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")}
    return subprocess.run(
        [str(Path(sys.executable).with_name("reclaim")), *args, "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip


def test_import_survives_a_postgresql_restart(private_pg: PrivatePg, tmp_path: Path) -> None:
    config = tmp_path / "reclaim.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ndatabase:\n  url: {private_pg.url}\n")
    assert reclaim(config, "db", "upgrade").returncode == 0
    usage = tmp_path / "usage.csv"
    expected = big_usage_file(usage)

    importer = subprocess.Popen(
        [str(Path(sys.executable).with_name("reclaim")), "usage", "import", str(usage),
         "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")},
    )  # fmt: skip
    watcher = create_engine(private_pg.url, isolation_level="AUTOCOMMIT")
    try:
        # Wait until the import is inside its transaction, then cut the server.
        for _ in range(600):
            with watcher.connect() as conn:
                busy = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                        "'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                        " AND query ILIKE '%usage_daily%'"
                    )
                ).scalar_one()
            if busy:
                break
            assert importer.poll() is None, "the import ended before the restart"
            time.sleep(0.05)
        watcher.dispose()
        private_pg.crash_stop()
        _, err = importer.communicate(timeout=300)
    finally:
        if importer.poll() is None:
            importer.kill()
    private_pg.start()

    assert importer.returncode != 0
    assert "database is not available" in err and "run the command again" in err, err
    assert "Traceback" not in err
    engine = create_engine(private_pg.url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM imports")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM usage_daily")).scalar_one() == 0

    again = reclaim(config, "usage", "import", str(usage))

    assert again.returncode == 0, again.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(seconds) FROM usage_daily")).scalar_one() == expected
        assert conn.execute(text("SELECT count(*) FROM imports")).scalar_one() == 1
    engine.dispose()
