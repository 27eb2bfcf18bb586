"""TLS, binding and credentials against a real Samba DC."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reclaim.connectors.errors import StopRun, WriteRefused
from reclaim.connectors.ldap import LdapConnector, LdapSettings
from reclaim.testing import samba_seed as seed
from reclaim.testing.samba import SambaDC

WRONG_PASSWORD = "Wrong-Passw0rd-Never-Logged"


def test_wrong_password_stops_the_run_without_echoing_it(
    make_settings: Callable[..., LdapSettings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(password=WRONG_PASSWORD)
    with LdapConnector(settings) as conn, pytest.raises(StopRun) as rejected:
        conn.find_user_by_sam("alice")

    assert rejected.value.code == "ldap-49"
    assert "credentials rejected" in rejected.value.detail
    for text in (str(rejected.value), repr(settings), repr(conn), caplog.text):
        assert WRONG_PASSWORD not in text


def test_password_provider_is_read_at_connect_time(
    make_settings: Callable[..., LdapSettings], dc1: SambaDC
) -> None:
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return dc1.template.service_password

    with LdapConnector(make_settings(password=provider)) as conn:
        assert calls == []
        conn.find_user_by_sam("alice")
        conn.find_user_by_sam("bob")  # the connection is reused: no second bind

    assert calls == [1]


def test_empty_password_is_refused_not_sent_as_anonymous(
    make_settings: Callable[..., LdapSettings],
) -> None:
    with LdapConnector(make_settings(password="")) as conn, pytest.raises(StopRun):
        conn.find_user_by_sam("alice")


def test_plain_ldap_simple_bind_is_refused_by_the_dc(
    make_settings: Callable[..., LdapSettings],
) -> None:
    settings = make_settings(use_ssl=False, allow_insecure=True)
    with LdapConnector(settings) as conn, pytest.raises(StopRun) as refused:
        conn.find_user_by_sam("alice")

    # Samba, like a hardened AD: "BindSimple: Transport encryption required." (8)
    assert refused.value.code == "ldap-8"
    assert "TLS is required" in refused.value.detail


def test_plain_ldap_needs_an_explicit_opt_out(make_settings: Callable[..., LdapSettings]) -> None:
    with pytest.raises(ValueError, match="allow_insecure"):
        make_settings(use_ssl=False)
    with pytest.raises(ValueError, match="allow_insecure"):
        make_settings(verify_tls=False)


def test_plain_ldap_write_is_refused_by_the_connector(
    make_settings: Callable[..., LdapSettings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="reclaim.connectors.ldap")
    with LdapConnector(make_settings(use_ssl=False, allow_insecure=True)) as conn:
        with pytest.raises(WriteRefused) as refused:
            conn.remove_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.ALICE.dn)
        assert conn.connected_host is None  # refused before any connection

    assert refused.value.code == "insecure-transport"
    assert "NOT secure" in caplog.text


def test_unverified_tls_reads_but_does_not_write(
    make_settings: Callable[..., LdapSettings],
) -> None:
    settings = make_settings(verify_tls=False, ca_file=None, allow_insecure=True)
    with LdapConnector(settings) as conn:
        assert conn.find_user_by_sam("alice").dn == seed.ALICE.dn
        with pytest.raises(WriteRefused):
            conn.remove_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.ALICE.dn)


def test_start_tls_with_verification_works(make_settings: Callable[..., LdapSettings]) -> None:
    with LdapConnector(make_settings(use_ssl=False, start_tls=True)) as conn:
        assert conn.find_user_by_upn(seed.ALICE.upn).sam == "alice"


def test_dc_certificate_from_the_system_store_is_not_trusted(
    make_settings: Callable[..., LdapSettings],
) -> None:
    # Without our CA the test CA is unknown: refuse, do not fall back to no checks.
    with LdapConnector(make_settings(ca_file=None)) as conn, pytest.raises(StopRun) as refused:
        conn.find_user_by_sam("alice")
    assert refused.value.code == "ldap-certificate"


def test_missing_ca_file_stops_the_run(
    make_settings: Callable[..., LdapSettings], tmp_path: Path
) -> None:
    settings = make_settings(ca_file=str(tmp_path / "no-such-ca.pem"))
    with LdapConnector(settings) as conn, pytest.raises(StopRun) as refused:
        conn.find_user_by_sam("alice")
    assert refused.value.code == "ldap-ca-file"


def test_host_name_not_in_the_certificate_is_refused(
    make_settings: Callable[..., LdapSettings], dc1: SambaDC
) -> None:
    if dc1.address != "127.0.0.1":
        pytest.skip("needs dc1 on 127.0.0.1 so that 'localhost' reaches it")
    settings = make_settings(hosts=("localhost",))
    with LdapConnector(settings) as conn, pytest.raises(StopRun) as refused:
        conn.find_user_by_sam("alice")
    assert refused.value.code == "ldap-certificate"


@pytest.fixture
def dc1_with_untrusted_certificate(dc1: SambaDC) -> Iterator[SambaDC]:
    """dc1 serving a same-named certificate from another CA; put back afterwards."""
    dc1.use_untrusted_certificate()
    try:
        yield dc1
    finally:
        dc1.use_trusted_certificate()


@pytest.mark.slow  # two DC restarts
def test_changed_certificate_is_refused(
    make_settings: Callable[..., LdapSettings], dc1_with_untrusted_certificate: SambaDC
) -> None:
    for settings in (make_settings(), make_settings(use_ssl=False, start_tls=True)):
        with LdapConnector(settings) as conn, pytest.raises(StopRun) as refused:
            conn.find_user_by_sam("alice")
        assert refused.value.code == "ldap-certificate"
        assert "refusing" in refused.value.detail
