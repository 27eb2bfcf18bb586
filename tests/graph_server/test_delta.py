"""groups/delta: initial members@delta, then only changes (with @removed) via the deltaLink."""

from __future__ import annotations

import httpx

from reclaim.testing.graph import GraphServer

E3 = "e3000000-0000-0000-0000-0000000000e3"
BOB = "b0b00000-0000-0000-0000-000000000002"
GUEST = "9e000000-0000-0000-0000-000000000005"


def _round(client: httpx.Client, first: str, **params: str) -> tuple[list[dict], str]:
    resp = client.get(first, params=params or None)
    values: list[dict] = []
    while True:
        body = resp.json()
        values += body["value"]
        if "@odata.deltaLink" in body:
            return values, body["@odata.deltaLink"]
        resp = client.get(body["@odata.nextLink"])


def test_initial_round_lists_members(client: httpx.Client) -> None:
    values, link = _round(client, "/groups/delta", **{"$select": "members"})
    by_id = {g["id"]: g for g in values}
    assert len(by_id) == 5
    members = by_id[E3]["members@delta"]
    assert {m["id"] for m in members} >= {BOB}
    assert all("@removed" not in m for m in members)
    assert set(by_id[E3]) == {"id", "members@delta"}
    assert "$deltatoken=" in link


def test_delta_after_delete_reports_removed(client: httpx.Client) -> None:
    _, link = _round(client, "/groups/delta", **{"$select": "members"})
    assert client.delete(f"/groups/{E3}/members/{BOB}/$ref").status_code == 204
    client.post(
        f"/groups/{E3}/members/$ref",
        json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{GUEST}"},
    )
    values, link2 = _round(client, link)
    assert [g["id"] for g in values] == [E3]
    entries = {m["id"]: m for m in values[0]["members@delta"]}
    assert entries[BOB]["@removed"] == {"reason": "deleted"}
    assert "@removed" not in entries[GUEST]
    assert entries[GUEST]["@odata.type"] == "#microsoft.graph.user"
    # Nothing changed since: an empty page with a new deltaLink.
    values, _ = _round(client, link2)
    assert values == []


def test_delta_filtered_by_id(client: httpx.Client) -> None:
    values, _ = _round(
        client, "/groups/delta", **{"$select": "displayName,members", "$filter": f"id eq '{E3}'"}
    )
    assert [(g["id"], g["displayName"]) for g in values] == [(E3, "E3 Users")]


def test_delta_pages_follow_next_link(client: httpx.Client) -> None:
    resp = client.get("/groups/delta", headers={"Prefer": "odata.maxpagesize=2"})
    body = resp.json()
    assert len(body["value"]) == 2
    assert "@odata.nextLink" in body
    values, _ = _round(client, body["@odata.nextLink"])
    assert len(values) == 3


def test_unknown_delta_token_is_400(client: httpx.Client) -> None:
    resp = client.get("/groups/delta", params={"$deltatoken": "nope"})
    assert resp.status_code == 400


def test_deltatoken_latest_skips_initial_state(server: GraphServer, client: httpx.Client) -> None:
    body = client.get("/groups/delta", params={"$deltatoken": "latest"}).json()
    assert body["value"] == []
    server.tenant.remove_member(E3, BOB)
    values, _ = _round(client, body["@odata.deltaLink"])
    assert values[0]["members@delta"] == [
        {"@odata.type": "#microsoft.graph.user", "id": BOB, "@removed": {"reason": "deleted"}}
    ]
