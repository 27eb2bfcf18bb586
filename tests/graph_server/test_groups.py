"""Groups: properties, members paging, casts, transitive members, advanced-query rules."""

from __future__ import annotations

import httpx
import pytest

from reclaim.testing.graph import GraphServer, Tenant

from .conftest import assert_graph_error

E3 = "e3000000-0000-0000-0000-0000000000e3"
PARENT = "9a000000-0000-0000-0000-0000000000aa"
BIG = "b1000000-0000-0000-0000-0000000000b1"


@pytest.fixture
def big_group(server: GraphServer, tenant: Tenant) -> str:
    """Add a group with 2,500 user members to the tenant."""
    group = tenant.add_group("Big Group", id=BIG)
    for i in range(2500):
        user = tenant.add_user(f"user{i:04d}@contoso.example", f"User {i}")
        tenant.add_member(group.id, user.id, journal=False)
    return group.id


def test_group_properties(client: httpx.Client) -> None:
    body = client.get("/groups/dd000000-0000-0000-0000-0000000000dd").json()
    assert body["groupTypes"] == ["DynamicMembership"]
    assert body["membershipRule"] == 'user.department -eq "Sales"'
    assert body["securityEnabled"] is True
    assert body["mailEnabled"] is False
    assert "assignedLicenses" not in body  # only on $select
    synced = client.get("/groups/5c000000-0000-0000-0000-00000000005c").json()
    assert synced["onPremisesSyncEnabled"] is True
    assert synced["onPremisesSamAccountName"] == "synced"
    lic = client.get(f"/groups/{E3}", params={"$select": "id,assignedLicenses"}).json()
    assert lic["assignedLicenses"] == [
        {"disabledPlans": [], "skuId": "05e9a617-0261-4cee-bb44-138d3ef5d965"}
    ]


def test_unknown_group_is_404(client: httpx.Client) -> None:
    assert_graph_error(
        client.get("/groups/00000000-0000-0000-0000-000000000000"), 404, "Request_ResourceNotFound"
    )


def test_members_are_direct_and_typed(client: httpx.Client) -> None:
    body = client.get(f"/groups/{PARENT}/members").json()
    assert [(m["@odata.type"], m["id"]) for m in body["value"]] == [("#microsoft.graph.group", E3)]
    users = client.get(f"/groups/{PARENT}/members/microsoft.graph.user").json()
    assert users["value"] == []


def test_transitive_members_flatten_nesting(client: httpx.Client) -> None:
    body = client.get(f"/groups/{PARENT}/transitiveMembers").json()
    kinds = sorted(m["@odata.type"] for m in body["value"])
    assert kinds == ["#microsoft.graph.group"] + ["#microsoft.graph.user"] * 3
    users = client.get(
        f"/groups/{PARENT}/transitiveMembers/microsoft.graph.user",
        params={"$select": "id,userPrincipalName"},
    ).json()
    assert len(users["value"]) == 3
    assert set(users["value"][0]) == {"@odata.type", "id", "userPrincipalName"}


def test_next_link_followed_verbatim_across_2500_members(
    client: httpx.Client, big_group: str
) -> None:
    resp = client.get(f"/groups/{big_group}/members", params={"$top": "999", "$select": "id"})
    sizes, ids = [], []
    while True:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        sizes.append(len(body["value"]))
        ids += [m["id"] for m in body["value"]]
        link = body.get("@odata.nextLink")
        if not link:
            break
        assert "$skiptoken=" in link
        resp = client.get(link)
    assert sizes == [999, 999, 502]
    assert len(set(ids)) == 2500


def test_default_page_is_100(client: httpx.Client, big_group: str) -> None:
    body = client.get(f"/groups/{big_group}/members").json()
    assert len(body["value"]) == 100
    assert "@odata.nextLink" in body


def test_top_1000_is_400(client: httpx.Client, big_group: str) -> None:
    resp = client.get(f"/groups/{big_group}/members", params={"$top": "1000"})
    assert_graph_error(
        resp,
        400,
        "Request_BadRequest",
        "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.",
    )


def test_rebuilt_or_forged_skiptoken_is_refused(client: httpx.Client, big_group: str) -> None:
    link = client.get(f"/groups/{big_group}/members", params={"$top": "999"}).json()[
        "@odata.nextLink"
    ]
    assert "top=999" in link
    rebuilt = link.replace("top=999", "top=500")
    assert_graph_error(client.get(rebuilt), 400, "Directory_ExpiredPageToken")
    forged = link.split("$skiptoken=")[0] + "$skiptoken=made-up"
    assert_graph_error(client.get(forged), 400, "Directory_ExpiredPageToken")


def test_paging_survives_removals_between_pages(
    client: httpx.Client, big_group: str, tenant: Tenant
) -> None:
    first = client.get(
        f"/groups/{big_group}/members", params={"$top": "999", "$select": "id"}
    ).json()
    seen = {m["id"] for m in first["value"]}
    for member_id in list(seen)[:10]:
        tenant.remove_member(big_group, member_id)
    rest = []
    link = first["@odata.nextLink"]
    while link:
        page = client.get(link).json()
        rest += [m["id"] for m in page["value"]]
        link = page.get("@odata.nextLink")
    assert len(rest) == 2500 - 999
    assert not seen & set(rest)


def test_filter_on_members_needs_advanced_query_on_every_page(
    client: httpx.Client, big_group: str
) -> None:
    params = {"$filter": "startswith(displayName,'User 1')", "$count": "true", "$top": "100"}
    assert_graph_error(
        client.get(f"/groups/{big_group}/members", params=params), 400, "Request_UnsupportedQuery"
    )
    eventual = {"ConsistencyLevel": "eventual"}
    body = client.get(f"/groups/{big_group}/members", params=params, headers=eventual).json()
    assert body["@odata.count"] == 1111  # "User 1", "User 1000".."User 1999", "User 10".. etc.
    link = body["@odata.nextLink"]
    assert_graph_error(client.get(link), 400, "Request_UnsupportedQuery")
    assert client.get(link, headers=eventual).status_code == 200
