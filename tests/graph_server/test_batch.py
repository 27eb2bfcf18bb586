"""$batch: envelope rules, per-part results, per-part 429, dependsOn and the request log."""

from __future__ import annotations

import httpx

from reclaim.testing.graph import GraphServer

from .conftest import assert_graph_error

E3 = "e3000000-0000-0000-0000-0000000000e3"
BOB = "b0b00000-0000-0000-0000-000000000002"
ALICE = "a11ce000-0000-0000-0000-000000000001"


def _batch(client: httpx.Client, parts: list[dict]) -> httpx.Response:
    return client.post("/$batch", json={"requests": parts})


def _by_id(resp: httpx.Response) -> dict[str, dict]:
    assert resp.status_code == 200, resp.text
    return {r["id"]: r for r in resp.json()["responses"]}


def test_mixed_results_in_one_envelope(server: GraphServer, client: httpx.Client) -> None:
    resp = _batch(
        client,
        [
            {"id": "1", "method": "GET", "url": f"/users/{ALICE}?$select=id,displayName"},
            {"id": "2", "method": "DELETE", "url": f"/groups/{E3}/members/{BOB}/$ref"},
            {"id": "3", "method": "GET", "url": "/users/nobody@contoso.example"},
            {"id": "4", "method": "GET", "url": "users?$top=1"},
            {
                "id": "5",
                "method": "GET",
                "url": f"/groups/{E3}/members/$count",
                "headers": {"ConsistencyLevel": "eventual"},
            },
        ],
    )
    parts = _by_id(resp)
    assert parts["1"]["status"] == 200
    assert parts["1"]["body"]["displayName"] == "Alice Archer"
    assert parts["1"]["headers"]["Content-Type"].startswith("application/json")
    assert parts["2"]["status"] == 204
    assert "body" not in parts["2"]
    assert parts["3"]["status"] == 404
    assert parts["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert parts["4"]["status"] == 200
    assert parts["5"]["body"] == "2"
    assert not server.is_member(BOB, E3)


def test_parts_are_logged_individually(server: GraphServer, client: httpx.Client) -> None:
    _batch(
        client,
        [
            {"id": "a", "method": "DELETE", "url": f"/groups/{E3}/members/{BOB}/$ref"},
            {"id": "b", "method": "DELETE", "url": f"/groups/{E3}/members/{BOB}/$ref"},
        ],
    )
    parts = server.requests.find(batch_part=True)
    assert [(p.part_id, p.status) for p in parts] == [("a", 204), ("b", 404)]
    envelope = server.requests.find("POST", r"/\$batch$")
    assert len(envelope) == 1
    assert {p.batch_id for p in parts} == {envelope[0].request_id}
    assert len(server.requests.removals()) == 1


def test_part_gets_its_own_429_with_retry_after(server: GraphServer, client: httpx.Client) -> None:
    server.faults.fail_next(1, 429, retry_after=7, path="/memberOf$")
    parts = _by_id(
        _batch(
            client,
            [
                {"id": "1", "method": "GET", "url": f"/users/{ALICE}"},
                {"id": "2", "method": "GET", "url": f"/users/{ALICE}/memberOf"},
            ],
        )
    )
    assert parts["1"]["status"] == 200
    assert parts["2"]["status"] == 429
    assert parts["2"]["headers"]["Retry-After"] == "7"
    assert parts["2"]["body"]["error"]["code"] == "TooManyRequests"


def test_throttled_parts_inside_a_batch(server: GraphServer, client: httpx.Client) -> None:
    server.throttle.configure(scale=6 / 3500)  # a 6 RU budget for this S-size tenant
    parts = _by_id(
        _batch(
            client,
            [{"id": str(i), "method": "GET", "url": f"/groups/{E3}/members"} for i in range(3)],
        )
    )
    assert [parts[str(i)]["status"] for i in range(3)] == [200, 200, 429]
    assert int(parts["2"]["headers"]["Retry-After"]) >= 1


def test_depends_on_failure_gives_424(client: httpx.Client) -> None:
    parts = _by_id(
        _batch(
            client,
            [
                {"id": "1", "method": "GET", "url": "/users/nobody@contoso.example"},
                {
                    "id": "2",
                    "method": "DELETE",
                    "url": f"/groups/{E3}/members/{BOB}/$ref",
                    "dependsOn": ["1"],
                },
                {"id": "3", "method": "GET", "url": f"/users/{ALICE}"},
                {"id": "4", "method": "GET", "url": f"/users/{BOB}", "dependsOn": ["3"]},
            ],
        )
    )
    assert parts["2"]["status"] == 424
    assert parts["4"]["status"] == 200


def test_more_than_20_parts_is_400(client: httpx.Client) -> None:
    parts = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]
    assert_graph_error(_batch(client, parts), 400, "BadRequest")


def test_duplicate_ids_are_400(client: httpx.Client) -> None:
    parts = [
        {"id": "1", "method": "GET", "url": "/users"},
        {"id": "1", "method": "GET", "url": "/users"},
    ]
    assert_graph_error(_batch(client, parts), 400, "BadRequest")


def test_absolute_url_part_is_400(client: httpx.Client) -> None:
    parts = _by_id(
        _batch(
            client,
            [
                {"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"},
            ],
        )
    )
    assert parts["1"]["status"] == 400


def test_batch_needs_a_token(server: GraphServer) -> None:
    resp = httpx.post(
        f"{server.graph_url}/$batch", json={"requests": []}, verify=server.ssl_context()
    )
    assert_graph_error(resp, 401, "InvalidAuthenticationToken")
