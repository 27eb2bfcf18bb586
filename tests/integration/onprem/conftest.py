"""Fixtures for the hybrid (on-prem AD + Entra ID) workflow tests.

The Samba DC fixtures come from tests/integration/conftest.py (shared with the AD
tests, so the domain is provisioned once per run). The Graph test server runs once
per session and is reset, for each test, to a tenant mirroring the DC's seed OU
(``reclaim.testing.hybrid``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ldap3 import Connection

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
from reclaim.workflows.onprem_ad import OnPremAdDirectory
from tests.integration.graph.conftest import FakeTime


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
