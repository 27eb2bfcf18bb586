"""Groups: properties, paging over thousands of members, membership delta, SKUs."""

from __future__ import annotations

import pytest

from reclaim.connectors.errors import NotFound
from reclaim.connectors.graph import GraphClient
from reclaim.connectors.graph.messages import GraphRequest
from reclaim.connectors.graph.paging import EVENTUAL, iter_values
from reclaim.testing.graph import GraphServer

from .conftest import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    DYNAMIC_GROUP,
    E3_GROUP,
    E3_SKU,
    GUEST,
    OBRIEN,
    SYNCED_GROUP,
    VISIO_SKU,
)


def test_get_group_properties(client: GraphClient) -> None:
    e3 = client.get_group(E3_GROUP)
    assert e3.display_name == "E3 Users"
    assert e3.assigned_sku_ids == (E3_SKU,)
    assert not e3.is_dynamic and not e3.is_synced
    synced = client.get_group(SYNCED_GROUP)
    assert synced.is_synced
    assert synced.on_premises_sam_account_name == "synced"
    assert synced.on_premises_security_identifier == "S-1-5-21-1-2-3-5000"
    dynamic = client.get_group(DYNAMIC_GROUP)
    assert dynamic.is_dynamic
    assert dynamic.membership_rule == 'user.department -eq "Sales"'
    with pytest.raises(NotFound):
        client.get_group("00000000-0000-0000-0000-000000000000")


def test_list_members_returns_direct_users_only(client: GraphClient) -> None:
    members = {u.id: u for u in client.list_members(E3_GROUP)}
    assert set(members) == {ALICE, BOB, OBRIEN, GUEST, CAROL}
    # Grant date and group-vs-direct assignment come with each member.
    alice = members[ALICE]
    assert alice.licenses_from_group(E3_GROUP)[0].sku_id == E3_SKU
    assert {s.sku_id for s in alice.direct_licenses()} == {VISIO_SKU}
    # The nested group "E3 Users" is a member of "All Licensed" but not a user.
    assert list(client.list_members("9a000000-0000-0000-0000-0000000000aa")) == []


def test_paging_over_2500_members(server: GraphServer, client: GraphClient) -> None:
    big = server.tenant.add_group("Big Group")
    for i in range(2500):
        user = server.tenant.add_user(f"member{i:04d}@fabrikam.example")
        server.tenant.add_member(big.id, user.id, journal=False)
    ids = [u.id for u in client.list_members(big.id)]
    assert len(ids) == 2500 == len(set(ids))
    pages = server.requests.find("GET", rf"/groups/{big.id}/members$")
    assert [r.status for r in pages] == [200, 200, 200]  # 999 + 999 + 502
    assert "$top=999" in pages[0].query and "$select=" in pages[0].query
    # Follow-ups are the nextLinks, verbatim (the server refuses rebuilt links).
    assert all("$skiptoken=" in r.query for r in pages[1:])


def test_members_delta_after_a_removal_and_an_add(server: GraphServer, client: GraphClient) -> None:
    first = client.members_delta(E3_GROUP)
    assert first.full
    assert set(first.added) == {ALICE, BOB, OBRIEN, GUEST, CAROL}
    assert first.removed == ()
    client.remove_member(E3_GROUP, BOB)
    client.add_member(E3_GROUP, DAVE)
    second = client.members_delta(E3_GROUP, first.delta_link)
    assert not second.full
    assert second.removed == (BOB,)
    assert second.added == (DAVE,)
    third = client.members_delta(E3_GROUP, second.delta_link)
    assert (third.added, third.removed) == ((), ())
    assert server.requests.count("GET", r"/groups/delta$") == 3


def test_members_delta_restarts_when_the_link_expired(
    server: GraphServer, client: GraphClient
) -> None:
    first = client.members_delta(E3_GROUP)
    stale = first.delta_link.split("$deltatoken=")[0] + "$deltatoken=expired"
    again = client.members_delta(E3_GROUP, stale)
    assert again.full
    assert set(again.added) == set(first.added)


def test_subscribed_skus(server: GraphServer, client: GraphClient) -> None:
    skus = {s.sku_part_number: s for s in client.subscribed_skus()}
    e3 = skus["SPE_E3"]
    assert (e3.sku_id, e3.enabled, e3.consumed, e3.available) == (E3_SKU, 20, 5, 15)
    assert skus["VISIOCLIENT"].consumed == 1


def test_count_members_uses_eventual_consistency(server: GraphServer, client: GraphClient) -> None:
    assert client.count_members(E3_GROUP) == 5
    assert server.requests.find("GET", r"/members/\$count$")[-1].status == 200


def test_advanced_query_headers_are_sent_on_every_page(
    server: GraphServer, client: GraphClient
) -> None:
    # $filter on members is an advanced query on every page: without the header on the
    # follow-up pages the server (like Graph) answers 400.
    first = GraphRequest(
        "GET",
        f"/groups/{E3_GROUP}/members",
        params={
            "$filter": "accountEnabled eq true",
            "$count": "true",
            "$select": "id",
            "$top": "2",
        },
        headers=EVENTUAL,
    )
    ids = [item["id"] for item in iter_values(client.transport, first)]
    assert set(ids) == {ALICE, BOB, OBRIEN, GUEST}  # Carol is disabled
    pages = server.requests.find("GET", rf"/groups/{E3_GROUP}/members$")
    assert [r.status for r in pages] == [200, 200]
