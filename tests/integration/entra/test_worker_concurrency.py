"""A worker running several cases at once (``concurrency``), against the Graph server.

The cases overlap their Graph waits in threads; these tests check what must not change
for it: one DELETE per consented seat, each case's history holding only its own steps,
a stop (credentials revoked, or SIGTERM) leaving no case half-done or still leased, and
a plan's cap counted and recorded under one lock by concurrent writers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, select

from reclaim.domain.case import CaseState
from reclaim.store.plans import lock_plan
from reclaim.store.tables import cases, plans
from reclaim.testing.graph import GraphServer, ManualClock
from reclaim.workflows.entra_id import REMOVE
from tests.faults.answers import all_cases, record_answers
from tests.faults.entra_world import GROUP, build_kill_world
from tests.integration.entra.conftest import CLIENT_ID, CLIENT_SECRET
from tests.integration.entra.runner_world import SECRET_ENV, EntraWorld

S = CaseState
N = 40  # idle members: five rounds of eight threads


@pytest.fixture
def make_world(
    server: GraphServer,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """A tenant with ``N`` idle E3 members (and as many busy ones) synced into a store."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    made: list[EntraWorld] = []

    def build(*, ask: bool) -> EntraWorld:
        world = build_kill_world(server, clock, db_url, tmp_path, N, ask=ask)
        made.append(world)
        world.cycle()
        return world

    yield build
    for world in made:
        world.close()


def upn_to_id(world: EntraWorld) -> dict[str, str]:
    return {u.user_principal_name.lower(): u.id for u in world.server.tenant.users.values()}


def own_steps_only(world: EntraWorld) -> None:
    """Each case's history names only its own user in its Graph look-ups."""
    ids = upn_to_id(world)
    for stored in all_cases(world.ctx.engine):
        steps = [
            s
            for e in stored.case.history
            for s in cast(list[dict[str, Any]], e.data.get("steps", []))
        ]
        looked_up = {s["input"] for s in steps if s["step"] == "Get user UUID from UPN"}
        assert looked_up <= {stored.case.user.lower()}, (stored.case.user, looked_up)
        found = {s["outcome"].split()[0] for s in steps if s["step"] == "Get user UUID from UPN"}
        assert found <= {ids[stored.case.user.lower()]}


def no_lease_left(engine: Engine) -> None:
    with engine.connect() as conn:
        held = conn.execute(select(cases.c.id).where(cases.c.lease_owner.is_not(None))).all()
    assert held == [], "a stopped pass must give back every lease it holds"


def test_concurrent_pass_removes_each_consented_seat_once(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world(ask=True)
    assert world.drain(concurrency=8).results() == {"asked": N}
    assert server.requests.removals(ok=None) == []
    answers = record_answers(world.ctx.engine, world.settings, now=world.clock(), seed=5)
    released = [a for a in answers if not a.keep]
    assert 0 < len(released) < N
    world.cycle()

    stats = world.drain(concurrency=8)

    assert stats.results() == {"removed": len(released)}
    ids = upn_to_id(world)
    for a in answers:
        deletes = server.requests.removals_of(GROUP, ids[a.user.lower()], ok=None)
        assert len(deletes) == (0 if a.keep else 1), a.user
        state = world.case(a.user).case.state
        assert state is (S.ANSWERED_KEEP if a.keep else S.REMOVED), (a.user, state)
    own_steps_only(world)
    no_lease_left(world.ctx.engine)


def test_revoked_credentials_halt_the_pass_and_nothing_is_half_done(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world(ask=False)
    landed: list[dict[str, Any]] = []

    def revoke_after_ten(step: dict[str, Any]) -> None:
        if step["step"] == REMOVE and step["outcome"] == "204":
            landed.append(step)
            if len(landed) == 10:
                server.disable_client(CLIENT_ID)

    # Groups of 2 removals (one $batch each): several groups are in flight when the
    # credentials go, as cases are with the default group of 20 on a larger tenant.
    stats = world.drain(world.directories(observer=revoke_after_ten), concurrency=4, group_size=2)

    assert stats.stops and all("disabled" in s for s in stats.stops)
    results = stats.results()
    # The cases in flight when the credentials went finish (their DELETE landed or was
    # refused); no case starts after the stop.
    assert 10 <= results["removed"] <= 10 + 3 * 2
    assert sum(results.values()) < N
    everyone = all_cases(world.ctx.engine)
    removed = [c for c in everyone if c.case.state is S.REMOVED]
    assert len(removed) == results["removed"] == len(server.requests.removals())
    ids = upn_to_id(world)
    for stored in everyone:
        if stored.case.state is S.REMOVED:
            continue
        assert stored.case.state in (S.CANDIDATE, S.REMOVAL_PENDING), stored.case.state
        assert server.is_member(ids[stored.case.user.lower()], GROUP)
    no_lease_left(world.ctx.engine)


def test_stop_lets_the_cases_in_hand_finish_and_gives_the_rest_back(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world(ask=False)

    def stop_after_six(step: dict[str, Any]) -> None:
        if step["step"] == REMOVE and len(server.requests.removals()) >= 6:
            worker.stop()

    worker = world.worker(world.directories(observer=stop_after_six), concurrency=4, group_size=2)
    try:
        stats = worker.drain()
    finally:
        worker.close()

    removed = stats.results()["removed"]
    assert 6 <= removed <= 6 + 3 * 2 and stats.stops == []
    assert len(server.requests.removals(ok=None)) == removed
    assert sum(c.case.state is S.REMOVED for c in all_cases(world.ctx.engine)) == removed
    no_lease_left(world.ctx.engine)
    # The next pass picks up where this one stopped, and removes each seat once.
    assert world.drain(concurrency=4).results() == {"removed": N - removed}
    assert len(server.requests.removals(ok=None)) == N


def test_cap_checks_of_one_plan_take_turns(engine: Engine) -> None:
    """Two writers counting removals against one plan's cap: the second waits for the
    first to record its write (PostgreSQL row lock; SQLite's writers always take turns)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite: BEGIN IMMEDIATE already serialises writers (store/engine.py)")
    with engine.begin() as conn:
        plan_id = conn.execute(
            plans.insert()
            .values(
                kind="run",
                policies="E3",
                as_of=0,
                created_at=0,
                content='{"policies": []}',
                content_hash="0" * 64,
                status="approved",
            )
            .returning(plans.c.id)
        ).scalar_one()
    first_holds = threading.Event()
    second_done = threading.Event()

    def second() -> None:
        first_holds.wait(10)
        with engine.begin() as conn:
            lock_plan(conn, plan_id)
        second_done.set()

    other = threading.Thread(target=second)
    other.start()
    with engine.begin() as conn:
        lock_plan(conn, plan_id)
        first_holds.set()
        assert not second_done.wait(0.5), "the second writer did not wait for the lock"
    other.join(10)
    assert second_done.is_set()


@pytest.mark.parametrize("group_size", [1, 5])
def test_a_worker_leases_only_the_cases_it_has_threads_for(
    make_world: Any, server: GraphServer, group_size: int
) -> None:
    """What a killed worker strands (until the leases run out) is bounded by its
    threads and the removals each sends together: it never holds leases on cases it
    has not started."""
    world = make_world(ask=False)
    leased: list[int] = []

    def count_leases(step: dict[str, Any]) -> None:
        with world.ctx.engine.connect() as conn:
            held = conn.execute(select(cases.c.id).where(cases.c.lease_owner == worker.owner))
            leased.append(len(held.all()))

    worker = world.worker(
        world.directories(observer=count_leases), concurrency=4, group_size=group_size
    )
    try:
        assert worker.drain().results() == {"removed": N}
    finally:
        worker.close()
    assert 4 * group_size < N  # else the bound below could not be broken
    assert leased and max(leased) <= 4 * group_size
    no_lease_left(world.ctx.engine)
