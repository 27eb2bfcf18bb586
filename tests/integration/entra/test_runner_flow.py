"""The Entra ID workflow end to end: the real worker against the Graph server on loopback.

Every branch of the workflow: consent, ask_permission off, timeout with release, usage
resumed, already removed, on-prem-synced and dynamic groups, the awkward UPNs, and the
steps each case files in its history. The server's request log is the witness of what
reached Graph.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import update

from reclaim.domain.case import CaseState
from reclaim.services.cases import answer
from reclaim.store.directory_tables import directory_groups
from reclaim.testing.graph import GraphServer, ManualClock

from .conftest import (
    ALICE,
    CLIENT_SECRET,
    DOLLAR,
    DORA,
    DYNAMIC_GROUP,
    E3_GROUP,
    GUEST,
    OBRIEN,
    SYNCED_GROUP,
    UPNS,
)
from .runner_world import SECRET_ENV, EntraWorld, build_entra_world, entra_policy

S = CaseState
E3_IDS = (ALICE, OBRIEN, DOLLAR, GUEST, DORA)


@pytest.fixture
def make_world(
    server: GraphServer,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """Build the world with the given policies (default: E3, asking first)."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    made: list[EntraWorld] = []

    def build(*policies: str, **kw: Any) -> EntraWorld:
        world = build_entra_world(server, clock, db_url, tmp_path, *policies, **kw)
        made.append(world)
        return world

    yield build
    for world in made:
        world.close()


def steps_of(world: EntraWorld, user: str) -> list[dict[str, Any]]:
    """Every directory step filed in the user's case history, in order."""
    history = world.case(user).case.history
    return [s for e in history for s in cast(list[dict[str, Any]], e.data.get("steps", []))]


def deletes(server: GraphServer, uid: str, *, ok: bool | None = True) -> int:
    return len(server.requests.removals_of(E3_GROUP, uid, ok=ok))


def test_consent_removes_with_one_delete_and_the_history_shows_each_step(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world()
    world.cycle()
    assert world.drain().results() == {"asked": 5}
    assert server.requests.removals(ok=None) == []  # asking writes nothing to Graph
    for uid in (ALICE, GUEST):
        case = world.case(UPNS[uid])
        answer(world.ctx.engine, world.settings, case.id, keep=False, now=world.clock())
    keep = world.case(UPNS[OBRIEN])
    answer(world.ctx.engine, world.settings, keep.id, keep=True, now=world.clock())
    world.cycle()
    assert world.drain().results() == {"removed": 2}
    for uid in (ALICE, GUEST):
        assert world.case(UPNS[uid]).case.state is S.REMOVED
        assert deletes(server, uid) == 1 and deletes(server, uid, ok=None) == 1
        assert not server.is_member(uid, E3_GROUP)
    assert len(server.requests.removals(ok=None)) == 2  # the others were never touched
    assert world.case(UPNS[OBRIEN]).case.state is S.ANSWERED_KEEP
    history = world.case(UPNS[ALICE]).case.history
    asked = next(e for e in history if e.cause == "asked")
    assert [s["step"] for s in asked.data["steps"]] == [
        "Get user UUID from UPN",
        "Check membership",
    ]
    removed = history[-1]
    assert removed.cause == "removed"
    names = [s["step"] for s in removed.data["steps"]]
    assert names[-1] == "Remove from group" and "Read group" in names
    last = removed.data["steps"][-1]
    assert (last["input"], last["outcome"]) == (E3_GROUP, "204")
    assert isinstance(last["ms"], int) and last["ms"] >= 0


def test_ask_permission_off_removes_guest_apostrophe_and_dollar_upns(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world(entra_policy("E3", E3_GROUP, ask=False))
    world.cycle()
    assert world.drain().results() == {"removed": 5}
    for uid in E3_IDS:
        assert deletes(server, uid) == 1, UPNS[uid]
        case = world.case(UPNS[uid]).case
        assert (case.state, case.history[-1].cause) == (S.REMOVED, "removed")
    assert server.requests.refused_user_deletes() == []  # always .../$ref, never the user
    dora = steps_of(world, UPNS[DORA])
    direct = [s for s in dora if s["step"] == "Direct license check"]
    assert len(direct) == 1 and "kept; report only" in direct[0]["outcome"]
    kept = [s for s in server.tenant.users[DORA].license_states if s.assigned_by_group is None]
    assert kept, "the direct seat must not be touched"


def test_each_case_files_only_its_own_steps(make_world: Any) -> None:
    world = make_world(entra_policy("E3", E3_GROUP, ask=False))
    world.cycle()
    assert world.drain(batch=2).results() == {"removed": 5}
    for uid in E3_IDS:
        steps = steps_of(world, UPNS[uid])
        looked_up = {s["input"] for s in steps if s["step"] == "Get user UUID from UPN"}
        assert looked_up == {UPNS[uid].lower()}
        assert {s["outcome"].split()[0] for s in steps if s["step"].startswith("Get user")} == {uid}


def test_workers_in_threads_sharing_one_directory_keep_steps_apart(
    make_world: Any, server: GraphServer, db_url: str
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("concurrent writers: PostgreSQL (SQLite serialises them anyway)")
    world = make_world(entra_policy("E3", E3_GROUP, ask=False))
    world.cycle()
    shared = world.directories()
    workers = [world.worker(shared, batch=1, owner=f"w{n}") for n in range(3)]
    results: list[Any] = []
    threads = [threading.Thread(target=lambda w=w: results.append(w.drain())) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    shared.close()
    assert sum(r.results()["removed"] for r in results) == 5
    for uid in E3_IDS:
        assert deletes(server, uid) == 1
        inputs = {s["input"] for s in steps_of(world, UPNS[uid]) if s["step"].startswith("Get")}
        assert inputs == {UPNS[uid].lower()}


def test_timeout_with_release_removes(make_world: Any, server: GraphServer) -> None:
    world = make_world(entra_policy("E3", E3_GROUP, default="release"))
    world.cycle()
    assert world.drain().results() == {"asked": 5}
    for _ in range(4):  # reminders on days 3 and 6, the timeout on day 10, then the plan
        world.clock.advance(days=3, hours=1)
        world.cycle()
        world.drain()
    for uid in E3_IDS:
        case = world.case(UPNS[uid]).case
        assert case.state is S.REMOVED, (UPNS[uid], case.state)
        assert "no_response" in [e.cause for e in case.history]
        assert deletes(server, uid) == 1


def test_usage_resumed_cancels_and_nothing_is_sent(make_world: Any, server: GraphServer) -> None:
    world = make_world()
    world.cycle()
    world.drain()
    alice = world.case(UPNS[ALICE])
    answer(world.ctx.engine, world.settings, alice.id, keep=False, now=world.clock())
    world.clock.advance(days=1)  # a use on the answer day itself does not count
    world.use_excel(UPNS[ALICE], world.clock().date())
    world.cycle()
    world.drain()
    case = world.case(UPNS[ALICE]).case
    assert case.state is S.CANCELLED
    assert case.history[-1].cause == "usage_resumed"
    assert deletes(server, ALICE, ok=None) == 0
    assert server.is_member(ALICE, E3_GROUP)


def test_member_gone_when_the_delete_lands_is_already_removed(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world(entra_policy("E3", E3_GROUP, ask=False))
    world.cycle()
    # The removals go in one $batch (after those resolving the UPNs and confirming the
    # memberships): it is held at the server; meanwhile someone removes Alice by hand.
    rule = server.faults.add_latency(1.0, count=3, path=r"/\$batch$")

    def remove_by_hand() -> None:
        for _ in range(600):
            if rule.fired == 3:
                server.tenant.remove_member(E3_GROUP, ALICE)
                return
            threading.Event().wait(0.01)

    helper = threading.Thread(target=remove_by_hand)
    helper.start()
    stats = world.drain()
    helper.join()
    assert stats.results() == {"removed": 4, "already_removed": 1}
    case = world.case(UPNS[ALICE]).case
    assert (case.state, case.history[-1].cause) == (S.REMOVED, "already_removed")
    assert [r.status for r in server.requests.removals_of(E3_GROUP, ALICE, ok=None)] == [404]
    remove = [s for s in steps_of(world, UPNS[ALICE]) if s["step"] == "Remove from group"]
    assert remove[-1]["outcome"] == "already done"


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        pytest.param(SYNCED_GROUP, "onprem_ad", id="synced"),
        pytest.param(DYNAMIC_GROUP, "membership rule", id="dynamic"),
    ],
)
def test_unwritable_groups_fail_with_the_way_forward_and_send_nothing(
    make_world: Any, server: GraphServer, group: str, expected: str
) -> None:
    world = make_world(entra_policy("Locked", group, ask=False))
    # The group turned synced/dynamic after the last directory sync (which the plan
    # judges by, tests/integration/entra/test_plan_flags.py): the adapter still refuses.
    with world.ctx.engine.begin() as conn:
        conn.execute(update(directory_groups).values(is_synced=False, is_dynamic=False))
    assert world.cycle("Locked").opened == [UPNS[ALICE]]
    stats = world.drain()
    assert stats.results() == {"failed": 1}
    stored = world.case(UPNS[ALICE])
    assert stored.case.state is S.FAILED
    assert stored.last_error is not None and expected in stored.last_error
    assert server.requests.removals(ok=None) == []
    assert server.requests.count("DELETE") == 0
    read = [s for s in steps_of(world, UPNS[ALICE]) if s["step"] == "Read group"]
    assert read and ("synced" in read[0]["outcome"] or "dynamic" in read[0]["outcome"])
