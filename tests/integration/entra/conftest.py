"""Fixtures for the Entra workflow and directory sync: the Graph test server on loopback.

The tenant is built in code: a licensed group with the awkward UPNs (guest ``#EXT#``,
apostrophe, ``$``), a member who also holds the SKU directly, a 2,500-member group
(three pages of 999), a synced and a dynamic group. One server per session, reset to a
fresh tenant per test; time is fake (ManualClock), so pacing never waits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from reclaim.connectors.graph import ClientSecret, GraphClient, GraphSettings, RetryPolicy
from reclaim.domain.policy import GroupRef, Policy, SeatCost, Workflow
from reclaim.testing.graph import CA_ENV_VARS, GraphServer, ManualClock, Tenant

CLIENT_ID = "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
CLIENT_SECRET = "fake-entra-workflow-test-secret"  # obviously fake fixture value
TENANT_ID = "1e2f3a4b-5c6d-4e7f-8a90-b1c2d3e4f5a6"
DOMAIN = "contoso.example"
E3_SKU = "05e9a617-0261-4cee-bb44-138d3ef5d965"

ALICE = "a11ce000-0000-0000-0000-000000000001"
OBRIEN = "0b000000-0000-0000-0000-000000000003"
DOLLAR = "d0000000-0000-0000-0000-000000000004"
GUEST = "9e000000-0000-0000-0000-000000000005"
DORA = "d0aa0000-0000-0000-0000-000000000006"  # E3 from the group *and* directly
ERIN = "e0000000-0000-0000-0000-000000000007"  # not a member of E3 Users

E3_GROUP = "e3000000-0000-0000-0000-0000000000e3"
BIG_GROUP = "b1000000-0000-0000-0000-0000000000b1"
SYNCED_GROUP = "5c000000-0000-0000-0000-00000000005c"
DYNAMIC_GROUP = "dd000000-0000-0000-0000-0000000000dd"
BIG = 2500

UPNS = {
    ALICE: f"alice@{DOMAIN}",
    OBRIEN: f"o'brien@{DOMAIN}",
    DOLLAR: f"$admin@{DOMAIN}",
    GUEST: f"guest_fabrikam.example#EXT#@{DOMAIN}",
    DORA: f"dora@{DOMAIN}",
    ERIN: f"erin@{DOMAIN}",
}
GRANTED = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)  # Alice's group grant


def build_tenant(*, big: bool = False) -> Tenant:
    """The tenant described in the module docstring (the 2,500-member group if ``big``)."""
    t = Tenant(TENANT_ID, "Contoso Entra Workflow Test", DOMAIN)
    t.add_client(CLIENT_ID, CLIENT_SECRET)
    t.add_sku("SPE_E3", BIG + 100, sku_id=E3_SKU)
    t.add_user(
        UPNS[ALICE],
        "Alice Archer",
        id=ALICE,
        on_premises_sync_enabled=True,
        on_premises_sam_account_name="Alice",
        on_premises_security_identifier="s-1-5-21-1-2-3-1101",
    )
    t.add_user(UPNS[OBRIEN], "Pat O'Brien", id=OBRIEN)
    t.add_user(UPNS[DOLLAR], "Dollar Admin", id=DOLLAR)
    t.add_user(UPNS[GUEST], "Guest From Fabrikam", id=GUEST, user_type="Guest")
    t.add_user(UPNS[DORA], "Dora Direct", id=DORA, licenses=["SPE_E3"])
    t.add_user(UPNS[ERIN], "Erin Elsewhere", id=ERIN)
    t.add_group("E3 Users", id=E3_GROUP, assigned_licenses=["SPE_E3"])
    t.add_group("Big Group", id=BIG_GROUP)
    t.add_group(
        "Synced Group",
        id=SYNCED_GROUP,
        on_premises_sync_enabled=True,
        on_premises_sam_account_name="synced",
        on_premises_security_identifier="S-1-5-21-1-2-3-5000",
    )
    t.add_group(
        "Dynamic Group",
        id=DYNAMIC_GROUP,
        group_types=["DynamicMembership"],
        membership_rule='user.department -eq "Sales"',
    )
    for uid in (ALICE, OBRIEN, DOLLAR, GUEST, DORA):
        t.add_member(E3_GROUP, uid, journal=False)
    for state in t.users[ALICE].license_states:
        state.last_updated = GRANTED
    for n in range(BIG if big else 0):
        user = t.add_user(f"big{n:05d}@{DOMAIN}", f"Big {n}")
        t.add_member(BIG_GROUP, user.id, journal=False)
    for gid in (SYNCED_GROUP, DYNAMIC_GROUP):
        t.add_member(gid, ALICE, journal=False)
    return t


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    """The server's clock (shared: it only moves forward)."""
    return ManualClock()


@pytest.fixture(scope="session")
def _running_server(clock: ManualClock) -> Iterator[GraphServer]:
    with GraphServer(build_tenant(), clock=clock) as srv:
        yield srv


@pytest.fixture
def server(_running_server: GraphServer, monkeypatch: pytest.MonkeyPatch) -> GraphServer:
    """The server reset to a fresh tenant; CA variables point at its throwaway CA."""
    _running_server.reset(build_tenant())
    for name in CA_ENV_VARS:
        monkeypatch.setenv(name, str(_running_server.ca_file))
    return _running_server


@pytest.fixture
def big_server(server: GraphServer) -> GraphServer:
    """The server with the 2,500-member group too (built only for the tests that need it)."""
    server.reset(build_tenant(big=True))
    return server


def server_settings(server: GraphServer, **overrides: Any) -> GraphSettings:
    """Connector settings pointing at the test server."""
    options: dict[str, Any] = {
        "tenant_id": server.tenant.tenant_id,
        "client_id": CLIENT_ID,
        "credential": ClientSecret(CLIENT_SECRET),
        "authority_host": server.base_url,
        "graph_url": server.base_url,
        "ca_file": str(server.ca_file),
        "read_timeout": 10.0,
        "connect_timeout": 2.0,
        "retry": RetryPolicy(max_attempts=5, deadline=600.0),
    }
    options.update(overrides)
    return GraphSettings(**options)


@pytest.fixture
def make_client(server: GraphServer, clock: ManualClock) -> Iterator[Any]:
    """Clients on the test server whose sleeps advance the fake clock."""
    made: list[GraphClient] = []

    def sleep(seconds: float) -> None:
        clock.advance(max(0.0, seconds))

    def factory(**kwargs: Any) -> GraphClient:
        options: dict[str, Any] = {
            "sleep": sleep,
            "clock": clock.time,
            "wall_clock": clock.time,
            "rng": lambda: 0.5,
        }
        options.update(kwargs)
        client = GraphClient(server_settings(server), **options)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Any) -> GraphClient:
    """A client with writes allowed."""
    made: GraphClient = make_client()
    return made


def policy(name: str, group_id: str, workflow: Workflow = Workflow.ENTRA_ID) -> Policy:
    """A policy for one of the tenant's groups."""
    return Policy(
        name=name,
        apps=("excel",),
        group=GroupRef(entra_id=group_id, name=name),
        workflow=workflow,
        seat_cost=SeatCost(amount=Decimal("20")),
    )
