"""Membership checks and ranged member reads on a real Samba DC."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from reclaim.connectors.errors import NotFound
from reclaim.connectors.ldap import LdapConnector, LdapSettings
from reclaim.testing import samba_seed as seed


def test_direct_membership(connector: LdapConnector) -> None:
    assert connector.is_direct_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.ALICE.dn)
    assert connector.is_direct_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.PAT.dn)
    assert not connector.is_direct_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.ERIN.dn)
    # Carol is in LIC-Project only through Team-PMs.
    assert not connector.is_direct_member(group_dn=seed.LIC_PROJECT.dn, user_dn=seed.CAROL.dn)


def test_nested_membership_follows_the_chain(connector: LdapConnector) -> None:
    assert connector.is_nested_member(group_dn=seed.LIC_PROJECT.dn, user_dn=seed.CAROL.dn)
    assert connector.is_nested_member(group_dn=seed.LIC_PROJECT.dn, user_dn=seed.ALICE.dn)
    assert not connector.is_nested_member(group_dn=seed.LIC_PROJECT.dn, user_dn=seed.ERIN.dn)


def test_membership_of_a_missing_group_is_not_found(connector: LdapConnector) -> None:
    with pytest.raises(NotFound):
        connector.is_direct_member(
            group_dn=f"CN=No Such Group,{seed.SEED_OU}", user_dn=seed.ALICE.dn
        )


def test_big_group_is_read_in_ranges(
    make_settings: Callable[..., LdapSettings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reclaim.connectors.ldap")
    with LdapConnector(make_settings(range_step=500)) as conn:
        members = conn.list_members(seed.LIC_BIG.dn)

    range_reads = [r for r in caplog.records if r.getMessage().startswith("LDAP: read member ")]
    # 1,601 values in windows of 500: 0-499, 500-999, 1000-1499, 1500-* .
    assert len(range_reads) == 4
    assert len(members) == len(seed.LIC_BIG.users) == seed.BIG_GROUP_SIZE + 1
    assert {m.sam for m in members} == {u.sam for u in seed.LIC_BIG.users}
    by_sam = {m.sam: m for m in members}
    assert by_sam["bulk0000"].enabled is False  # every tenth bulk user is disabled
    assert by_sam["bulk0001"].enabled is True
    assert by_sam["bulk0001"].upn == "bulk0001@corp.example.test"
    assert all(m.is_user for m in members)
    # Samba does not return msDS-ReplValueMetaData, so the time added is unknown.
    assert all(m.added_at is None for m in members)


def test_default_window_is_ads_max_val_range(
    connector: LdapConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reclaim.connectors.ldap")
    members = connector.list_members(seed.LIC_BIG.dn, with_added_time=False)

    reads = [r for r in caplog.records if r.getMessage().startswith("LDAP: read member ")]
    windows = [r.args[1] if isinstance(r.args, tuple) else None for r in reads]
    assert windows == [("member", 0, 1499), ("member", 1500, None)]
    assert len(members) == seed.BIG_GROUP_SIZE + 1


def test_nested_group_member_is_listed_but_not_as_a_user(connector: LdapConnector) -> None:
    members = {m.dn: m for m in connector.list_members(seed.LIC_PROJECT.dn)}

    assert set(members) == {seed.ALICE.dn, seed.TEAM_PMS.dn}
    assert members[seed.ALICE.dn].is_user
    assert not members[seed.TEAM_PMS.dn].is_user
    assert members[seed.TEAM_PMS.dn].sam is None


def test_empty_group_has_no_members(connector: LdapConnector) -> None:
    assert connector.list_members(seed.LIC_EMPTY.dn) == []
