"""Grouped removals (services/group_removal.py): a policy's due removals in $batch DELETEs.

The real worker against the Graph server on loopback; the server's request log shows
what reached Graph, the store what Reclaim recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

from reclaim.config import SafetySettings
from reclaim.domain.case import CaseState
from reclaim.domain.policy import Workflow
from reclaim.services.runtime import REFUSED_WAIT
from reclaim.store.leases import PAUSED, set_control
from reclaim.store.tables import cases, directory_writes
from reclaim.testing.graph import GraphServer, ManualClock
from reclaim.workflows.directory import Directories
from reclaim.workflows.entra_id import EntraDirectories, EntraDirectory
from reclaim.workflows.gate import WriteGate

from .conftest import ALICE, CLIENT_SECRET, DOLLAR, DORA, E3_GROUP, GUEST, OBRIEN, UPNS
from .runner_world import SECRET_ENV, EntraWorld, build_entra_world, entra_policy

S = CaseState
E3_IDS = (ALICE, OBRIEN, DOLLAR, GUEST, DORA)
REMOVE_PATH = r"/members/[^/]+/\$ref$"


@pytest.fixture
def world(
    server: GraphServer,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[EntraWorld]:
    """E3 removing without asking (as if every member had consented), cycle run."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    built = build_entra_world(
        server, clock, db_url, tmp_path, entra_policy("E3", E3_GROUP, ask=False)
    )
    try:
        yield built
    finally:
        built.close()


def delete_batches(server: GraphServer) -> list[set[str | None]]:
    """The $batch requests that carried DELETEs, each as the set of its parts' batch id."""
    found: dict[str, set[str | None]] = {}
    for r in server.requests.find("DELETE", REMOVE_PATH, batch_part=True):
        found.setdefault(str(r.batch_id), set()).add(r.part_id)
    return list(found.values())


def writes(world: EntraWorld) -> dict[int, tuple[int, str]]:
    with world.ctx.engine.connect() as conn:
        rows = conn.execute(
            select(directory_writes.c.case_id, directory_writes.c.sends, directory_writes.c.result)
        ).all()
    return {int(r[0]): (int(r[1]), str(r[2])) for r in rows}


def test_due_removals_go_together_in_one_batch_and_each_case_keeps_its_steps(
    world: EntraWorld, server: GraphServer
) -> None:
    world.cycle()
    server.requests.clear()
    assert world.drain(concurrency=4).results() == {"removed": 5}
    assert [len(parts) for parts in delete_batches(server)] == [5]
    assert server.requests.count("DELETE", batch_part=False) == 0
    # Membership confirmed for all five in one $batch of reads, none read alone.
    assert server.requests.count("GET", r"/memberOf", batch_part=True) == 5
    assert server.requests.count("GET", r"/memberOf", batch_part=False) == 0
    for uid in E3_IDS:
        assert len(server.requests.removals_of(E3_GROUP, uid, ok=None)) == 1
        assert not server.is_member(uid, E3_GROUP)
        stored = world.case(UPNS[uid])
        assert stored.case.state is S.REMOVED and stored.lease_owner is None
        assert writes(world)[stored.id] == (1, "done")
        removed = stored.case.history[-1]
        assert removed.cause == "removed"
        steps = cast(list[dict[str, Any]], removed.data["steps"])
        names = [s["step"] for s in steps]
        assert names[:4] == [
            "Get user UUID from UPN",
            "Check membership",
            "Read group",
            "Remove from group",
        ]
        assert steps[0]["input"] == UPNS[uid].lower() and steps[0]["outcome"].startswith(uid)
        assert steps[1]["outcome"].startswith("member")
        assert (steps[3]["input"], steps[3]["outcome"]) == (E3_GROUP, "204")
    dora = world.case(UPNS[DORA]).case.history[-1].data["steps"]
    assert "kept; report only" in cast(list[dict[str, Any]], dora)[-1]["outcome"]


def test_group_size_bounds_the_batch(world: EntraWorld, server: GraphServer) -> None:
    world.cycle()
    server.requests.clear()
    assert world.drain(concurrency=2, group_size=2).results() == {"removed": 5}
    assert sorted(len(parts) for parts in delete_batches(server)) == [1, 2, 2]


def test_usage_since_the_plan_goes_the_per_case_way_and_is_cancelled(
    world: EntraWorld, server: GraphServer
) -> None:
    world.cycle()
    world.clock.advance(days=1)
    world.use_excel(UPNS[ALICE], world.clock().date())
    stats = world.drain(concurrency=2)
    assert stats.results() == {"removed": 4, "cancelled": 1}
    alice = world.case(UPNS[ALICE])
    assert (alice.case.state, alice.case.history[-1].cause) == (S.CANCELLED, "usage_resumed")
    assert server.requests.removals_of(E3_GROUP, ALICE, ok=None) == []
    assert alice.id not in writes(world)  # nothing recorded ahead for her
    assert [len(parts) for parts in delete_batches(server)] == [4]


def test_paused_before_the_group_is_recorded_sends_and_records_nothing(
    world: EntraWorld, server: GraphServer
) -> None:
    world.cycle()
    paused = {"done": False}

    def pause_while_resolving(step: dict[str, Any]) -> None:
        if step["step"] == "Get user UUID from UPN" and not paused["done"]:
            paused["done"] = True
            with world.ctx.engine.begin() as conn:
                set_control(conn, PAUSED, "1", by="ops", now=0)

    stats = world.drain(world.directories(observer=pause_while_resolving))
    assert paused["done"] and set(stats.results()) == {"refused"}
    assert server.requests.removals(ok=None) == []
    assert writes(world) == {}
    for uid in E3_IDS:
        stored = world.case(UPNS[uid])
        assert stored.case.attempts == 0 and stored.last_error is not None
        assert "paused" in stored.last_error and stored.lease_owner is None
    with world.ctx.engine.begin() as conn:
        set_control(conn, PAUSED, "0", by="ops", now=0)
    world.clock.advance(seconds=REFUSED_WAIT + 1)
    assert world.drain().results() == {"removed": 5}
    assert len(server.requests.removals()) == 5


class _PausesAfterRecording(WriteGate):
    """The kill switch comes on right after the group's writes were recorded: the read
    of it just before sending is the one that sees it."""

    def __init__(self) -> None:
        super().__init__(safety=SafetySettings())
        self.admitted = 0

    def admit_removals(self, conn: Any, writes: Any, **kw: Any) -> Any:
        found = super().admit_removals(conn, writes, **kw)
        self.admitted += len(found[0])
        return found

    def paused(self, conn: Any) -> bool:
        return self.admitted > 0 or super().paused(conn)


def test_paused_between_recording_and_sending_sends_nothing_and_closes_the_records(
    world: EntraWorld, server: GraphServer
) -> None:
    world.cycle()
    worker = world.worker()
    gate = _PausesAfterRecording()
    worker.runtime.gate = gate
    try:
        stats = worker.drain()
    finally:
        worker.close()
    assert gate.admitted == 5 and stats.results() == {"refused": 5}
    assert server.requests.removals(ok=None) == []
    assert {v for v in writes(world).values()} == {(1, "refused")}
    now = int(world.clock().timestamp())
    with world.ctx.engine.connect() as conn:
        due = conn.execute(select(cases.c.next_due_at, cases.c.lease_owner)).all()
    assert all(d == now + REFUSED_WAIT and owner is None for d, owner in due)
    # The next pass, unpaused, finds the writes recorded and goes case by case: each
    # re-reads membership, then sends its removal once.
    world.clock.advance(seconds=REFUSED_WAIT + 1)
    assert world.drain().results() == {"removed": 5}
    for uid in E3_IDS:
        assert len(server.requests.removals_of(E3_GROUP, uid, ok=None)) == 1


def test_a_throttled_part_is_retried_alone_and_the_group_ends_once_each(
    world: EntraWorld, server: GraphServer
) -> None:
    world.cycle()
    server.faults.throttle_next(2, retry_after=1, path=REMOVE_PATH)
    assert world.drain().results() == {"removed": 5}
    for uid in E3_IDS:
        assert len(server.requests.removals_of(E3_GROUP, uid)) == 1
    assert server.requests.count("DELETE", REMOVE_PATH, status=429) == 2


def test_a_part_failing_for_good_retries_later_alone(
    world: EntraWorld, server: GraphServer
) -> None:
    world.cycle()
    # Alice's DELETE keeps failing with 503 past the client's own retries.
    server.faults.fail_next(1000, 503, method="DELETE", path=rf"/members/{ALICE}/\$ref$")
    stats = world.drain()
    assert stats.results() == {"removed": 4, "retry": 1}
    alice = world.case(UPNS[ALICE])
    assert alice.case.state is S.REMOVAL_PENDING and alice.failures == 1
    assert alice.case.history[-1].cause == "retry_later"
    assert writes(world)[alice.id] == (1, "transient")
    assert alice.next_due_at is not None and alice.next_due_at > int(world.clock().timestamp())
    server.faults.clear()
    world.clock.advance(seconds=alice.next_due_at - int(world.clock().timestamp()) + 1)
    assert world.drain().results() == {"removed": 1}
    assert len(server.requests.removals_of(E3_GROUP, ALICE)) == 1
    assert world.case(UPNS[ALICE]).case.state is S.REMOVED


def test_a_member_who_left_before_the_removal_is_left_group_not_removed(
    world: EntraWorld, server: GraphServer
) -> None:
    world.cycle()
    server.tenant.remove_member(E3_GROUP, OBRIEN)  # someone took O'Brien out by hand
    server.requests.clear()
    assert world.drain().results() == {"removed": 4, "left_group": 1}
    obrien = world.case(UPNS[OBRIEN])
    assert (obrien.case.state, obrien.case.history[-1].cause) == (S.CANCELLED, "left_group")
    assert server.requests.removals_of(E3_GROUP, OBRIEN, ok=None) == []
    assert obrien.id not in writes(world)  # nothing recorded ahead: nothing was sent
    assert [len(parts) for parts in delete_batches(server)] == [4]


class _BrokenAfterRecording(EntraDirectory):
    """An adapter whose grouped removal breaks after the writes were recorded ahead (a
    bug, or a reply nobody expected): nothing was sent."""

    def remove_batch(self, **kwargs: Any) -> Any:
        raise RuntimeError("unexpected")


def test_a_group_that_breaks_unexpectedly_goes_case_by_case(
    world: EntraWorld, server: GraphServer
) -> None:
    world.cycle()

    def broken(d: Directories) -> Any:
        client = world.client(writes_allowed=d.writes_allowed)
        return EntraDirectories(_BrokenAfterRecording(client, on_step=d.on_step))

    directories = Directories(
        world.ctx.engine, world.settings, builders={Workflow.ENTRA_ID: broken}
    )
    assert world.drain(directories).results() == {"removed": 5}
    for uid in E3_IDS:  # each case read membership again, then removed once
        assert len(server.requests.removals_of(E3_GROUP, uid, ok=None)) == 1
        stored = world.case(UPNS[uid])
        assert stored.case.state is S.REMOVED and writes(world)[stored.id] == (2, "done")
