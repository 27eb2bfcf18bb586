"""Fault injection from Python and over the admin endpoint, and the request log helpers."""

from __future__ import annotations

import time

import httpx
import pytest

from reclaim.testing.graph import GraphServer

from .conftest import CLIENT_ID, CLIENT_SECRET, assert_graph_error

ALICE = "a11ce000-0000-0000-0000-000000000001"


def test_next_n_responses_fail_then_recover(server: GraphServer, client: httpx.Client) -> None:
    server.faults.fail_next(2, 500)
    assert_graph_error(client.get(f"/users/{ALICE}"), 500, "InternalServerError")
    assert client.get(f"/users/{ALICE}").status_code == 500
    assert client.get(f"/users/{ALICE}").status_code == 200
    assert [r.fault for r in server.requests.find("GET")] == ["status", "status", None]


def test_503_with_retry_after(server: GraphServer, client: httpx.Client) -> None:
    server.faults.fail_next(1, 503, retry_after=3)
    resp = client.get("/users")
    assert_graph_error(resp, 503, "ServiceUnavailable")
    assert resp.headers["Retry-After"] == "3"


def test_429_without_retry_after(server: GraphServer, client: httpx.Client) -> None:
    server.faults.throttle_next(1)
    resp = client.get("/users")
    assert_graph_error(resp, 429, "TooManyRequests", "Please retry again later.")
    assert "Retry-After" not in resp.headers


def test_fault_targets_method_and_path(server: GraphServer, client: httpx.Client) -> None:
    server.faults.fail_next(1, 503, method="DELETE", path=r"/members/.+/\$ref$")
    assert client.get(f"/users/{ALICE}").status_code == 200
    resp = client.delete(f"/groups/e3000000-0000-0000-0000-0000000000e3/members/{ALICE}/$ref")
    assert resp.status_code == 503
    assert server.is_member(ALICE, "e3000000-0000-0000-0000-0000000000e3")


def test_added_latency(server: GraphServer, client: httpx.Client) -> None:
    server.faults.add_latency(0.2, count=1)
    start = time.monotonic()
    assert client.get("/users").status_code == 200
    assert time.monotonic() - start >= 0.2


def test_hang_trips_client_timeout(server: GraphServer, client: httpx.Client) -> None:
    server.faults.hang_next(5)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/users", timeout=0.3)
    server.faults.clear()  # releases the hung request on the server side
    assert client.get("/users").status_code == 200


def test_connection_reset(server: GraphServer, client: httpx.Client) -> None:
    server.faults.reset_next(1)
    with pytest.raises(httpx.TransportError):
        client.get("/users")
    assert client.get("/users").status_code == 200
    assert [r.fault for r in server.requests.find(path="/v1.0/users$")] == ["reset", None]


def test_token_endpoint_failure(server: GraphServer) -> None:
    server.faults.fail_token_endpoint(1, 503, retry_after=2)
    data = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "scope": "https://graph.microsoft.com/.default",
        "client_secret": CLIENT_SECRET,
    }
    resp = httpx.post(server.token_url, data=data, verify=server.ssl_context())
    assert resp.status_code == 503
    assert resp.json()["error"] == "temporarily_unavailable"
    assert resp.headers["Retry-After"] == "2"
    assert httpx.post(server.token_url, data=data, verify=server.ssl_context()).status_code == 200


def test_admin_endpoint_controls_faults_and_reads_log(
    server: GraphServer, client: httpx.Client
) -> None:
    admin = httpx.Client(base_url=f"{server.base_url}/_testing", verify=server.ssl_context())
    assert (
        admin.post("/faults", json={"kind": "status", "status": 502, "count": 1}).status_code == 200
    )
    assert client.get("/users").status_code == 502
    assert admin.post("/faults", json={"kind": "bogus"}).status_code == 400
    log = admin.get("/requests", params={"method": "GET", "path": "/users$"}).json()
    assert [r["status"] for r in log] == [502]
    assert admin.post("/tokens/revoke", json={}).json()["revoked"] >= 1
    assert client.get("/users").status_code == 401
    assert admin.delete("/requests").status_code == 200
    assert admin.get("/requests").json() == []


def test_admin_state_and_membership(server: GraphServer) -> None:
    admin = httpx.Client(base_url=f"{server.base_url}/_testing", verify=server.ssl_context())
    group = "e3000000-0000-0000-0000-0000000000e3"
    assert admin.get("/membership", params={"user": ALICE, "group": group}).json() == {
        "member": True
    }
    assert admin.delete(f"/groups/{group}/members/{ALICE}").json() == {"removed": True}
    assert not server.is_member(ALICE, group)
    admin.post(f"/groups/{group}/members", json={"member": "alice@contoso.example"})
    assert len(admin.get(f"/groups/{group}/members").json()) == 3
    assert admin.post("/throttle", json={"scale": 10}).json()["scale"] == 10
    before = server.state.clock.time()
    admin.post("/clock/advance", json={"seconds": 5})
    assert server.state.clock.time() == before + 5


def test_request_log_counts_successful_deletes(server: GraphServer, client: httpx.Client) -> None:
    group = "e3000000-0000-0000-0000-0000000000e3"
    for user in (ALICE, ALICE, "b0b00000-0000-0000-0000-000000000002"):
        client.delete(f"/groups/{group}/members/{user}/$ref")
    assert len(server.requests.removals()) == 2
    assert len(server.requests.removals(ok=False)) == 1
    assert len(server.requests.removals_of(group, ALICE)) == 1
    assert server.requests.count("DELETE", status=404) == 1
    assert server.requests.refused_user_deletes() == []
