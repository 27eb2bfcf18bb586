"""Several DCs, dead DCs, silent DCs and restarts."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from reclaim.connectors.errors import Transient
from reclaim.connectors.ldap import LdapConnector, LdapSettings
from reclaim.testing import samba_seed as seed
from reclaim.testing.samba import SambaDC, free_loopback_addresses


@pytest.mark.slow
def test_fails_over_to_the_second_dc_when_the_first_stops(
    make_settings: Callable[..., LdapSettings], dc1: SambaDC, dc2: SambaDC
) -> None:
    with LdapConnector(make_settings(hosts=(dc1.address, dc2.address))) as conn:
        assert conn.find_user_by_sam("alice").dn == seed.ALICE.dn
        assert conn.connected_host == dc1.address

        dc1.stop()
        try:
            # The open connection breaks mid-run; the same call succeeds on dc2.
            assert conn.find_user_by_sam("alice").dn == seed.ALICE.dn
            assert conn.connected_host == dc2.address
            assert conn.is_direct_member(group_dn=seed.LIC_VISIO.dn, user_dn=seed.ALICE.dn)
        finally:
            dc1.start()


def test_skips_a_dc_that_is_down_at_connect_time(
    make_settings: Callable[..., LdapSettings], dc2: SambaDC
) -> None:
    (dead,) = free_loopback_addresses(1, exclude=(dc2.address,))
    with LdapConnector(make_settings(hosts=(dead, dc2.address))) as conn:
        assert conn.find_group_by_sam("LIC-Visio").dn == seed.LIC_VISIO.dn
        assert conn.connected_host == dc2.address


@pytest.fixture
def silent_dc(dc1: SambaDC, dc2: SambaDC) -> Iterator[str]:
    """An address whose port 636 accepts TCP connections and then never says a word."""
    (address,) = free_loopback_addresses(1, exclude=(dc1.address, dc2.address))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier runs' TIME_WAIT
        listener.bind((address, 636))
        listener.listen(8)  # the kernel completes handshakes; nobody ever reads
        yield address


@pytest.mark.slow
def test_silent_dc_times_out_and_the_next_one_answers(
    make_settings: Callable[..., LdapSettings], silent_dc: str, dc1: SambaDC
) -> None:
    settings = make_settings(hosts=(silent_dc, dc1.address), receive_timeout=1)
    began = time.monotonic()
    with LdapConnector(settings) as conn:
        assert conn.find_user_by_sam("bob").dn == seed.BOB.dn
        assert conn.connected_host == dc1.address
    assert time.monotonic() - began < 10


@pytest.mark.slow
def test_dc_restarted_mid_run_is_transient_then_works(
    make_settings: Callable[..., LdapSettings], dc1: SambaDC
) -> None:
    with LdapConnector(make_settings()) as conn:
        assert conn.find_user_by_sam("alice").dn == seed.ALICE.dn
        pid_before = dc1.pid

        dc1.stop()
        try:
            with pytest.raises(Transient) as down:
                conn.find_user_by_sam("alice")
            assert down.value.code == "ldap-down"
        finally:
            dc1.start()

        assert dc1.pid != pid_before
        assert conn.find_user_by_sam("alice").dn == seed.ALICE.dn
