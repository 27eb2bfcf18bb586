"""Fixtures for the Graph connector tests: the Graph test server over HTTPS on loopback.

One server per session (starting uvicorn costs ~0.2 s), reset to a fresh tenant for each
test. Time is fake: the clients' sleeps advance the server's ManualClock instead of
waiting, so retries, Retry-After, token expiry and budget pacing run instantly and the
delays asked for can be asserted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reclaim.connectors.graph import ClientSecret, GraphClient, GraphSettings, RetryPolicy
from reclaim.testing.graph import CA_ENV_VARS, GraphServer, ManualClock, Tenant

CLIENT_ID = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
CLIENT_SECRET = "fake-connector-test-secret"  # obviously fake fixture value
TENANT_ID = "0d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"
DOMAIN = "fabrikam.example"

E3_SKU = "05e9a617-0261-4cee-bb44-138d3ef5d965"
VISIO_SKU = "c5928f49-12ba-48f7-ada3-0d743a3601d5"

ALICE = "a11ce000-0000-0000-0000-000000000001"
BOB = "b0b00000-0000-0000-0000-000000000002"
OBRIEN = "0b000000-0000-0000-0000-000000000003"
DOLLAR = "d0000000-0000-0000-0000-000000000004"
GUEST = "9e000000-0000-0000-0000-000000000005"
CAROL = "ca000000-0000-0000-0000-000000000006"
DAVE = "da000000-0000-0000-0000-000000000007"

E3_GROUP = "e3000000-0000-0000-0000-0000000000e3"
VISIO_GROUP = "f1000000-0000-0000-0000-0000000000f1"
PARENT_GROUP = "9a000000-0000-0000-0000-0000000000aa"
SYNCED_GROUP = "5c000000-0000-0000-0000-00000000005c"
DYNAMIC_GROUP = "dd000000-0000-0000-0000-0000000000dd"
EMPTY_GROUP = "ee000000-0000-0000-0000-0000000000ee"

UPNS = {
    ALICE: f"alice@{DOMAIN}",
    BOB: f"bob@{DOMAIN}",
    OBRIEN: f"o'brien@{DOMAIN}",
    DOLLAR: f"$admin@{DOMAIN}",
    GUEST: f"guest_contoso.example#EXT#@{DOMAIN}",
    CAROL: f"carol@{DOMAIN}",
    DAVE: f"dave@{DOMAIN}",
}


def build_tenant() -> Tenant:
    """A small (S) tenant: licensed groups, a nested group, a synced and a dynamic group."""
    t = Tenant(TENANT_ID, "Fabrikam Connector Test", DOMAIN)
    t.add_client(CLIENT_ID, CLIENT_SECRET)
    t.add_sku("SPE_E3", 20, sku_id=E3_SKU)
    t.add_sku("VISIOCLIENT", 5, sku_id=VISIO_SKU)
    t.add_user(
        UPNS[ALICE],
        "Alice Archer",
        id=ALICE,
        mail=UPNS[ALICE],
        on_premises_sync_enabled=True,
        on_premises_sam_account_name="alice",
        on_premises_security_identifier="S-1-5-21-1-2-3-1101",
        sign_in_activity={
            "lastSignInDateTime": "2024-05-01T08:00:00Z",
            "lastNonInteractiveSignInDateTime": "2024-05-02T09:30:00Z",
        },
        licenses=["VISIOCLIENT"],
    )
    t.add_user(UPNS[BOB], "Bob Baker", id=BOB)
    t.add_user(UPNS[OBRIEN], "Pat O'Brien", id=OBRIEN)
    t.add_user(UPNS[DOLLAR], "Dollar Admin", id=DOLLAR)
    t.add_user(UPNS[GUEST], "Guest From Contoso", id=GUEST, user_type="Guest")
    t.add_user(UPNS[CAROL], "Carol Cook", id=CAROL, account_enabled=False)
    t.add_user(UPNS[DAVE], "Dave Dunn", id=DAVE)
    e3 = t.add_group("E3 Users", id=E3_GROUP, assigned_licenses=["SPE_E3"])
    t.add_group("Visio Users", id=VISIO_GROUP, assigned_licenses=["VISIOCLIENT"])
    t.add_group("All Licensed", id=PARENT_GROUP)
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
    t.add_group("Empty Group", id=EMPTY_GROUP)
    for uid in (ALICE, BOB, OBRIEN, GUEST, CAROL):
        t.add_member(e3.id, uid, journal=False)
    t.add_member(VISIO_GROUP, ALICE, journal=False)
    t.add_member(PARENT_GROUP, E3_GROUP, journal=False)
    t.add_member(SYNCED_GROUP, BOB, journal=False)
    t.add_member(DYNAMIC_GROUP, BOB, journal=False)
    return t


class FakeTime:
    """Monotonic and wall clock in one, driven by the server's ManualClock.

    ``sleep`` records the delay and moves the clock, so the server's token buckets
    refill and its tokens age exactly as the client believes.
    """

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.sleeps: list[float] = []

    def time(self) -> float:
        """Now, in fake seconds."""
        return self.clock.time()

    def sleep(self, seconds: float) -> None:
        """Record and 'wait' by advancing the clock."""
        self.sleeps.append(round(seconds, 3))
        self.clock.advance(max(0.0, seconds))


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    """The server's clock (shared: it only ever moves forward)."""
    return ManualClock()


@pytest.fixture(scope="session")
def _running_server(clock: ManualClock) -> Iterator[GraphServer]:
    with GraphServer(build_tenant(), clock=clock) as srv:
        yield srv


@pytest.fixture
def tenant() -> Tenant:
    """A fresh tenant for each test."""
    return build_tenant()


@pytest.fixture
def server(
    _running_server: GraphServer, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> GraphServer:
    """The server reset to a fresh tenant; CA variables point at its throwaway CA."""
    _running_server.reset(tenant)
    for name in CA_ENV_VARS:
        monkeypatch.setenv(name, str(_running_server.ca_file))
    return _running_server


@pytest.fixture
def fake_time(clock: ManualClock) -> FakeTime:
    """Fake sleeps and clocks for one test."""
    return FakeTime(clock)


def server_settings(server: GraphServer, **overrides: Any) -> GraphSettings:
    """Connector settings pointing at the test server (secret credential by default)."""
    options: dict[str, Any] = {
        "tenant_id": server.tenant.tenant_id,
        "client_id": CLIENT_ID,
        "credential": ClientSecret(CLIENT_SECRET),
        "authority_host": server.base_url,
        "graph_url": server.base_url,
        "ca_file": str(server.ca_file),
        "read_timeout": 5.0,
        "connect_timeout": 2.0,
        "retry": RetryPolicy(max_attempts=5, deadline=600.0),
    }
    options.update(overrides)
    return GraphSettings(**options)


ClientFactory = Callable[..., GraphClient]


@pytest.fixture
def make_client(server: GraphServer, fake_time: FakeTime) -> Iterator[ClientFactory]:
    """Build clients on the test server with fake time and a fixed jitter (0.5)."""
    made: list[GraphClient] = []

    def factory(*, settings: GraphSettings | None = None, **kwargs: Any) -> GraphClient:
        options: dict[str, Any] = {
            "sleep": fake_time.sleep,
            "clock": fake_time.time,
            "wall_clock": fake_time.time,
            "rng": lambda: 0.5,
        }
        options.update(kwargs)
        client = GraphClient(settings or server_settings(server), **options)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> GraphClient:
    """A client with the default settings, writes allowed."""
    return make_client()
