"""Client-side pacing: documented costs, and bursts that stay under the server's limits."""

from __future__ import annotations

import pytest

from reclaim.connectors.graph import (
    BudgetLimits,
    GraphClient,
    RequestCost,
    TokenBucketBudget,
    Unlimited,
    request_cost,
)
from reclaim.testing.graph import GraphServer

from .conftest import ALICE, BOB, E3_GROUP, PARENT_GROUP, ClientFactory, FakeTime, server_settings

SCALE = 0.01  # 35 resource units per 10 s and 30 writes per 150 s on both sides


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/users?$select=id", RequestCost(1)),
        ("GET", "/users?$top=999", RequestCost(2)),
        ("GET", "/users/x@y?$select=id", RequestCost(1)),
        ("GET", "/groups/g/members?$select=id&$top=999", RequestCost(2)),
        ("GET", "/groups/g/members?$top=10", RequestCost(2)),
        ("GET", "/groups/g/members?$select=id&$top=10", RequestCost(1)),
        ("GET", "/groups/g/transitiveMembers", RequestCost(5)),
        ("GET", "/groups/g/members/microsoft.graph.user/$count", RequestCost(3)),
        ("GET", "/groups/g/members?$expand=manager", RequestCost(4)),
        ("GET", "/users/u/memberOf?$select=id", RequestCost(1)),
        ("GET", "/subscribedSkus", RequestCost(3)),
        ("POST", "/users/u/checkMemberGroups", RequestCost(4)),
        ("POST", "/users/u/getMemberGroups", RequestCost(2)),
        ("DELETE", "/groups/g/members/u/$ref", RequestCost(1, 1)),
        ("POST", "/groups/g/members/$ref", RequestCost(1, 1)),
        ("POST", "/users/u/assignLicense", RequestCost(1, 1)),
        ("POST", "/$batch", RequestCost(0)),
        ("GET", "/reports/getOffice365ActiveUserDetail(period='D30')", RequestCost(0)),
        ("GET", "https://graph.microsoft.com/v1.0/users?$select=id&$skiptoken=x", RequestCost(1)),
    ],
)
def test_documented_costs(method: str, path: str, expected: RequestCost) -> None:
    assert request_cost(method, path) == expected


def test_costs_match_what_the_server_charges(server: GraphServer, client: GraphClient) -> None:
    client.get_user(ALICE)
    client.get_user("o'brien@fabrikam.example", ("id", "signInActivity"))
    client.get_group(E3_GROUP)
    list(client.list_members(E3_GROUP))
    client.is_member(E3_GROUP, BOB)
    client.is_member(PARENT_GROUP, BOB, transitive=True)
    client.subscribed_skus()
    client.remove_member(E3_GROUP, BOB)
    for record in server.requests.all():
        if record.path.startswith("/v1.0/"):
            path = record.path[len("/v1.0") :] + ("?" + record.query if record.query else "")
            cost = request_cost(record.method, path)
            assert cost.resource_units == record.resource_units, record


def test_token_bucket_keeps_a_read_burst_under_the_server_limit(
    server: GraphServer, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    server.throttle.configure(scale=SCALE)
    budget = TokenBucketBudget(BudgetLimits.for_tenant("S", scale=SCALE), clock=fake_time.time)
    client = make_client(budget=budget)
    for _ in range(100):
        client.get_user(ALICE)
    list(client.get_users([ALICE, BOB] * 10 + [f"u{i}@fabrikam.example" for i in range(18)]))
    assert server.requests.count(status=429) == 0
    # 120 resource units against 33.25 (35 less 5 % headroom) refilled at 3.325/s.
    assert sum(fake_time.sleeps) == pytest.approx((120 - 33.25) / 3.325, rel=0.05)


def test_without_the_bucket_the_same_burst_is_throttled(
    server: GraphServer, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    server.throttle.configure(scale=SCALE)
    client = make_client(budget=Unlimited())
    for _ in range(100):
        client.get_user(ALICE)
    assert server.requests.count(status=429) > 0  # bounced off, then recovered by Retry-After


def test_write_budget_paces_bulk_removals(
    server: GraphServer, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    server.throttle.configure(scale=SCALE)
    group = server.tenant.add_group("Paced")
    users = []
    for i in range(70):
        user = server.tenant.add_user(f"w{i:03d}@fabrikam.example")
        server.tenant.add_member(group.id, user.id, journal=False)
        users.append(user.id)
    budget = TokenBucketBudget(BudgetLimits.for_tenant("S", scale=SCALE), clock=fake_time.time)
    # One batch at a time: with fake time, concurrent sleeps would add up on the shared
    # clock and release the waiting batches together, which real sleeps do not.
    client = make_client(budget=budget, settings=server_settings(server, concurrency=1))
    results = client.remove_members(group.id, users)
    assert all(r.succeeded for r in results)
    assert server.requests.count(status=429) == 0
    assert server.tenant.groups[group.id].members == {}
    # 70 writes against 28.5 (30 less 5 % headroom) refilled at 0.19/s.
    assert sum(fake_time.sleeps) == pytest.approx((70 - 28.5) / 0.19, rel=0.05)
