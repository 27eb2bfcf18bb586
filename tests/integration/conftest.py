"""Samba AD fixtures shared by the AD and hybrid tests: two DCs (clones of one domain).

They live in the parent folder of both test folders so the session-scoped domain is
provisioned once per run; nothing here starts unless a test asks for it.

The domain is provisioned and seeded once per session (~8-10 s), or once per machine
when RECLAIM_SAMBA_TEMPLATE names a folder to keep the template in. The tests skip,
saying why, when Samba is not installed or we are not root; CI installs Samba with
scripts/install-samba.sh so they run there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection

from reclaim.connectors.ldap import LdapConnector, LdapSettings
from reclaim.testing import samba_seed as seed
from reclaim.testing.samba import (
    SambaDC,
    SambaTemplate,
    ensure_template,
    free_loopback_addresses,
    samba_unavailable_reason,
)
from tests.conftest import peers_required
from tests.integration.ad.helpers import direct_members


@pytest.fixture(scope="session")
def samba_template(tmp_path_factory: pytest.TempPathFactory) -> SambaTemplate:
    """The provisioned, seeded domain every DC is copied from."""
    reason = samba_unavailable_reason()
    if reason:
        if peers_required():  # under CI a missing DC is a broken install, not a skip
            pytest.fail(reason)
        pytest.skip(reason)
    kept = os.environ.get("RECLAIM_SAMBA_TEMPLATE")
    folder = Path(kept) if kept else tmp_path_factory.mktemp("samba") / "template"
    return ensure_template(folder)


@pytest.fixture(scope="session")
def samba_addresses(samba_template: SambaTemplate) -> list[str]:
    """Two loopback addresses with 389/636 free: 127.0.0.1 and 127.0.0.2 normally."""
    return free_loopback_addresses(2)


def _session_dc(
    template: SambaTemplate, factory: pytest.TempPathFactory, address: str, name: str
) -> Iterator[SambaDC]:
    dc = SambaDC.from_template(template, factory.mktemp(name), address=address)
    dc.start()
    try:
        yield dc
    finally:
        dc.stop()
        # ~50 MB of database per DC; pytest keeps old temp dirs, the logs are enough.
        shutil.rmtree(dc.folder / "private", ignore_errors=True)


@pytest.fixture(scope="session")
def samba_dc(
    samba_template: SambaTemplate,
    samba_addresses: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SambaDC]:
    """The first DC (127.0.0.1), running for the whole session."""
    yield from _session_dc(samba_template, tmp_path_factory, samba_addresses[0], "dc1")


@pytest.fixture(scope="session")
def samba_dc2(
    samba_template: SambaTemplate,
    samba_addresses: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SambaDC]:
    """A second DC (127.0.0.2): a clone of the same domain, for failover tests."""
    yield from _session_dc(samba_template, tmp_path_factory, samba_addresses[1], "dc2")


@pytest.fixture
def dc1(samba_dc: SambaDC) -> SambaDC:
    """The first DC, started again if an earlier test left it stopped."""
    samba_dc.start()
    return samba_dc


@pytest.fixture
def dc2(samba_dc2: SambaDC) -> SambaDC:
    """The second DC, started again if an earlier test left it stopped."""
    samba_dc2.start()
    return samba_dc2


@pytest.fixture
def make_settings(dc1: SambaDC) -> Callable[..., LdapSettings]:
    """Connector settings for the service account against dc1; override any field."""

    def make(**overrides: object) -> LdapSettings:
        values: dict[str, object] = {
            "hosts": (dc1.address,),
            "base_dn": seed.BASE_DN,
            "bind_user": seed.SERVICE_ACCOUNT.upn,
            "password": lambda: dc1.template.service_password,
            "ca_file": str(dc1.ca_file),
            "connect_timeout": 2.0,
            "receive_timeout": 3.0,
        }
        values.update(overrides)
        return LdapSettings(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def connector(make_settings: Callable[..., LdapSettings]) -> Iterator[LdapConnector]:
    """A connector bound as the least-privileged service account, over verified LDAPS."""
    with LdapConnector(make_settings()) as conn:
        yield conn


@pytest.fixture
def admin(dc1: SambaDC) -> Iterator[Connection]:
    """An Administrator ldap3 connection to dc1 for setup and independent checks."""
    conn = dc1.admin_connection()
    yield conn
    conn.unbind()


@pytest.fixture
def restore_seed_membership(admin: Connection) -> Iterator[None]:
    """Put the small seed groups' membership back after a test that writes."""
    yield
    for group in (seed.LIC_VISIO, seed.LIC_PROJECT, seed.LIC_EMPTY, seed.TEAM_PMS):
        wanted = {u.dn.lower(): u.dn for u in group.users} | {g.lower(): g for g in group.groups}
        current = direct_members(admin, group.dn)
        changes = [(MODIFY_ADD, [dn]) for key, dn in wanted.items() if key not in current]
        changes += [(MODIFY_DELETE, [dn]) for dn in current if dn not in wanted]
        for change in changes:
            assert admin.modify(group.dn, {"member": [change]}), admin.result
