"""Fixtures for the hybrid (on-prem AD + Entra ID) workflow tests.

The Samba DC fixtures come from tests/integration/conftest.py (shared with the AD
tests, so the domain is provisioned once per run). The Graph test server runs once
per session and is reset, for each test, to a tenant mirroring the DC's seed OU
(``reclaim.testing.hybrid``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection

from reclaim.connectors.graph import ClientSecret, GraphClient, GraphSettings, RetryPolicy
from reclaim.connectors.ldap import LdapConnector, LdapSettings
from reclaim.domain.policy import GroupRef, Policy, SeatCost, Workflow
from reclaim.testing import samba_seed as seed
from reclaim.testing.graph import CA_ENV_VARS, GraphServer, ManualClock
from reclaim.testing.hybrid import (
    HYBRID_CLIENT_ID,
    HYBRID_CLIENT_SECRET,
    HybridTenant,
    build_hybrid_tenant,
)
from reclaim.testing.samba import SambaDC
from reclaim.workflows.onprem_ad import OnPremAdDirectory
from tests.integration.ad.helpers import direct_members
from tests.integration.graph.conftest import FakeTime

from .runner_world import (
    PASSWORD_ENV,
    SECRET_ENV,
    RunnerWorld,
    build_runner_world,
    settings_yaml,
)


@pytest.fixture(scope="session")
def graph_clock() -> ManualClock:
    """The Graph server's clock: clients sleep by advancing it, never for real."""
    return ManualClock()


@pytest.fixture(scope="session")
def _graph_server(graph_clock: ManualClock, samba_dc: object) -> Iterator[GraphServer]:
    from reclaim.testing.graph import Tenant

    with GraphServer(Tenant("00000000-0000-4000-8000-000000000000"), clock=graph_clock) as srv:
        yield srv


@pytest.fixture
def hybrid(
    _graph_server: GraphServer,
    admin: Connection,
    restore_seed_membership: None,
    monkeypatch: pytest.MonkeyPatch,
) -> HybridTenant:
    """A fresh mirror of the seed domain, served by the Graph test server."""
    mirror = build_hybrid_tenant(admin)
    _graph_server.reset(mirror.tenant)
    for name in CA_ENV_VARS:
        monkeypatch.setenv(name, str(_graph_server.ca_file))
    return mirror


@pytest.fixture
def graph(
    _graph_server: GraphServer, hybrid: HybridTenant, graph_clock: ManualClock
) -> Iterator[GraphClient]:
    """A Graph client on the hybrid tenant, with fake time."""
    fake = FakeTime(graph_clock)
    settings = GraphSettings(
        tenant_id=hybrid.tenant.tenant_id,
        client_id=HYBRID_CLIENT_ID,
        credential=ClientSecret(HYBRID_CLIENT_SECRET),
        authority_host=_graph_server.base_url,
        graph_url=_graph_server.base_url,
        ca_file=str(_graph_server.ca_file),
        read_timeout=5.0,
        connect_timeout=2.0,
        retry=RetryPolicy(max_attempts=3, deadline=60.0),
    )
    client = GraphClient(
        settings, sleep=fake.sleep, clock=fake.time, wall_clock=fake.time, rng=lambda: 0.5
    )
    yield client
    client.close()


@pytest.fixture
def make_directory(
    make_settings: Callable[..., LdapSettings], graph: GraphClient
) -> Iterator[Callable[..., OnPremAdDirectory]]:
    """Build adapters on dc1 (service account, LDAPS) and the hybrid Graph tenant."""
    made: list[LdapConnector] = []

    def make(*, with_graph: bool = True, **ldap_overrides: object) -> OnPremAdDirectory:
        ldap = LdapConnector(make_settings(**ldap_overrides))
        made.append(ldap)
        return OnPremAdDirectory(ldap=ldap, graph=graph if with_graph else None)

    yield make
    for ldap in made:
        ldap.close()


@pytest.fixture
def directory(make_directory: Callable[..., OnPremAdDirectory]) -> OnPremAdDirectory:
    """The adapter with writes allowed."""
    return make_directory()


def policy_for(hybrid: HybridTenant, group: seed.SeedGroup, **group_ref: str) -> Policy:
    """An onprem_ad policy on ``group``, named through Entra unless ``group_ref`` says."""
    ref = GroupRef(**group_ref) if group_ref else GroupRef(entra_id=hybrid.group_id(group.dn))
    return Policy(
        name=group.name,
        apps=(group.name.lower(),),
        group=ref,
        workflow=Workflow.ONPREM_AD,
        seat_cost=SeatCost(amount=10),  # type: ignore[arg-type]
    )


# -- the runner end to end (test_runner_*.py) -------------------------------------------
def put_back_run_group(dc: SambaDC) -> None:
    """Make LIC-Run on ``dc`` hold exactly its seed members again (a fresh connection:
    the test may have stopped and restarted the DC)."""
    dc.start()
    conn = dc.admin_connection()
    try:
        wanted = {u.dn.lower(): u.dn for u in seed.LIC_RUN.users}
        current = direct_members(conn, seed.LIC_RUN.dn)
        missing = [dn for key, dn in wanted.items() if key not in current]
        extra = [dn for dn in current if dn not in wanted]
        for change, dns in ((MODIFY_ADD, missing), (MODIFY_DELETE, extra)):
            if dns:
                assert conn.modify(seed.LIC_RUN.dn, {"member": [(change, dns)]}), conn.result
    finally:
        conn.unbind()


@pytest.fixture
def run_group(dc1: SambaDC) -> Iterator[None]:
    """LIC-Run's membership on dc1 is put back after the test."""
    yield
    put_back_run_group(dc1)


@pytest.fixture
def run_group_dc2(dc2: SambaDC) -> Iterator[SambaDC]:
    """dc2 running, and its LIC-Run membership put back after the test."""
    yield dc2
    put_back_run_group(dc2)


@pytest.fixture
def make_runner(
    db_url: str,
    tmp_path: Path,
    dc1: SambaDC,
    hybrid: HybridTenant,
    _graph_server: GraphServer,
    graph_clock: ManualClock,
    make_directory: Callable[..., OnPremAdDirectory],
    run_group: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., RunnerWorld]]:
    """Build a :class:`RunnerWorld` on LIC-Run (see ``runner_world``)."""
    monkeypatch.setenv(PASSWORD_ENV, dc1.template.service_password)
    monkeypatch.setenv(SECRET_ENV, HYBRID_CLIENT_SECRET)
    made: list[RunnerWorld] = []

    def make(
        *,
        idle: int,
        ask: bool = False,
        hosts: tuple[str, ...] | None = None,
        safety: str = "",
        deadline_hours: float = 24,
    ) -> RunnerWorld:
        text = settings_yaml(
            tmp=tmp_path,
            db_url=db_url,
            hosts=hosts or (dc1.address,),
            ca_file=dc1.ca_file,
            graph_url=_graph_server.base_url,
            tenant_id=hybrid.tenant.tenant_id,
            group_id=hybrid.group_id(seed.LIC_RUN.dn),
            ask=ask,
            safety=safety,
            deadline_hours=deadline_hours,
        )
        world = build_runner_world(
            settings_text=text,
            hybrid=hybrid,
            graph_clock=graph_clock,
            directory=make_directory(),
            tmp=tmp_path,
            idle=idle,
        )
        made.append(world)
        return world

    yield make
    for world in made:
        world.close()
