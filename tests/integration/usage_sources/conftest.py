"""The Graph test server with usage data (sign-in logs, activity, usage reports).

One server per session, reset to a fresh tenant for each test, time faked through the
server's ManualClock (the pattern of tests/integration/graph/conftest.py, whose
helpers are reused).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from reclaim.connectors.graph import GraphClient
from reclaim.connectors.graph.reports import UsageReads
from reclaim.testing.graph import CA_ENV_VARS, GraphServer, ManualClock, Tenant
from tests.integration.graph.conftest import CLIENT_ID, CLIENT_SECRET, FakeTime, server_settings

DOMAIN = "fabrikam.example"
MIRO = "5e6f7a8b-0000-4000-8000-00000000a1b2"
TABLEAU = "7a8b9c0d-0000-4000-8000-00000000b2c3"
OCT1 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
EXTRA_USERS = 130  # more than one page of 120 users with signInActivity


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_ins(count: int, *, app_id: str, user: str = f"ada@{DOMAIN}") -> list[dict[str, object]]:
    """``count`` successful sign-ins, one a minute from Oct 1 08:00."""
    start = OCT1 + dt.timedelta(hours=8)
    return [
        {
            "userPrincipalName": user,
            "appId": app_id,
            "appDisplayName": "Miro",
            "createdDateTime": iso(start + dt.timedelta(minutes=i)),
        }
        for i in range(count)
    ]


def build_usage_tenant() -> Tenant:
    t = Tenant("0d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6", "Fabrikam Usage", DOMAIN)
    t.add_client(CLIENT_ID, CLIENT_SECRET)
    t.add_user(
        f"ada@{DOMAIN}",
        "Ada",
        sign_in_activity={
            "lastSignInDateTime": "2026-10-03T08:00:00Z",
            "lastNonInteractiveSignInDateTime": "2026-10-04T09:30:00Z",
        },
    )
    t.add_user(f"bob@{DOMAIN}", "Bob")  # never signed in: no signInActivity
    for i in range(EXTRA_USERS):
        t.add_user(
            f"user{i:03d}@{DOMAIN}",
            f"User {i}",
            sign_in_activity={"lastSignInDateTime": "2026-10-02T07:00:00Z"},
        )
    t.sign_ins = [
        *sign_ins(3, app_id=MIRO),
        {
            "userPrincipalName": f"bob@{DOMAIN}",
            "appId": MIRO,
            "createdDateTime": "2026-10-02T10:00:00Z",
            "status": {"errorCode": 50126, "failureReason": "Invalid username or password."},
        },
        {
            "userPrincipalName": f"bob@{DOMAIN}",
            "appId": TABLEAU,
            "createdDateTime": "2026-10-02T11:00:00Z",
        },
    ]
    t.usage_reports = {
        "office365ActiveUserDetail": [
            {
                "User Principal Name": f"ada@{DOMAIN}",
                "Display Name": "Ada",
                "Is Deleted": "False",
                "Teams Last Activity Date": "2026-10-04",
                "Exchange Last Activity Date": "2026-10-05",
            },
            {"User Principal Name": f"bob@{DOMAIN}", "Display Name": "Bob", "Is Deleted": "False"},
        ],
        "m365AppUserDetail": [
            {
                "User Principal Name": f"ada@{DOMAIN}",
                "Last Activity Date": "2026-10-05",
                "Word": "Yes",
                "Excel": "No",
            },
        ],
    }
    return t


@pytest.fixture(scope="session")
def graph_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def _usage_server(graph_clock: ManualClock) -> Iterator[GraphServer]:
    with GraphServer(build_usage_tenant(), clock=graph_clock) as srv:
        yield srv


@pytest.fixture
def graph_tenant() -> Tenant:
    return build_usage_tenant()


@pytest.fixture
def graph_server(
    _usage_server: GraphServer, graph_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> GraphServer:
    _usage_server.reset(graph_tenant)
    for name in CA_ENV_VARS:
        monkeypatch.setenv(name, str(_usage_server.ca_file))
    return _usage_server


@pytest.fixture
def graph_time(graph_clock: ManualClock) -> FakeTime:
    return FakeTime(graph_clock)


@pytest.fixture
def usage_reads(graph_server: GraphServer, graph_time: FakeTime) -> Iterator[UsageReads]:
    client = GraphClient(
        server_settings(graph_server),
        sleep=graph_time.sleep,
        clock=graph_time.time,
        wall_clock=graph_time.time,
        rng=lambda: 0.5,
    )
    yield UsageReads(client)
    client.close()
