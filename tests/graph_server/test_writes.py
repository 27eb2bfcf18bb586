"""Membership writes, their documented errors, and the group-based licensing effect."""

from __future__ import annotations

import httpx

from reclaim.testing.graph import GraphServer, ManualClock

from .conftest import assert_graph_error

ALICE = "a11ce000-0000-0000-0000-000000000001"
BOB = "b0b00000-0000-0000-0000-000000000002"
E3 = "e3000000-0000-0000-0000-0000000000e3"
E3_SKU = "05e9a617-0261-4cee-bb44-138d3ef5d965"
VISIO_SKU = "c5928f49-12ba-48f7-ada3-0d743a3601d5"
SYNCED = "5c000000-0000-0000-0000-00000000005c"
DYNAMIC = "dd000000-0000-0000-0000-0000000000dd"


def _ref(user_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}"}


def _consumed(client: httpx.Client, sku_id: str) -> int:
    skus = client.get("/subscribedSkus").json()["value"]
    return next(s["consumedUnits"] for s in skus if s["skuId"] == sku_id)


def test_remove_member_by_ref_is_204(server: GraphServer, client: httpx.Client) -> None:
    resp = client.delete(f"/groups/{E3}/members/{BOB}/$ref")
    assert resp.status_code == 204
    assert resp.content == b""
    assert not server.is_member(BOB, E3)
    assert len(server.requests.removals_of(E3, BOB)) == 1


def test_remove_non_member_is_404_naming_the_group(client: httpx.Client) -> None:
    resp = client.delete(f"/groups/{SYNCED.replace('5c', 'e3', 1)}/members/{BOB}/$ref")
    assert resp.status_code == 404
    client.delete(f"/groups/{E3}/members/{BOB}/$ref")
    again = client.delete(f"/groups/{E3}/members/{BOB}/$ref")
    assert_graph_error(
        again,
        404,
        "Request_ResourceNotFound",
        f"Resource '{E3}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def test_on_prem_synced_group_is_400(client: httpx.Client) -> None:
    resp = client.delete(f"/groups/{SYNCED}/members/{BOB}/$ref")
    assert_graph_error(
        resp,
        400,
        "Request_BadRequest",
        "Unable to update the specified properties for on-premises mastered Directory Sync "
        "objects or objects currently undergoing migration.",
    )


def test_dynamic_group_is_400(server: GraphServer, client: httpx.Client) -> None:
    assert_graph_error(
        client.delete(f"/groups/{DYNAMIC}/members/{BOB}/$ref"), 400, "Request_BadRequest"
    )
    assert_graph_error(
        client.post(f"/groups/{DYNAMIC}/members/$ref", json=_ref(ALICE)), 400, "Request_BadRequest"
    )
    assert server.is_member(BOB, DYNAMIC)


def test_delete_without_ref_is_refused_and_recorded(
    server: GraphServer, client: httpx.Client
) -> None:
    resp = client.delete(f"/groups/{E3}/members/{BOB}")
    assert_graph_error(resp, 405, "Request_BadRequest")
    assert server.is_member(BOB, E3)
    assert BOB in server.tenant.users
    refused = server.requests.refused_user_deletes()
    assert [r.path for r in refused] == [f"/v1.0/groups/{E3}/members/{BOB}"]


def test_object_deletes_are_refused_and_recorded(server: GraphServer, client: httpx.Client) -> None:
    assert_graph_error(client.delete(f"/users/{BOB}"), 405, "Request_BadRequest")
    assert_graph_error(client.delete(f"/groups/{E3}"), 405, "Request_BadRequest")
    assert BOB in server.tenant.users
    assert len(server.requests.refused_user_deletes()) == 2


def test_add_member_back_and_already_member(server: GraphServer, client: httpx.Client) -> None:
    client.delete(f"/groups/{E3}/members/{BOB}/$ref")
    assert client.post(f"/groups/{E3}/members/$ref", json=_ref(BOB)).status_code == 204
    assert server.is_member(BOB, E3)
    again = client.post(f"/groups/{E3}/members/$ref", json=_ref(BOB))
    assert_graph_error(
        again,
        400,
        "Request_BadRequest",
        "One or more added object references already exist for the following modified "
        "properties: 'members'.",
    )


def test_leaving_licensed_group_frees_the_seat_but_keeps_direct(
    client: httpx.Client, clock: ManualClock
) -> None:
    before = _consumed(client, E3_SKU)
    sel = {"$select": "assignedLicenses,licenseAssignmentStates"}
    clock.advance(60)
    assert client.delete(f"/groups/{E3}/members/{ALICE}/$ref").status_code == 204
    user = client.get(f"/users/{ALICE}", params=sel).json()
    assert [a["skuId"] for a in user["assignedLicenses"]] == [VISIO_SKU]
    states = {(s["skuId"], s["assignedByGroup"]) for s in user["licenseAssignmentStates"]}
    assert (E3_SKU, E3) not in states
    assert (VISIO_SKU, None) in states  # the direct assignment stays
    assert _consumed(client, E3_SKU) == before - 1
    # Rejoining grants it again, stamped with the (moved) server clock.
    client.post(f"/groups/{E3}/members/$ref", json=_ref(ALICE))
    user = client.get(f"/users/{ALICE}", params=sel).json()
    again = [s for s in user["licenseAssignmentStates"] if s["assignedByGroup"] == E3]
    assert again[0]["state"] == "Active"
    assert again[0]["lastUpdatedDateTime"] == clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _consumed(client, E3_SKU) == before


def test_full_sku_gives_count_violation(server: GraphServer, client: httpx.Client) -> None:
    server.tenant.skus[E3_SKU].enabled = 3  # already 3 consumed
    guest = "9e000000-0000-0000-0000-000000000005"
    client.post(f"/groups/{E3}/members/$ref", json=_ref(guest))
    user = client.get(
        f"/users/{guest}", params={"$select": "licenseAssignmentStates,assignedLicenses"}
    ).json()
    assert user["assignedLicenses"] == []
    assert user["licenseAssignmentStates"][0]["error"] == "CountViolation"


def test_assign_license_removes_direct_but_not_inherited(client: httpx.Client) -> None:
    ok = client.post(
        f"/users/{ALICE}/assignLicense", json={"addLicenses": [], "removeLicenses": [VISIO_SKU]}
    )
    assert ok.status_code == 200
    # Visio still comes from the Visio group, so alice keeps the SKU.
    lic = client.get(f"/users/{ALICE}", params={"$select": "licenseAssignmentStates"}).json()
    assert [
        (s["skuId"], s["assignedByGroup"] is None)
        for s in lic["licenseAssignmentStates"]
        if s["skuId"] == VISIO_SKU
    ] == [(VISIO_SKU, False)]
    resp = client.post(
        f"/users/{ALICE}/assignLicense", json={"addLicenses": [], "removeLicenses": [E3_SKU]}
    )
    assert_graph_error(resp, 400, "Request_BadRequest")
    assert "inherited from a group membership" in resp.json()["error"]["message"]


def test_delete_by_id_query_form(server: GraphServer, client: httpx.Client) -> None:
    url = f"https://graph.microsoft.com/v1.0/directoryObjects/{BOB}"
    assert client.delete(f"/groups/{E3}/members/$ref", params={"$id": url}).status_code == 204
    assert not server.is_member(BOB, E3)
