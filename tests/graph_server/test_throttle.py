"""Throttling: documented costs and budgets, 429 + Retry-After, headers, knobs; no sleeping."""

from __future__ import annotations

import httpx
import pytest

from reclaim.testing.graph import GraphServer, ManualClock, ThrottleConfig
from reclaim.testing.graph.throttle import Cost, Throttler, request_cost

from .conftest import assert_graph_error

E3 = "e3000000-0000-0000-0000-0000000000e3"
ALICE = "a11ce000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("method", "base", "query", "expected"),
    [
        ("GET", 2, {}, Cost(2, 0)),  # GET users
        ("GET", 2, {"select": "id"}, Cost(1, 0)),
        ("GET", 3, {}, Cost(3, 0)),  # group members
        ("GET", 3, {"select": "id", "top": "10"}, Cost(1, 0)),
        ("GET", 5, {"top": "999"}, Cost(5, 0)),  # transitiveMembers, $top >= 20 costs no less
        ("POST", 4, {}, Cost(4, 1)),  # checkMemberGroups
        ("DELETE", 1, {}, Cost(1, 1)),
        ("GET", 1, {"select": "id", "top": "1"}, Cost(1, 0)),  # never below 1
    ],
)
def test_documented_costs(method: str, base: int, query: dict[str, str], expected: Cost) -> None:
    assert request_cost(method, base, query) == expected


@pytest.mark.parametrize(("size", "budget"), [("S", 3500), ("M", 5000), ("L", 8000)])
def test_resource_unit_budget_per_10_seconds(size: str, budget: int) -> None:
    clock = ManualClock(start=0)
    t = Throttler(clock)
    allowed = 0
    while t.check_directory("app", "tenant", size, Cost(3, 0)).allowed:
        allowed += 1
    assert allowed == budget // 3
    refused = t.check_directory("app", "tenant", size, Cost(3, 0))
    assert refused.retry_after >= 1
    assert refused.headers["Retry-After"] == str(refused.retry_after)
    assert refused.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    clock.advance(refused.retry_after)
    assert t.check_directory("app", "tenant", size, Cost(3, 0)).allowed


def test_write_budget_3000_per_150_seconds() -> None:
    clock = ManualClock(start=0)
    t = Throttler(clock)
    for _ in range(3000):  # an L tenant's 8,000 RU cover these; only writes run out
        assert t.check_directory("app", "tenant", "L", Cost(1, 1)).allowed
    refused = t.check_directory("app", "tenant", "L", Cost(1, 1))
    assert not refused.allowed
    assert refused.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert refused.headers["x-ms-throttle-scope"].startswith("Tenant_Application/Write/")
    # Reads still pass while writes are throttled.
    assert t.check_directory("app", "tenant", "L", Cost(1, 0)).allowed


def test_429_at_the_documented_budget_over_http(server: GraphServer, client: httpx.Client) -> None:
    # S tenant: 3,500 RU per 10 s; GET group members costs 3 → 1,166 pass, the next is 429.
    statuses: list[int] = []
    retry_after = None
    while len(statuses) < 1200:
        parts = [{"id": str(i), "method": "GET", "url": f"/groups/{E3}/members"} for i in range(20)]
        for part in client.post("/$batch", json={"requests": parts}).json()["responses"]:
            statuses.append(part["status"])
            if part["status"] == 429 and retry_after is None:
                retry_after = part["headers"]["Retry-After"]
    assert statuses.index(429) == 1166
    assert retry_after is not None
    assert int(retry_after) >= 1


def test_plain_request_429_body_and_headers(
    server: GraphServer, client: httpx.Client, clock: ManualClock
) -> None:
    server.throttle.configure(scale=4 / 3500)  # 4 RU
    first = client.get(f"/users/{ALICE}")
    assert first.headers["x-ms-resource-unit"] == "1"
    for _ in range(3):
        last = client.get(f"/users/{ALICE}")
    assert float(last.headers["x-ms-throttle-limit-percentage"]) >= 0.8
    resp = client.get(f"/users/{ALICE}")
    assert_graph_error(resp, 429, "TooManyRequests", "Please retry again later.")
    wait = int(resp.headers["Retry-After"])
    clock.advance(wait)
    assert client.get(f"/users/{ALICE}").status_code == 200


def test_limits_can_be_raised_and_disabled(server: GraphServer, client: httpx.Client) -> None:
    server.throttle.configure(scale=1 / 3500)
    assert client.get(f"/users/{ALICE}").status_code == 200
    assert client.get(f"/users/{ALICE}").status_code == 429
    server.throttle.configure(scale=10 / 3500)  # raise 10×
    assert all(client.get(f"/users/{ALICE}").status_code == 200 for _ in range(10))
    server.throttle.configure(enabled=False)
    assert all(client.get(f"/users/{ALICE}").status_code == 200 for _ in range(20))


def test_retry_after_can_be_omitted(server: GraphServer, client: httpx.Client) -> None:
    server.throttle.configure(scale=1 / 3500, send_retry_after=False)
    client.get(f"/users/{ALICE}")
    resp = client.get(f"/users/{ALICE}")
    assert resp.status_code == 429
    assert "Retry-After" not in resp.headers


def test_config_defaults_match_docs() -> None:
    cfg = ThrottleConfig()
    assert cfg.resource_units == {"S": 3500, "M": 5000, "L": 8000}
    assert (cfg.resource_unit_window, cfg.app_writes, cfg.app_write_window) == (10.0, 3000, 150.0)
    assert (cfg.tenant_writes, cfg.tenant_write_window) == (18000, 300.0)
