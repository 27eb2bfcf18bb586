"""Looking users and groups up on a real Samba DC, as the service account over LDAPS."""

from __future__ import annotations

import pytest

from reclaim.connectors.errors import NotFound, Rejected
from reclaim.connectors.ldap import LdapConnector
from reclaim.testing import samba_seed as seed
from reclaim.testing.samba import SambaDC


def test_find_user_by_sam_returns_dn_upn_sid_and_enabled(
    connector: LdapConnector, dc1: SambaDC
) -> None:
    user = connector.find_user_by_sam("alice")

    assert user.dn == seed.ALICE.dn
    assert user.sam == "alice"
    assert user.upn == seed.ALICE.upn
    assert user.sid == dc1.template.sid(seed.ALICE.dn)
    assert user.enabled is True


def test_find_user_by_upn(connector: LdapConnector) -> None:
    assert connector.find_user_by_upn(seed.BOB.upn).dn == seed.BOB.dn


def test_disabled_user_is_reported_disabled(connector: LdapConnector) -> None:
    assert connector.find_user_by_sam(seed.DAVE.sam).enabled is False


def test_filter_and_dn_special_characters_are_escaped(connector: LdapConnector) -> None:
    # sAMAccountName "pat.obrien(c)" breaks an unescaped filter; the CN holds a comma.
    user = connector.find_user_by_sam(seed.PAT.sam)

    assert user.dn == seed.PAT.dn
    assert "\\," in user.dn
    assert connector.find_user_by_dn(user.dn).sam == seed.PAT.sam


def test_wildcard_in_a_name_is_a_literal_not_a_search(connector: LdapConnector) -> None:
    with pytest.raises(NotFound):
        connector.find_user_by_sam("*")
    with pytest.raises(NotFound):
        connector.find_user_by_sam("alice)(sAMAccountName=*")


def test_unknown_user_is_not_found(connector: LdapConnector) -> None:
    with pytest.raises(NotFound):
        connector.find_user_by_upn("nobody@corp.example.test")


def test_group_by_sid_dn_and_sam_agree(connector: LdapConnector, dc1: SambaDC) -> None:
    sid = dc1.template.sid(seed.LIC_VISIO.dn)

    by_sid = connector.find_group_by_sid(sid)

    assert by_sid.dn == seed.LIC_VISIO.dn
    assert by_sid.sid == sid
    assert connector.find_group_by_dn(seed.LIC_VISIO.dn) == by_sid
    assert connector.find_group_by_sam("LIC-Visio") == by_sid


def test_unknown_sid_is_not_found_and_a_malformed_one_rejected(
    connector: LdapConnector, dc1: SambaDC
) -> None:
    with pytest.raises(NotFound) as missing:
        connector.find_group_by_sid(dc1.template.domain_sid + "-999999")
    assert missing.value.code == "ldap-32"
    with pytest.raises(Rejected):
        connector.find_group_by_sid("S-1-5-21>,CN=Users")


def test_user_is_not_found_as_a_group(connector: LdapConnector) -> None:
    with pytest.raises(NotFound):
        connector.find_group_by_dn(seed.ALICE.dn)
