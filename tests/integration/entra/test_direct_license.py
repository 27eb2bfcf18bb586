"""``remove_direct_license``: the opt-in removal of a direct (non-group) assignment of a
SKU the group grants, after the group removal, through the write gate, against the Graph
server. Dora holds E3 from the E3 group *and* directly; nobody else holds it directly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

from reclaim.domain.case import CaseState
from reclaim.services.restore import restore_case
from reclaim.store.leases import PAUSED, set_control
from reclaim.store.tables import directory_writes
from reclaim.testing.graph import GraphServer, ManualClock

from .conftest import CLIENT_SECRET, DORA, E3_GROUP, E3_SKU, UPNS
from .runner_world import SECRET_ENV, EntraWorld, build_entra_world, entra_policy

S = CaseState
ASSIGN = r"/users/[^/]+/assignLicense$"


@pytest.fixture
def make_world(
    server: GraphServer,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    made: list[EntraWorld] = []

    def build(*, opt_in: bool = True) -> EntraWorld:
        policy = entra_policy("E3", E3_GROUP, ask=False)
        if opt_in:
            policy = policy.replace(
                "workflow: entra_id", "workflow: entra_id\n    remove_direct_license: true"
            )
            assert "remove_direct_license: true" in policy
        world = build_entra_world(server, clock, db_url, tmp_path, policy)
        made.append(world)
        return world

    yield build
    for world in made:
        world.close()


def direct_e3(server: GraphServer, uid: str) -> bool:
    return any(
        s.sku_id == E3_SKU and s.assigned_by_group is None
        for s in server.tenant.users[uid].license_states
    )


def license_writes(world: EntraWorld) -> list[tuple[str, str | None]]:
    with world.ctx.engine.connect() as conn:
        rows = conn.execute(
            select(directory_writes.c.result, directory_writes.c.detail).where(
                directory_writes.c.action == "remove_license"
            )
        ).all()
    return [(r.result, r.detail) for r in rows]


def steps_of(world: EntraWorld, user: str) -> list[dict[str, Any]]:
    history = world.case(user).case.history
    return [s for e in history for s in cast(list[dict[str, Any]], e.data.get("steps", []))]


def test_opted_in_the_direct_seat_goes_after_the_group_removal(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world()
    assert direct_e3(server, DORA)
    world.cycle()
    stats = world.drain()
    assert stats.results() == {"removed": 5}
    (dora,) = [r for r in stats.reports if r.user == UPNS[DORA]]
    assert f"direct license removed: {E3_SKU}" in dora.detail
    assert "not given back by a restore" in dora.detail
    assert not direct_e3(server, DORA)
    posts = server.requests.find("POST", ASSIGN)
    assert len(posts) == 1 and DORA in posts[0].path
    assert license_writes(world) == [("done", E3_SKU)]  # only Dora's: one write
    steps = [s["step"] for s in steps_of(world, UPNS[DORA])]
    assert steps.index("Remove direct license") > steps.index("Remove from group")
    assert "Direct license check" not in steps  # acted on, not merely reported

    # A restore gives the membership back, not the direct assignment.
    restored = restore_case(
        world.ctx.engine,
        world.settings,
        world.case(UPNS[DORA]).id,
        now=world.clock() + dt.timedelta(minutes=1),
        by="admin",
        directories=world.directories(),
    )
    assert restored.result in ("restored", "already_member"), restored
    assert DORA in server.tenant.groups[E3_GROUP].members
    assert not direct_e3(server, DORA)


def test_off_by_default_the_direct_seat_is_reported_and_kept(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world(opt_in=False)
    world.cycle()
    assert world.drain().results() == {"removed": 5}
    assert direct_e3(server, DORA)
    assert server.requests.count("POST", ASSIGN) == 0
    assert license_writes(world) == []


def test_a_refused_license_removal_keeps_the_case_removed_and_says_why(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world()
    server.faults.fail_next(50, 403, method="POST", path=ASSIGN)
    world.cycle()
    stats = world.drain()
    assert stats.results() == {"removed": 5}  # the group removal stands
    (dora,) = [r for r in stats.reports if r.user == UPNS[DORA]]
    assert "direct license kept" in dora.detail
    stored = world.case(UPNS[DORA])
    assert stored.case.state is S.REMOVED
    assert stored.last_error is not None and "direct license kept" in stored.last_error
    assert direct_e3(server, DORA)
    assert [r for r, _ in license_writes(world)] == ["failed"]
    server.faults.clear()


def test_paused_before_the_license_write_sends_nothing(
    make_world: Any, server: GraphServer
) -> None:
    """The kill switch, switched on between Dora's group removal and her license
    removal, stops the second write: read again at the moment of the write."""
    world = make_world()
    world.cycle()
    directories = world.directories()
    engine = world.ctx.engine
    dora = UPNS[DORA].lower()
    seen = {"dora": False, "removed": False}

    def on_step(step: dict[str, Any]) -> None:
        if step["step"] == "Get user UUID from UPN" and step["input"].lower() == dora:
            if seen["removed"]:  # the fresh read right before the license write
                with engine.begin() as conn:
                    set_control(conn, PAUSED, "1", by="ops", now=0)
            seen["dora"] = True
        elif step["step"] == "Remove from group" and seen["dora"]:
            seen["removed"] = True

    original = directories.on_step

    def both(step: Any) -> None:
        original(step)
        on_step(step)

    directories.on_step = both
    stats = world.drain(directories)
    assert seen["removed"]
    assert server.requests.count("POST", ASSIGN) == 0
    assert direct_e3(server, DORA)
    (report,) = [r for r in stats.reports if r.user == UPNS[DORA]]
    assert report.result == "removed" and "direct license kept: paused" in report.detail
    assert license_writes(world) == []  # refused by the gate before anything was recorded
    with engine.begin() as conn:
        set_control(conn, PAUSED, "0", by="ops", now=0)
