"""Two worker processes against one PostgreSQL database: every case processed once."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from reclaim.store.leases import claim_tick, finish_tick
from reclaim.store.tables import cases, directory_writes

from .conftest import NOW, import_group, import_usage, make_settings, open_store, policy_yaml

DAY = dt.timedelta(days=1)
N = 1000


@pytest.mark.slow
@pytest.mark.postgres
def test_two_worker_processes_remove_each_of_1000_users_exactly_once(
    pg_url: str, tmp_path: Path
) -> None:
    policy = policy_yaml("Visio", ask=False, cap=N, percent=100)
    settings = make_settings(pg_url, tmp_path / "data", policy)
    ctx = open_store(settings)
    idle = [f"idle{i:04d}@x.test" for i in range(N)]
    busy = [f"busy{i:04d}@x.test" for i in range(N)]  # keeps removals under half the group
    seen = [NOW.date() - 100 * DAY, NOW.date() - 50 * DAY, NOW.date() - DAY]
    events = [(u, "OUTLOOK.EXE", d, 60) for u in idle + busy for d in seen]
    events += [(u, "VISIO.EXE", NOW.date() - DAY, 600) for u in busy]
    import_usage(ctx.engine, tmp_path, events)
    import_group(ctx, tmp_path, "Visio", {u: NOW.date() - 300 * DAY for u in idle + busy})
    from reclaim.services.cycle import run_cycle

    outcome = run_cycle(ctx.engine, settings=settings, policy=settings.policy("Visio"), now=NOW)
    assert outcome.authorized == N
    with ctx.engine.begin() as conn:  # no scheduled cycle in the workers: only due cases
        claim_tick(conn, "cycle:Visio", tick=2**40, owner="test", now=0, ttl=1)
        finish_tick(conn, "cycle:Visio", tick=2**40, owner="test")
    config = tmp_path / "reclaim.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\ndatabase: {{url: '{pg_url}'}}\npolicies:{policy}"
    )
    log = tmp_path / "directory.log"
    command = [
        sys.executable,
        "-m",
        "reclaim.testing.recording_directory",
        "--config",
        str(config),
        "--log",
        str(log),
    ]
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = []
    for w in workers:
        out, err = w.communicate(timeout=240)
        assert w.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    removals = Counter(
        json.loads(line)["user"] for line in log.read_text().splitlines() if '"remove"' in line
    )
    assert len(removals) == N and set(removals.values()) == {1}  # each exactly once
    assert sorted(removals) == idle
    assert all(r["results"].get("removed", 0) > 0 for r in results)  # both did work
    assert sum(r["results"]["removed"] for r in results) == N
    with ctx.engine.connect() as conn:
        grouped = conn.execute(select(cases.c.state, func.count()).group_by(cases.c.state))
        states: dict[str, int] = {str(state): int(n) for state, n in grouped}
        sends = conn.execute(select(func.max(directory_writes.c.sends), func.count())).one()
    assert states == {"removed": N}
    assert tuple(sends) == (1, N)
    ctx.engine.dispose()
