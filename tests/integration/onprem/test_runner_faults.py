"""The onprem_ad runner when things go wrong: no sync, races, missing users, dead DCs,
a worker that dies mid-write, dry run and the kill switch (real Samba, real Graph)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from ldap3 import MODIFY_DELETE, Connection

from reclaim.domain.case import CaseState
from reclaim.store.leases import PAUSED, set_control
from reclaim.testing import samba_seed as seed
from reclaim.testing.hybrid import HybridTenant, run_directory_sync
from reclaim.testing.samba import SambaDC
from reclaim.workflows.step_log import Step
from tests.integration.ad.helpers import direct_members

from .runner_world import RunnerWorld, upn

S = CaseState
Make = Callable[..., RunnerWorld]


def _gone(admin: Connection, count: int) -> set[str]:
    """Which of the first ``count`` LIC-Run members are no longer in the group."""
    members = direct_members(admin, seed.LIC_RUN.dn)
    return {upn(i) for i in range(count) if seed.BULK_USERS[i].dn.lower() not in members}


def _members_on(dc: SambaDC) -> set[str]:
    conn = dc.admin_connection()
    try:
        return direct_members(conn, seed.LIC_RUN.dn)
    finally:
        conn.unbind()


def _removed_on(dc: SambaDC, count: int) -> set[str]:
    members = _members_on(dc)
    return {upn(i) for i in range(count) if seed.BULK_USERS[i].dn.lower() not in members}


def test_no_sync_by_the_deadline_fails_the_case_saying_why(make_runner: Make) -> None:
    world = make_runner(idle=1, deadline_hours=2)
    world.cycle()
    assert world.drain().results() == {"awaiting_sync": 1}  # Entra ID: first look later
    removed_at = world.clock()
    deadline = removed_at + dt.timedelta(hours=2)
    looks = []
    for _ in range(12):
        due = world.case(upn(0)).next_due_at
        if due is None:
            break
        looks.append(due - int(removed_at.timestamp()))
        world.clock.now = dt.datetime.fromtimestamp(due, dt.UTC)
        world.drain()
    # Growing waits, never past the deadline, the last look exactly on it.
    assert looks == sorted(looks) and looks[-1] == 2 * 3600
    gaps = [b - a for a, b in zip([0, *looks], looks, strict=False)]
    assert gaps[0] == 15 * 60 and max(gaps) > 15 * 60
    stored = world.case(upn(0))
    assert stored.case.state is S.FAILED and world.clock() == deadline
    assert stored.last_error is not None
    assert "Entra ID still lists bulk0000@corp.example.test" in stored.last_error
    assert "after 2 h (ldap.sync_deadline_hours)" in stored.last_error
    assert world.tap.modifies() == {upn(0): 1}


def test_member_removed_behind_our_back_is_already_removed(
    make_runner: Make, admin: Connection
) -> None:
    """AD answers 53 (not a member) to the MODIFY: re-read, already gone in AD; the case
    then waits for directory sync like any removal in AD (Entra ID grants the seat)."""
    world = make_runner(idle=1)
    target = seed.BULK_USERS[0]
    world.cycle()
    seen: list[Step] = []

    def race(step: Step) -> None:
        # The adapter's own membership check, right before its MODIFY (the executor's
        # answer of a moment ago, "member (cached)"): pull the rug.
        if step.step == "ldap.is_direct_member" and step.outcome.startswith("member"):
            seen.append(step)
            if len(seen) == 2:
                assert admin.modify(seed.LIC_RUN.dn, {"member": [(MODIFY_DELETE, [target.dn])]})

    world.tap.hooks.append(race)
    assert world.drain().results() == {"already_removed": 1}
    (modify,) = [s for s in world.tap.steps if s.step == "ldap.remove_member"]
    assert modify.outcome.startswith("AlreadyDone") and "ldap-53" not in modify.outcome
    stored = world.case(target.upn)
    assert (stored.case.state, stored.case.status) == (S.AWAITING_SYNC, "in_progress")
    assert stored.case.history[-1].cause == "removed_in_ad"
    assert list(world.writes().values()) == [(1, "already_done")]


def test_user_missing_from_ad_is_not_written_and_others_go_on(
    make_runner: Make, hybrid: HybridTenant, admin: Connection
) -> None:
    """Entra ID still names an AD account that no longer exists (deleted, not synced)."""
    world = make_runner(idle=3)
    ghost = hybrid.tenant.find_user(upn(1))
    assert ghost is not None
    ghost.on_premises_sam_account_name = "deleted-account"
    ghost.on_premises_security_identifier = "S-1-5-21-1-2-3-999999"
    world.cycle()
    assert world.drain().results() == {"awaiting_sync": 2, "left_group": 1}
    closed = world.case(upn(1)).case
    assert (closed.state, closed.history[-1].cause) == (S.CANCELLED, "left_group")
    assert set(world.tap.modifies()) == {upn(0), upn(2)}
    assert _gone(admin, 3) == {upn(0), upn(2)}
    assert len(world.writes()) == 2


@pytest.mark.slow
def test_dc_restarted_mid_run_cases_retry_and_finish(
    make_runner: Make, run_group_dc2: SambaDC
) -> None:
    dc2 = run_group_dc2
    world = make_runner(idle=8, hosts=(dc2.address,))
    world.cycle()

    def stop_after_third(step: Step) -> None:
        if step.step == "ldap.remove_member" and len(world.tap.modifies()) == 3:
            world.tap.hooks.clear()
            dc2.stop()  # by PID; the next LDAP call finds nobody

    world.tap.hooks.append(stop_after_third)
    first = world.drain().results()
    # One group of eight: two removed; the third's MODIFY landed but its read-back met a
    # dead DC; the rest met it with their MODIFY. Every one of them waits for a retry,
    # none failed.
    assert first == {"awaiting_sync": 2, "retry": 6}
    assert not dc2.running
    assert world.states() == {"awaiting_sync": 2, "removal_pending": 6}
    dc2.start()
    world.clock.advance(minutes=10)  # past the backoff
    world.drain()
    # The third finds its removal done in AD; it waits for directory sync like the
    # other five, which go through: none is taken for removed before Entra ID shows it.
    assert world.states() == {"awaiting_sync": 8}
    assert _removed_on(dc2, 8) == {upn(i) for i in range(8)}
    # Each removal landed once: the five that met the dead DC with their MODIFY sent it
    # again (it had not arrived), the third did not (its read-back failed).
    landed = world.tap.count("ldap.remove_member", outcome="ok")
    assert landed == dict.fromkeys([upn(i) for i in range(8)], 1)
    assert world.tap.modifies() == {
        **dict.fromkeys([upn(i) for i in range(3)], 1),
        **dict.fromkeys([upn(i) for i in range(3, 8)], 2),
    }


@pytest.mark.slow
def test_fails_over_to_the_second_dc_between_cases(
    make_runner: Make, run_group_dc2: SambaDC, dc1: SambaDC
) -> None:
    dc2 = run_group_dc2
    world = make_runner(idle=6, hosts=(dc2.address, dc1.address))
    world.cycle()

    def stop_after_second_removal(step: Step) -> None:
        # The read-back ends a removal: the next one's MODIFY meets a dead DC.
        if step.step == "ldap.verify_removed" and len(world.tap.count("ldap.verify_removed")) == 2:
            world.tap.hooks.clear()
            dc2.stop()

    world.tap.hooks.append(stop_after_second_removal)
    assert world.drain().results() == {"awaiting_sync": 6}
    assert not dc2.running
    # No replication between the clones: each removal landed on exactly one DC.
    dc2.start()
    on_dc1 = _removed_on(dc1, 6)
    on_dc2 = _removed_on(dc2, 6)
    assert len(on_dc2) == 2 and len(on_dc1) == 4 and on_dc1 | on_dc2 == {upn(i) for i in range(6)}
    assert world.tap.modifies() == dict.fromkeys([upn(i) for i in range(6)], 1)


@pytest.mark.slow
def test_failover_between_modify_and_verify_retries_instead_of_failing(
    make_runner: Make, run_group_dc2: SambaDC, dc1: SambaDC
) -> None:
    """The read-back lands on a DC the write has not replicated to yet."""
    dc2 = run_group_dc2
    world = make_runner(idle=3, hosts=(dc2.address, dc1.address))
    world.cycle()

    def stop_after_first_modify(step: Step) -> None:
        if step.step == "ldap.remove_member":
            world.tap.hooks.clear()
            dc2.stop()

    world.tap.hooks.append(stop_after_first_modify)
    first = world.drain()
    assert first.results() == {"retry": 1, "awaiting_sync": 2}
    (retry,) = [r for r in first.reports if r.result == "retry"]
    assert "replication pending" in retry.detail
    assert world.case(retry.user).case.state is S.REMOVAL_PENDING  # not failed
    world.clock.advance(minutes=10)
    world.drain()  # dc1 still lists them (the clones never replicate): removed there too
    assert world.states() == {"awaiting_sync": 3}
    assert _removed_on(dc1, 3) == {upn(i) for i in range(3)}
    assert world.tap.modifies()[retry.user] == 2  # one per DC, never twice on one


class WorkerDied(BaseException):
    """The process ends here: nothing after this line of the worker runs."""


def test_worker_dies_after_the_modify_retry_records_it_once(
    make_runner: Make, admin: Connection, hybrid: HybridTenant
) -> None:
    world = make_runner(idle=2)
    world.cycle()

    def die(step: Step) -> None:
        if step.step == "ldap.remove_member" and step.user == upn(0):
            raise WorkerDied

    world.tap.hooks.append(die)
    with pytest.raises(WorkerDied):
        world.drain()
    world.tap.hooks.clear()
    assert upn(0) in _gone(admin, 2)  # the MODIFY landed; nothing recorded it
    stored = world.case(upn(0))
    assert stored.case.state is S.REMOVAL_PENDING and stored.lease_owner is not None
    assert world.writes()[stored.id] == (1, "sending")

    world.clock.advance(minutes=11)  # the dead worker's lease runs out
    world.drain()  # a new worker process (new connectors)
    found = world.case(upn(0))
    # Gone from AD is not gone from Entra ID: the lost outcome waits for the sync too.
    assert found.case.state is S.AWAITING_SYNC
    assert found.case.history[-1].cause == "removed_in_ad"
    assert world.writes()[found.id] == (1, "already_done")
    assert world.tap.modifies() == {upn(0): 1, upn(1): 1}  # never sent twice
    assert _gone(admin, 2) == {upn(0), upn(1)}
    assert run_directory_sync(hybrid, admin, seed.LIC_RUN.dn) == (0, 2)
    world.clock.advance(minutes=16)
    assert world.drain().results() == {"removed": 2}
    done = world.case(upn(0)).case
    assert (done.state, done.history[-1].cause) == (S.REMOVED, "sync_confirmed")


@pytest.mark.parametrize("where", ["worker", "config"])
def test_dry_run_sends_no_modify(make_runner: Make, admin: Connection, where: str) -> None:
    safety = "safety: {dry_run: true}" if where == "config" else ""
    world = make_runner(idle=3, safety=safety)
    world.cycle()
    stats = world.drain(dry_run=where == "worker")
    assert stats.results() == {"refused": 3}
    assert all("dry run" in r.detail for r in stats.reports)
    assert world.tap.modifies() == {} and _gone(admin, 3) == set()
    assert world.writes() == {}
    assert set(world.states()) == {S.REMOVAL_PENDING.value}


def test_kill_switch_mid_run_stops_the_next_modify(make_runner: Make, admin: Connection) -> None:
    world = make_runner(idle=5)
    world.cycle()

    def pause_after_second(step: Step) -> None:
        if step.step == "ldap.remove_member" and len(world.tap.modifies()) == 2:
            with world.engine.begin() as conn:
                set_control(conn, PAUSED, "1", by="ops", now=0)

    world.tap.hooks.append(pause_after_second)
    stats = world.drain()
    assert stats.results()["refused"] == 3
    assert len(world.tap.modifies()) == 2 and len(_gone(admin, 5)) == 2

    world.tap.hooks.clear()
    with world.engine.begin() as conn:
        set_control(conn, PAUSED, "0", by="ops", now=0)
    world.clock.advance(minutes=16)  # refused cases look again after 15 minutes
    world.drain()
    assert len(_gone(admin, 5)) == 5
    assert world.tap.modifies() == dict.fromkeys([upn(i) for i in range(5)], 1)
