"""The on-prem AD runner when the DC's certificate changes to an untrusted one mid-run,
or the service account's password is rotated mid-run (real Samba DC, hybrid peer).

Both stop the run with a clear message and touch nothing more: the removals before the
fault are recorded, the case in hand waits, the rest stay due. A DC stopped mid-run,
failover and a worker dying mid-MODIFY are in tests/integration/onprem/test_runner_faults.py.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator

import pytest
from ldap3 import MODIFY_REPLACE, Connection

from reclaim.domain.case import CaseState
from reclaim.testing import samba_seed as seed
from reclaim.testing.samba import SambaDC
from reclaim.workflows.step_log import Step
from tests.faults.scale import Figures, record
from tests.integration.ad.helpers import direct_members
from tests.integration.onprem.runner_world import RunnerWorld, upn

S = CaseState
Make = Callable[..., RunnerWorld]
pytestmark = pytest.mark.slow  # each restarts the DC twice


def removed_from_run_group(admin_of: Callable[[], Connection], count: int) -> set[str]:
    conn = admin_of()
    try:
        members = direct_members(conn, seed.LIC_RUN.dn)
    finally:
        conn.unbind()
    return {upn(i) for i in range(count) if seed.BULK_USERS[i].dn.lower() not in members}


def after_cases(world: RunnerWorld, count: int, action: Callable[[], None]) -> None:
    """Run ``action`` once, right after the ``count``-th case's removal was verified
    (its read-back ends a removal; the worker runs them one at a time: ``group_size=1``,
    so what was in hand and what had not started are told apart as with single cases)."""

    def hook(step: Step) -> None:
        if (
            step.step == "ldap.verify_removed"
            and len(world.tap.count("ldap.verify_removed")) == count
        ):
            world.tap.hooks.clear()
            action()

    world.tap.hooks.append(hook)


def assert_stopped_after_two(world: RunnerWorld, stats_stops: list[str], dc: SambaDC) -> str:
    """Two removed, nothing more sent, the run stopped once; returns the stop message."""
    (stop,) = stats_stops
    assert world.tap.modifies() == {upn(0): 1, upn(1): 1}  # no MODIFY after the fault
    assert removed_from_run_group(dc.admin_connection, 5) == {upn(0), upn(1)}
    states = world.states()
    assert states[S.AWAITING_SYNC.value] == 2
    waiting = [s for s in world.cases().values() if s.last_error]
    assert len(waiting) == 1 and waiting[0].case.state is S.REMOVAL_PENDING
    return stop


def reconnect(admin: Connection) -> None:
    """The shared admin connection died with the DC restart: open and bind it again
    (the seed-membership clean-up after the test uses it)."""
    with contextlib.suppress(Exception):
        admin.unbind()
    admin.open()
    assert admin.bind(), admin.result


def record_ldap(world: RunnerWorld, fault: str) -> None:
    """This run's row of the reliability table: five consented (ask off), two removed
    before the fault, the rest waiting; MODIFYs counted at the adapter."""
    sent = world.tap.modifies()
    record(
        Figures(
            fault=fault,
            peer="on-prem AD (Samba DC, hybrid)",
            database=world.engine.url.get_backend_name(),
            injected=1,
            cases=len(world.cases()),
            consented=len(world.cases()),
            removals=sum(sent.values()),
            duplicates=sum(1 for n in sent.values() if n > 1),
            lost=0,
        )
    )


@pytest.fixture
def restore_trust(dc1: SambaDC, admin: Connection) -> Iterator[SambaDC]:
    """dc1, serving its trusted certificate again after the test even if it failed."""
    yield dc1
    dc1.use_trusted_certificate()
    reconnect(admin)


def test_untrusted_certificate_mid_run_refuses_and_never_downgrades(
    make_runner: Make, restore_trust: SambaDC
) -> None:
    dc = restore_trust
    world = make_runner(idle=5)
    world.cycle()
    # The DC comes back serving a same-named certificate from another CA (a replaced
    # DC or a man in the middle); the worker's next connection must refuse it.
    after_cases(world, 2, dc.use_untrusted_certificate)
    stats = world.drain(group_size=1)
    # Another pass (a new worker) refuses again, and writes nothing either.
    world.clock.advance(minutes=30)
    again = world.drain()
    dc.use_trusted_certificate()  # so that the test itself can look at the DC again
    stop = assert_stopped_after_two(world, stats.stops, dc)
    assert "failed verification" in stop and "refusing to connect" in stop
    assert stats.results()["stopped"] == 1
    assert again.stops and "refusing to connect" in again.stops[0]
    assert len(world.tap.modifies()) == 2
    record_ldap(world, "DC certificate replaced by an untrusted one mid-run (refused)")


def set_service_password(dc: SambaDC, password: str) -> None:
    conn = dc.admin_connection()
    try:
        value = f'"{password}"'.encode("utf-16-le")
        ok = conn.modify(seed.SERVICE_ACCOUNT.dn, {"unicodePwd": [(MODIFY_REPLACE, [value])]})
        assert ok, conn.result
    finally:
        conn.unbind()


@pytest.fixture
def rotated_back(dc1: SambaDC, admin: Connection) -> Iterator[SambaDC]:
    """dc1, with the service account's seed password put back after the test."""
    yield dc1
    set_service_password(dc1, dc1.template.service_password)
    reconnect(admin)


def test_password_rotated_mid_run_stops_with_a_clear_message_without_the_password(
    make_runner: Make, rotated_back: SambaDC
) -> None:
    dc = rotated_back
    new_password = "Rotated-" + base64.b32encode(b"reclaim-fault").decode().rstrip("=") + "1a!"
    world = make_runner(idle=5)
    world.cycle()

    def rotate() -> None:
        # An admin rotates the service account's password; the DC restarts (as after
        # maintenance), so the worker has to bind again, with the old password. Samba
        # (like AD for NTLM) still takes the previous password for an hour after a
        # reset, so the rotation is done twice: the configured one is two behind.
        set_service_password(dc, new_password + "-1")
        set_service_password(dc, new_password)
        dc.restart()

    after_cases(world, 2, rotate)
    stats = world.drain(group_size=1)
    stop = assert_stopped_after_two(world, stats.stops, dc)
    assert "password" in stop.lower() or "credentials" in stop.lower(), stop
    for secret in (new_password, dc.template.service_password):
        assert secret not in stop
        assert all(secret not in (s.last_error or "") for s in world.cases().values())
    record_ldap(world, "LDAP bind password rotated mid-run (run stops)")


def test_password_rotated_mid_group_sends_nothing_more_and_says_so(
    make_runner: Make, rotated_back: SambaDC
) -> None:
    """The same fault inside one group of removals (services/group_removal.py): the
    removal that met it and those not tried yet are recorded as stopped, not sent."""
    dc = rotated_back
    new_password = "Rotated-" + base64.b32encode(b"reclaim-group").decode().rstrip("=") + "1a!"
    world = make_runner(idle=5)
    world.cycle()

    def rotate() -> None:  # as in the test above
        set_service_password(dc, new_password + "-1")
        set_service_password(dc, new_password)
        dc.restart()

    after_cases(world, 2, rotate)
    stats = world.drain()  # all five in one group
    (stop,) = stats.stops
    assert stats.results() == {"awaiting_sync": 2, "stopped": 3}
    assert removed_from_run_group(dc.admin_connection, 5) == {upn(0), upn(1)}
    landed = [s for s in world.tap.steps if s.step == "ldap.remove_member" and s.outcome == "ok"]
    assert {s.user for s in landed} == {upn(0), upn(1)}
    tried = world.tap.modifies()
    assert tried.get(upn(3), 0) == 0 and tried.get(upn(4), 0) == 0  # never handed over
    writes = world.writes()
    stopped = [s for s in world.cases().values() if s.case.state is S.REMOVAL_PENDING]
    assert len(stopped) == 3 and all(writes[s.id] == (1, "stopped") for s in stopped)
    for case in stopped:
        assert case.last_error is not None and case.last_error in stop
        for secret in (new_password, dc.template.service_password):
            assert secret not in case.last_error
