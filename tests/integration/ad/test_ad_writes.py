"""Removing and restoring license-group members on a real Samba DC."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ldap3 import MODIFY_ADD, Connection

from reclaim.connectors.errors import AlreadyDone, StopRun, WriteRefused
from reclaim.connectors.ldap import LdapConnector, LdapSettings
from reclaim.testing import samba_seed as seed

from .helpers import direct_members

pytestmark = pytest.mark.usefixtures("restore_seed_membership")


def test_remove_then_restore_a_member(connector: LdapConnector, admin: Connection) -> None:
    group, user = seed.LIC_VISIO.dn, seed.BOB.dn

    connector.remove_member(group_dn=group, user_dn=user)

    assert user.lower() not in direct_members(admin, group)
    assert not connector.is_direct_member(group_dn=group, user_dn=user)

    connector.add_member(group_dn=group, user_dn=user)

    assert user.lower() in direct_members(admin, group)


def test_removing_a_non_member_is_already_done(connector: LdapConnector) -> None:
    connector.remove_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.BOB.dn)

    # Samba answers 53 unwillingToPerform; the connector re-reads and sees it is done.
    with pytest.raises(AlreadyDone) as again:
        connector.remove_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.BOB.dn)
    assert again.value.code == "ldap-53"
    with pytest.raises(AlreadyDone):
        connector.remove_member(group_dn=seed.LIC_EMPTY.dn, user_dn=seed.ERIN.dn)


def test_adding_an_existing_member_is_already_done(connector: LdapConnector) -> None:
    with pytest.raises(AlreadyDone) as done:
        connector.add_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.ALICE.dn)
    assert done.value.code == "ldap-68"


def test_user_with_escaped_dn_can_be_removed(connector: LdapConnector, admin: Connection) -> None:
    connector.remove_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.PAT.dn)

    assert seed.PAT.dn.lower() not in direct_members(admin, seed.LIC_VISIO.dn)


def test_member_of_a_big_group_is_removed_without_reading_the_group(
    connector: LdapConnector, admin: Connection
) -> None:
    user = seed.BULK_USERS[1234].dn
    try:
        connector.remove_member(group_dn=seed.LIC_BIG.dn, user_dn=user)
        assert not connector.is_direct_member(group_dn=seed.LIC_BIG.dn, user_dn=user)
    finally:
        admin.modify(seed.LIC_BIG.dn, {"member": [(MODIFY_ADD, [user])]})


def test_group_without_delegated_rights_stops_the_run(
    connector: LdapConnector, admin: Connection
) -> None:
    # The service account may write `member` on LIC-* groups only.
    with pytest.raises(StopRun) as denied:
        connector.remove_member(group_dn=seed.TEAM_PMS.dn, user_dn=seed.CAROL.dn)

    assert denied.value.code == "ldap-50"
    assert "permission missing" in denied.value.detail
    assert seed.CAROL.dn.lower() in direct_members(admin, seed.TEAM_PMS.dn)


def test_dry_run_refuses_writes_before_contacting_anyone(
    make_settings: Callable[..., LdapSettings], admin: Connection
) -> None:
    # 127.0.0.1:1 has nothing listening: any connection attempt would be Transient.
    for settings in (make_settings(dry_run=True), make_settings(dry_run=True, port=1)):
        with LdapConnector(settings) as conn:
            with pytest.raises(WriteRefused) as refused:
                conn.remove_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.ALICE.dn)
            assert refused.value.code == "dry-run"
            with pytest.raises(WriteRefused):
                conn.add_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.ERIN.dn)
            assert conn.connected_host is None

    assert seed.ALICE.dn.lower() in direct_members(admin, seed.LIC_VISIO.dn)
    assert seed.ERIN.dn.lower() not in direct_members(admin, seed.LIC_VISIO.dn)


def test_dry_run_still_reads(make_settings: Callable[..., LdapSettings]) -> None:
    with LdapConnector(make_settings(dry_run=True)) as conn:
        assert conn.is_direct_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.ALICE.dn)


def test_kill_switch_is_asked_before_every_write(
    make_settings: Callable[..., LdapSettings], admin: Connection
) -> None:
    switch = {"on": False}
    with LdapConnector(make_settings(), writes_allowed=lambda: switch["on"]) as conn:
        with pytest.raises(WriteRefused) as paused:
            conn.remove_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.BOB.dn)
        assert paused.value.code == "writes-paused"
        assert seed.BOB.dn.lower() in direct_members(admin, seed.LIC_VISIO.dn)

        switch["on"] = True
        conn.remove_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.BOB.dn)

    assert seed.BOB.dn.lower() not in direct_members(admin, seed.LIC_VISIO.dn)
