"""What the onprem_ad adapter reads once per pass, and the membership answer a removal
reuses from the executor's check right before it (real Samba DC, hybrid Graph tenant)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from ldap3 import MODIFY_DELETE, Connection

from reclaim.connectors.errors import AlreadyDone
from reclaim.testing import samba_seed as seed
from reclaim.testing.hybrid import HybridTenant
from reclaim.workflows.onprem_ad import CONFIRMED_FOR, OnPremAdDirectory
from tests.integration.ad.helpers import direct_members

from .conftest import policy_for
from .runner_world import RunnerWorld, upn


def _steps(directory: OnPremAdDirectory) -> list[tuple[str, str]]:
    return [(s.step, s.outcome) for s in directory.log.drain()]


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_removal_reuses_the_check_just_made_and_the_entra_record(
    directory: OnPremAdDirectory, hybrid: HybridTenant, admin: Connection
) -> None:
    policy = policy_for(hybrid, seed.LIC_VISIO)
    assert directory.is_member(policy=policy, user=seed.BOB.upn)
    directory.log.drain()
    directory.remove_member(policy=policy, user=seed.BOB.upn, idempotency_key="k-bob")
    assert _steps(directory) == [
        ("ldap.is_direct_member", "member (cached)"),
        ("ldap.remove_member", "ok"),
        ("ldap.verify_removed", "not_member"),
    ]
    assert seed.BOB.dn.lower() not in direct_members(admin, seed.LIC_VISIO.dn)
    # The sync check needs Bob's Entra object id: read once this pass already.
    assert not directory.sync_confirmed(policy=policy, user=seed.BOB.upn)
    assert _steps(directory) == [
        ("graph.get_user", "ok (cached)"),
        ("graph.is_member", "still_listed"),
    ]
    # The answer is used once: a retry checks again, and finds the removal done.
    with pytest.raises(AlreadyDone):
        directory.remove_member(policy=policy, user=seed.BOB.upn, idempotency_key="k-bob")
    names = [name for name, _ in _steps(directory)]
    assert names[:3] == ["graph.get_user", "ldap.find_user_by_sam", "ldap.is_direct_member"]


def test_a_new_pass_reads_entra_again(directory: OnPremAdDirectory, hybrid: HybridTenant) -> None:
    policy = policy_for(hybrid, seed.LIC_VISIO)
    directory.is_member(policy=policy, user=seed.ALICE.upn)
    directory.is_member(policy=policy, user=seed.ALICE.upn)
    assert [o for n, o in _steps(directory) if n == "graph.get_user"] == ["ok", "ok (cached)"]
    directory.new_run()
    directory.is_member(policy=policy, user=seed.ALICE.upn)
    names = [n for n, o in _steps(directory) if not o.endswith("(cached)")]
    assert names[:3] == ["graph.get_user", "ldap.find_user_by_sam", "graph.get_group"]


def test_an_old_answer_or_another_threads_is_not_reused(
    directory: OnPremAdDirectory, hybrid: HybridTenant
) -> None:
    policy = policy_for(hybrid, seed.LIC_VISIO)
    clock = FakeMonotonic()
    directory.clock = clock
    assert directory.is_member(policy=policy, user=seed.BOB.upn)
    clock.now += CONFIRMED_FOR + 0.1
    directory.log.drain()
    directory.remove_member(policy=policy, user=seed.BOB.upn, idempotency_key="k-late")
    assert ("ldap.is_direct_member", "member") in _steps(directory)

    assert directory.is_member(policy=policy, user=seed.ALICE.upn)
    directory.log.drain()
    other = threading.Thread(
        target=directory.remove_member,
        kwargs={"policy": policy, "user": seed.ALICE.upn, "idempotency_key": "k-thread"},
    )
    other.start()
    other.join()
    assert ("ldap.is_direct_member", "member") in _steps(directory)


def test_member_gone_between_check_and_removal_is_already_done(
    directory: OnPremAdDirectory, hybrid: HybridTenant, admin: Connection
) -> None:
    policy = policy_for(hybrid, seed.LIC_VISIO)
    assert directory.is_member(policy=policy, user=seed.BOB.upn)
    assert admin.modify(seed.LIC_VISIO.dn, {"member": [(MODIFY_DELETE, [seed.BOB.dn])]})
    with pytest.raises(AlreadyDone):
        directory.remove_member(policy=policy, user=seed.BOB.upn, idempotency_key="k-gone")
    modify = [o for n, o in _steps(directory) if n == "ldap.remove_member"]
    assert len(modify) == 1 and modify[0].startswith("AlreadyDone")


def test_each_worker_pass_starts_with_fresh_reads(
    make_runner: Callable[..., RunnerWorld],
) -> None:
    """The runner's factory passes the worker's new_run on to the adapter."""
    world = make_runner(idle=2)
    world.cycle()
    assert world.drain().results() == {"awaiting_sync": 2}
    # The removals went as a group: both Entra ID records in one $batch read, which the
    # removals then reuse.
    batched = [s.outcome for s in world.tap.steps if s.step == "graph.get_users"]
    assert batched == ["2 found"]
    first = [s.outcome for s in world.tap.steps if s.step == "graph.get_user"]
    assert first and set(first) == {"ok (cached)"}
    world.tap.steps.clear()
    world.clock.advance(minutes=16)
    assert world.drain().results() == {"waiting": 2}
    again = [(s.user, s.outcome) for s in world.tap.steps if s.step == "graph.get_user"]
    assert sorted(again) == [(upn(0), "ok"), (upn(1), "ok")]
