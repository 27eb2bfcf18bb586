"""Users: default properties, $select, the UPN forms, $filter, paging limits, 404s."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from .conftest import DOMAIN, assert_graph_error

ALICE = "a11ce000-0000-0000-0000-000000000001"


def test_default_property_set_without_select(client: httpx.Client) -> None:
    body = client.get(f"/users/{ALICE}").json()
    assert body["@odata.context"].endswith("$metadata#users/$entity")
    assert set(body) - {"@odata.context"} == {
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    }


def test_on_premises_sign_in_and_license_states_only_when_selected(client: httpx.Client) -> None:
    plain = client.get(f"/users/{ALICE}").json()
    for prop in ("onPremisesSyncEnabled", "signInActivity", "licenseAssignmentStates"):
        assert prop not in plain
    sel = (
        "id,onPremisesSyncEnabled,onPremisesSamAccountName,onPremisesSecurityIdentifier,"
        "signInActivity,licenseAssignmentStates,accountEnabled"
    )
    body = client.get(f"/users/{ALICE}", params={"$select": sel}).json()
    assert body["onPremisesSyncEnabled"] is True
    assert body["onPremisesSamAccountName"] == "alice"
    assert body["onPremisesSecurityIdentifier"] == "S-1-5-21-1-2-3-1101"
    assert body["signInActivity"]["lastSignInDateTime"] == "2024-05-01T08:00:00Z"
    assert "displayName" not in body  # $select replaces the default set
    by_group = {s["assignedByGroup"] for s in body["licenseAssignmentStates"]}
    assert None in by_group  # the direct Visio assignment
    assert "e3000000-0000-0000-0000-0000000000e3" in by_group


def test_sign_in_activity_absent_for_never_signed_in(client: httpx.Client) -> None:
    body = client.get(f"/users/bob@{DOMAIN}", params={"$select": "id,signInActivity"}).json()
    assert body == {
        "@odata.context": body["@odata.context"],
        "id": "b0b00000-0000-0000-0000-000000000002",
    }


def test_unknown_select_property_is_400(client: httpx.Client) -> None:
    resp = client.get(f"/users/{ALICE}", params={"$select": "id,shoeSize"})
    assert_graph_error(resp, 400, "Request_BadRequest")
    assert "shoeSize" in resp.json()["error"]["message"]


def test_get_by_id_and_by_upn(client: httpx.Client) -> None:
    assert client.get(f"/users/{ALICE}").json()["userPrincipalName"] == f"alice@{DOMAIN}"
    assert client.get(f"/users/ALICE@{DOMAIN.upper()}").json()["id"] == ALICE


def test_upn_starting_with_dollar_needs_key_form(client: httpx.Client) -> None:
    body = client.get(f"/users('$admin@{DOMAIN}')").json()
    assert body["displayName"] == "Dollar Admin"


def test_guest_upn_with_encoded_hash(client: httpx.Client) -> None:
    upn = f"guest_fabrikam.example#EXT#@{DOMAIN}"
    body = client.get(f"/users/{quote(upn, safe='@')}").json()
    assert body["id"] == "9e000000-0000-0000-0000-000000000005"


def test_unencoded_hash_truncates_the_upn_to_a_404(client: httpx.Client) -> None:
    # A raw '#' starts the URL fragment: the server only sees the part before it.
    resp = client.get(f"/users/guest_fabrikam.example#EXT#@{DOMAIN}")
    assert_graph_error(resp, 404, "Request_ResourceNotFound")


def test_unknown_user_is_404_with_graph_body(client: httpx.Client) -> None:
    resp = client.get("/users/nobody@contoso.example", headers={"client-request-id": "abc-123"})
    assert_graph_error(
        resp,
        404,
        "Request_ResourceNotFound",
        "Resource 'nobody@contoso.example' does not exist or one of its queried "
        "reference-property objects are not present.",
    )
    assert resp.headers["client-request-id"] == "abc-123"


def test_filter_upn_with_doubled_quote(client: httpx.Client) -> None:
    resp = client.get("/users", params={"$filter": f"userPrincipalName eq 'o''brien@{DOMAIN}'"})
    assert [u["displayName"] for u in resp.json()["value"]] == ["Pat O'Brien"]


def test_filter_id_in(client: httpx.Client) -> None:
    flt = f"id in ('{ALICE}', 'b0b00000-0000-0000-0000-000000000002')"
    body = client.get("/users", params={"$filter": flt, "$select": "id"}).json()
    assert sorted(u["id"] for u in body["value"]) == sorted(
        [ALICE, "b0b00000-0000-0000-0000-000000000002"]
    )


def test_filter_by_assigned_license(client: httpx.Client) -> None:
    flt = "assignedLicenses/any(x:x/skuId eq c5928f49-12ba-48f7-ada3-0d743a3601d5)"
    body = client.get("/users", params={"$filter": flt, "$select": "id"}).json()
    assert [u["id"] for u in body["value"]] == [ALICE]


def test_filter_guests(client: httpx.Client) -> None:
    body = client.get("/users", params={"$filter": "userType eq 'Guest'"}).json()
    assert len(body["value"]) == 1


def test_endswith_needs_advanced_query(client: httpx.Client) -> None:
    params = {"$filter": "endswith(userPrincipalName,'#EXT#@contoso.example')"}
    assert_graph_error(client.get("/users", params=params), 400, "Request_UnsupportedQuery")
    ok = client.get(
        "/users", params=params | {"$count": "true"}, headers={"ConsistencyLevel": "eventual"}
    )
    assert ok.status_code == 200
    assert ok.json()["@odata.count"] == 1


def test_list_users_pages_with_top(client: httpx.Client) -> None:
    first = client.get("/users", params={"$top": "2", "$select": "id"}).json()
    assert len(first["value"]) == 2
    seen = [u["id"] for u in first["value"]]
    link = first["@odata.nextLink"]
    while link:
        page = client.get(link).json()
        seen += [u["id"] for u in page["value"]]
        link = page.get("@odata.nextLink")
    assert len(seen) == len(set(seen)) == 5


def test_sign_in_activity_caps_top_at_120(client: httpx.Client) -> None:
    ok = client.get("/users", params={"$select": "id,signInActivity", "$top": "120"})
    assert ok.status_code == 200
    resp = client.get("/users", params={"$select": "id,signInActivity", "$top": "121"})
    assert_graph_error(resp, 400, "Request_BadRequest")
    assert client.get("/users", params={"$top": "999"}).status_code == 200


@pytest.mark.parametrize(
    "url", ["/users/$count", "/groups/e3000000-0000-0000-0000-0000000000e3/members/$count"]
)
def test_count_segment_needs_consistency_level(client: httpx.Client, url: str) -> None:
    assert_graph_error(
        client.get(url), 400, "Request_BadRequest", "$count is not currently supported."
    )
    resp = client.get(url, headers={"ConsistencyLevel": "eventual"})
    assert resp.status_code == 200
    assert int(resp.text) > 0


def test_count_query_is_ignored_without_header(client: httpx.Client) -> None:
    body = client.get("/users", params={"$count": "true"}).json()
    assert "@odata.count" not in body


def test_member_of_and_check_member_groups(client: httpx.Client) -> None:
    direct = client.get(f"/users/{ALICE}/memberOf").json()["value"]
    assert {g["displayName"] for g in direct} == {"E3 Users", "Visio Users"}
    assert all(g["@odata.type"] == "#microsoft.graph.group" for g in direct)
    ids = ["9a000000-0000-0000-0000-0000000000aa", "dd000000-0000-0000-0000-0000000000dd"]
    resp = client.post(f"/users/{ALICE}/checkMemberGroups", json={"groupIds": ids})
    assert resp.json()["value"] == ["9a000000-0000-0000-0000-0000000000aa"]  # transitive


def test_check_member_groups_limits_to_20(client: httpx.Client) -> None:
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(21)]
    resp = client.post(f"/users/{ALICE}/checkMemberGroups", json={"groupIds": ids})
    assert_graph_error(resp, 400, "Request_BadRequest")
