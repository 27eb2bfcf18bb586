"""The hybrid flow through the runner: usage → plan → ask → consent → removal in AD →
"awaiting sync" → synced, on a real Samba DC and the hybrid Graph tenant."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ldap3 import Connection

from reclaim.domain.case import Action, CaseState
from reclaim.domain.plan import ItemStatus
from reclaim.testing import samba_seed as seed
from reclaim.testing.hybrid import HybridTenant, run_directory_sync
from tests.integration.ad.helpers import direct_members

from .runner_world import RunnerWorld, upn

S = CaseState
Make = Callable[..., RunnerWorld]


def _entra_lists(hybrid: HybridTenant, user: str) -> bool:
    return hybrid.tenant.is_member(user, hybrid.group_id(seed.LIC_RUN.dn))


@pytest.mark.slow
def test_two_hundred_consents_are_removed_once_and_confirmed_after_sync(
    make_runner: Make, admin: Connection, hybrid: HybridTenant
) -> None:
    world = make_runner(idle=200, ask=True)
    (plan,) = world.cycle().plan.policies
    assert (plan.group_size, plan.halted) == (400, False)
    assert plan.count(Action.ASK, ItemStatus.PLANNED) == 200
    assert world.drain().results() == {"asked": 200}
    keep = {upn(i) for i in range(0, 200, 20)}  # ten people still need it
    world.answer_all(keep=keep)
    released = {upn(i) for i in range(200)} - keep

    world.clock.advance(hours=1)
    (plan,) = world.cycle().plan.policies
    assert plan.count(Action.REMOVE, ItemStatus.PLANNED) == 190
    stats = world.drain()
    # Each removal lands in AD; Entra ID is looked at after 15 minutes, when a directory
    # sync may have carried it.
    assert stats.results() == {"awaiting_sync": 190}
    assert world.states() == {"awaiting_sync": 190, "answered_keep": 10}
    in_ad = direct_members(admin, seed.LIC_RUN.dn)
    gone = {u.upn for u in seed.LIC_RUN.users if u.dn.lower() not in in_ad}
    assert gone == released  # exactly the consents; the keepers and the active 200 stay
    assert all(_entra_lists(hybrid, u) for u in released)  # Entra ID lags behind AD
    assert world.tap.modifies() == dict.fromkeys(released, 1)
    writes = world.writes()
    assert sorted(writes.values()) == [(1, "done")] * 190

    world.clock.advance(minutes=16)
    assert world.drain().results() == {"waiting": 190}  # still no directory sync
    assert run_directory_sync(hybrid, admin, seed.LIC_RUN.dn) == (0, 190)
    world.clock.advance(minutes=16)
    assert world.drain().results() == {"removed": 190}
    assert world.states() == {"removed": 190, "answered_keep": 10}
    case = world.case(upn(1)).case
    assert (case.status, case.outcome) == ("success", "action_taken")
    assert [e.cause for e in case.history][-4:] == [
        "removal_sent",
        "removed_in_ad",
        "retry_later",  # the first look, 15 minutes after the removal: not synced yet
        "sync_confirmed",
    ]
    assert world.tap.modifies() == dict.fromkeys(released, 1)  # never sent again
    world.clock.advance(days=1)
    assert world.drain().results() == {}


def test_is_member_in_ad_does_not_count_as_synced(make_runner: Make, admin: Connection) -> None:
    """The sync check asks Entra ID: AD already shows the removal, Entra ID does not."""
    world = make_runner(idle=2)
    world.cycle()
    assert world.drain().results() == {"awaiting_sync": 2}
    for i in range(2):
        assert seed.BULK_USERS[i].dn.lower() not in direct_members(admin, seed.LIC_RUN.dn)
    assert not world.tap.count("graph.is_member")  # not at once: a sync takes its time
    assert world.case(upn(0)).next_due_at == int(world.clock().timestamp()) + 15 * 60
    world.clock.advance(minutes=15)
    assert world.drain().results() == {"waiting": 2}
    checks = world.tap.count("graph.is_member")
    assert checks == {upn(0): 1, upn(1): 1}
    stored = world.case(upn(0))
    assert stored.case.state is S.AWAITING_SYNC and stored.last_error is None
    assert stored.next_due_at == int(world.clock().timestamp()) + 15 * 60


def test_restore_adds_the_member_back_through_the_gate(
    make_runner: Make, admin: Connection
) -> None:
    from reclaim.services.restore import restore_case

    world = make_runner(idle=1)
    world.cycle()
    world.drain()
    stored = world.case(upn(0))
    assert stored.case.state is S.AWAITING_SYNC
    assert seed.BULK_USERS[0].dn.lower() not in direct_members(admin, seed.LIC_RUN.dn)
    done = restore_case(
        world.engine,
        world.settings,
        stored.id,
        now=world.clock(),
        by="helpdesk@corp.example.test",
        directories=world.directories(),
    )
    assert done.result == "restored"
    assert seed.BULK_USERS[0].dn.lower() in direct_members(admin, seed.LIC_RUN.dn)
    assert world.case(upn(0)).case.state is S.RESTORED
    assert world.writes("add") == {stored.id: (1, "done")}
    assert world.tap.count("ldap.add_member") == {upn(0): 1}
    assert world.tap.count("ldap.verify_added", outcome="member") == {upn(0): 1}


def test_the_runners_default_directories_route_onprem_ad_to_ad_and_entra(
    make_runner: Make, admin: Connection
) -> None:
    """The wiring a deployment gets: ``default_directories`` (no test factory)."""
    from reclaim.runner.worker import Worker
    from reclaim.workflows.directory import default_directories

    world = make_runner(idle=2)
    world.cycle()
    directories = default_directories(world.engine, world.settings, on_step=world.tap)
    worker = Worker(
        engine=world.engine,
        settings=world.settings,
        directories=directories,
        clock=world.clock,
        poll_seconds=0.05,
    )
    try:
        assert worker.drain().results() == {"awaiting_sync": 2}
        world.clock.advance(minutes=15)  # the first look at Entra ID
        assert worker.drain().results() == {"waiting": 2}
    finally:
        closer = getattr(directories, "close", None)
        if callable(closer):
            closer()
    assert world.tap.modifies() == {upn(0): 1, upn(1): 1}
    assert world.tap.count("graph.is_member", outcome="still_listed") == {upn(0): 1, upn(1): 1}
    members = direct_members(admin, seed.LIC_RUN.dn)
    assert not any(seed.BULK_USERS[i].dn.lower() in members for i in range(2))
