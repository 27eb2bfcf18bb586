"""Claims and leases: one executor per case, one cycle per schedule tick."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from sqlalchemy import Engine, func, insert, select

from reclaim.domain.case import open_case
from reclaim.runner.scheduler import latest_tick, run_due_cycles
from reclaim.store import case_claims as claims
from reclaim.store import cases as store
from reclaim.store.leases import claim_tick, finish_tick, tick_done
from reclaim.store.tables import plans, policies, users

from .conftest import NOW, policy_yaml
from .world import build_world


def _due_cases(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(policies).values(id=1, name="P", definition="{}", enabled=True, updated=0)
        )
        conn.execute(
            insert(users), [{"id": i, "upn": f"u{i}@x", "first_seen": 0} for i in range(1, n + 1)]
        )
        for i in range(1, n + 1):
            case = open_case(policy="P", user=f"u{i}@x", cycle=1, at=NOW)
            store.insert_case(
                conn,
                case,
                policy_id=1,
                user_id=i,
                verdict="unused",
                reason="",
                last_used=None,
                next_due_at=int(NOW.timestamp()),
            )


def test_concurrent_claims_never_share_a_case(engine: Engine) -> None:
    _due_cases(engine, 200)
    now = int(NOW.timestamp())
    got: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    def claimer(owner: str) -> None:
        while True:
            with engine.begin() as conn:
                ids = claims.claim_due(conn, owner=owner, now=now, lease_seconds=600, limit=7)
            if not ids:
                return
            got[owner] += ids

    threads = [threading.Thread(target=claimer, args=(o,)) for o in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for ids in got.values() for i in ids]
    assert sorted(claimed) == list(range(1, 201))  # every case once, none twice


def test_a_lease_that_runs_out_can_be_claimed_again(engine: Engine) -> None:
    _due_cases(engine, 3)
    now = int(NOW.timestamp())
    with engine.begin() as conn:
        assert claims.claim_due(conn, owner="dead", now=now, lease_seconds=60, limit=10) == [
            1,
            2,
            3,
        ]
    with engine.begin() as conn:
        assert claims.claim_due(conn, owner="live", now=now + 30, lease_seconds=60, limit=10) == []
    with engine.begin() as conn:
        assert claims.claim_due(conn, owner="live", now=now + 61, lease_seconds=60, limit=10) == [
            1,
            2,
            3,
        ]
        claims.release(conn, [1, 2], owner="live")
        assert claims.claim_due(conn, owner="other", now=now + 62, lease_seconds=60, limit=10) == [
            1,
            2,
        ]


def test_each_tick_is_claimed_once_and_a_dead_claim_runs_out(engine: Engine) -> None:
    now = int(NOW.timestamp())
    tick = now - 3600
    with engine.begin() as conn:
        assert claim_tick(conn, "cycle:P", tick=tick, owner="a", now=now, ttl=900)
        assert not claim_tick(conn, "cycle:P", tick=tick, owner="b", now=now, ttl=900)
    with engine.begin() as conn:  # a died; its lease runs out; b runs the same tick
        assert claim_tick(conn, "cycle:P", tick=tick, owner="b", now=now + 901, ttl=900)
        finish_tick(conn, "cycle:P", tick=tick, owner="b")
        assert tick_done(conn, "cycle:P") == tick
        assert not claim_tick(conn, "cycle:P", tick=tick, owner="c", now=now + 902, ttl=900)
        assert claim_tick(conn, "cycle:P", tick=tick + 86400, owner="c", now=now + 86400, ttl=900)


def test_latest_tick_follows_the_schedule_in_the_configured_zone() -> None:
    at = dt.datetime(2026, 11, 10, 8, 0, tzinfo=dt.UTC)  # Tuesday
    assert latest_tick("0 6 * * 1-5", at) == dt.datetime(2026, 11, 10, 6, 0, tzinfo=dt.UTC)
    assert latest_tick("0 6 * * 1-5", at.replace(hour=6)) == at.replace(hour=6)  # at the tick
    assert latest_tick("0 9 * * 1-5", at) == dt.datetime(2026, 11, 9, 9, 0, tzinfo=dt.UTC)
    paris = latest_tick("0 9 * * *", at, tz="Europe/Paris")  # 09:00 in Paris is 08:00 UTC
    assert paris == dt.datetime(2026, 11, 10, 8, 0, tzinfo=dt.UTC)


def test_workers_racing_for_a_tick_run_one_cycle(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio"), unused=2, active=1)
    barrier = threading.Barrier(3)
    outcomes: list[int] = []

    def worker(owner: str) -> None:
        barrier.wait()
        done = run_due_cycles(world.ctx.engine, settings=world.ctx.settings, now=NOW, owner=owner)
        outcomes.append(len(done))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [0, 0, 1]
    assert (
        run_due_cycles(world.ctx.engine, settings=world.ctx.settings, now=NOW, owner="late") == []
    )
    with world.ctx.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(plans)).scalar() == 1
    assert len(world.cases()) == 2
