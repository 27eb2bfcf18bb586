"""Fixtures for the Graph test server's own tests: a small tenant, a server, clients."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reclaim.testing.graph import CA_ENV_VARS, GraphServer, ManualClock, Tenant

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "fake-test-secret"  # obviously fake fixture value
TENANT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
DOMAIN = "contoso.example"


def build_tenant() -> Tenant:
    """A small (S-size) tenant covering the cases the tests need."""
    t = Tenant(TENANT_ID, "Contoso Test", DOMAIN)
    t.add_client(CLIENT_ID, CLIENT_SECRET)
    t.add_sku("SPE_E3", 10, sku_id="05e9a617-0261-4cee-bb44-138d3ef5d965")
    t.add_sku("VISIOCLIENT", 5, sku_id="c5928f49-12ba-48f7-ada3-0d743a3601d5")
    t.add_user(
        f"alice@{DOMAIN}",
        "Alice Archer",
        id="a11ce000-0000-0000-0000-000000000001",
        mail=f"alice@{DOMAIN}",
        on_premises_sync_enabled=True,
        on_premises_sam_account_name="alice",
        on_premises_security_identifier="S-1-5-21-1-2-3-1101",
        sign_in_activity={"lastSignInDateTime": "2024-05-01T08:00:00Z"},
        licenses=["VISIOCLIENT"],
    )
    t.add_user(f"bob@{DOMAIN}", "Bob Baker", id="b0b00000-0000-0000-0000-000000000002")
    t.add_user(f"o'brien@{DOMAIN}", "Pat O'Brien", id="0b000000-0000-0000-0000-000000000003")
    t.add_user(f"$admin@{DOMAIN}", "Dollar Admin", id="d0000000-0000-0000-0000-000000000004")
    t.add_user(
        f"guest_fabrikam.example#EXT#@{DOMAIN}",
        "Guest From Fabrikam",
        id="9e000000-0000-0000-0000-000000000005",
        user_type="Guest",
    )
    e3 = t.add_group(
        "E3 Users", id="e3000000-0000-0000-0000-0000000000e3", assigned_licenses=["SPE_E3"]
    )
    visio = t.add_group(
        "Visio Users", id="f1000000-0000-0000-0000-0000000000f1", assigned_licenses=["VISIOCLIENT"]
    )
    parent = t.add_group("All Licensed", id="9a000000-0000-0000-0000-0000000000aa")
    t.add_group(
        "Synced Group",
        id="5c000000-0000-0000-0000-00000000005c",
        on_premises_sync_enabled=True,
        on_premises_sam_account_name="synced",
    )
    t.add_group(
        "Dynamic Group",
        id="dd000000-0000-0000-0000-0000000000dd",
        group_types=["DynamicMembership"],
        membership_rule='user.department -eq "Sales"',
    )
    for user in ("alice", "bob", "o'brien"):
        t.add_member(e3.id, f"{user}@{DOMAIN}", journal=False)
    t.add_member(visio.id, f"alice@{DOMAIN}", journal=False)
    t.add_member(parent.id, e3.id, journal=False)
    t.add_member("Synced Group", f"bob@{DOMAIN}", journal=False)
    t.add_member("Dynamic Group", f"bob@{DOMAIN}", journal=False)
    return t


@pytest.fixture(scope="session")
def clock() -> ManualClock:
    """A clock the tests move by hand (shared: tests only ever move it forward)."""
    return ManualClock()


@pytest.fixture
def tenant() -> Tenant:
    """A fresh small tenant per test."""
    return build_tenant()


@pytest.fixture(scope="session")
def _running_server(clock: ManualClock) -> Iterator[GraphServer]:
    # One server for the whole session: starting and stopping uvicorn costs ~0.2 s a test.
    with GraphServer(build_tenant(), clock=clock) as srv:
        yield srv


@pytest.fixture
def server(
    _running_server: GraphServer, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> GraphServer:
    """The server, reset to a fresh tenant; CA env vars point at its CA for MSAL and httpx."""
    _running_server.reset(tenant)
    for name in CA_ENV_VARS:
        monkeypatch.setenv(name, str(_running_server.ca_file))
    return _running_server


@pytest.fixture
def client(server: GraphServer) -> Iterator[httpx.Client]:
    """An httpx client on the Graph root with a valid bearer token."""
    token = server.issue_token(CLIENT_ID)
    with httpx.Client(
        base_url=server.graph_url,
        verify=server.ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as c:
        yield c


def assert_graph_error(
    resp: httpx.Response, status: int, code: str, message: str | None = None
) -> None:
    """Check status, Graph error body shape and the request-id headers."""
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    if message is not None:
        assert err["message"] == message
    inner = err["innerError"]
    assert set(inner) >= {"date", "request-id", "client-request-id"}
    assert resp.headers["request-id"] == inner["request-id"]
    assert resp.headers["client-request-id"] == inner["client-request-id"]
