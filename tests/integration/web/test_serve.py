"""``reclaim serve`` as a real process: the app on a loopback port, and by default the
scheduler and a worker in a background thread that stops cleanly with the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from reclaim.store.engine import make_engine
from reclaim.store.tables import leases

CONFIG = """\
data_dir: {data}
database: {{url: 'sqlite:///{data}/reclaim.db'}}
policies:
  - name: Miro
    apps: [Miro]
    group: {{name: "Miro users"}}
    workflow: manual
    seat_cost: {{amount: "8", currency: EUR}}
    schedule: "* * * * *"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "reclaim.yaml"
    config.write_text(CONFIG.format(data=data))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")} | {
        "RECLAIM_WEB_SECRET": "s" * 40
    }
    proc = subprocess.Popen(  # stopped by PID below
        [
            sys.executable,
            "-c",
            "from reclaim.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--config",
            str(config),
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"reclaim serve did not come up: {proc.communicate()[1][-2000:]}")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, stderr


@pytest.mark.slow
def test_serve_runs_the_scheduler_and_a_worker_in_process(tmp_path: Path) -> None:
    proc, _ = serve(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'reclaim.db'}")
    try:
        deadline = time.monotonic() + 20
        done = None
        while time.monotonic() < deadline and done is None:
            with engine.connect() as conn:
                done = conn.execute(
                    select(leases.c.tick_done).where(
                        leases.c.name == "cycle:Miro", leases.c.tick_done >= 0
                    )
                ).scalar()
            time.sleep(0.2)
        assert done is not None, "the in-process scheduler ran the policy's cycle"
    finally:
        code, stderr = stop(proc)
        engine.dispose()
    assert code == 0, stderr[-2000:]
    assert "started in this process" in stderr
    assert "worker " in stderr and " stopped" in stderr


@pytest.mark.slow
def test_serve_no_worker_only_serves(tmp_path: Path) -> None:
    proc, port = serve(tmp_path, "--no-worker")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json").status_code == 200
        time.sleep(1.0)
        engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'reclaim.db'}")
        with engine.connect() as conn:
            assert conn.execute(select(leases)).all() == []  # no scheduler here
        engine.dispose()
    finally:
        code, stderr = stop(proc)
    assert code == 0 and "worker" not in stderr
