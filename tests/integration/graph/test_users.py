"""Users: every UPN form, the selected properties, bulk lookups through $batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reclaim.connectors.errors import NotFound
from reclaim.connectors.graph import USER_SELECT_WITH_SIGN_IN, GraphClient
from reclaim.testing.graph import GraphServer

from .conftest import (
    ALICE,
    BOB,
    CAROL,
    DOLLAR,
    E3_GROUP,
    E3_SKU,
    GUEST,
    OBRIEN,
    UPNS,
    VISIO_GROUP,
    VISIO_SKU,
)


@pytest.mark.parametrize(
    ("user_id", "sent_path"),
    [
        (ALICE, "/v1.0/users/alice@fabrikam.example"),
        (OBRIEN, "/v1.0/users/o'brien@fabrikam.example"),
        (DOLLAR, "/v1.0/users/$admin@fabrikam.example"),  # sent as /users('$admin@...')
        (GUEST, "/v1.0/users/guest_contoso.example#EXT#@fabrikam.example"),  # '#' as %23
    ],
    ids=["plain", "apostrophe", "dollar", "guest"],
)
def test_get_user_by_each_upn_form(
    server: GraphServer, client: GraphClient, user_id: str, sent_path: str
) -> None:
    user = client.get_user(UPNS[user_id])
    assert (user.id, user.upn) == (user_id, UPNS[user_id])
    # The server logs the decoded path; a raw '#' would have cut it at "guest_contoso.example".
    assert server.requests.find("GET", "/v1.0/users/")[-1].path == sent_path


def test_get_user_by_id(client: GraphClient) -> None:
    assert client.get_user(BOB).upn == UPNS[BOB]


def test_selected_properties_are_parsed(client: GraphClient) -> None:
    alice = client.get_user(UPNS[ALICE], USER_SELECT_WITH_SIGN_IN)
    assert alice.account_enabled is True
    assert alice.on_premises_sync_enabled is True
    assert alice.on_premises_sam_account_name == "alice"
    assert alice.on_premises_security_identifier == "S-1-5-21-1-2-3-1101"
    assert alice.sign_in_activity is not None
    assert alice.sign_in_activity.last_sign_in == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert alice.sign_in_activity.latest == datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
    by_group = {s.assigned_by_group: s for s in alice.license_assignment_states}
    assert by_group[E3_GROUP].sku_id == E3_SKU
    assert by_group[VISIO_GROUP].sku_id == VISIO_SKU
    assert by_group[None].sku_id == VISIO_SKU  # also assigned directly
    assert [s.sku_id for s in alice.direct_licenses()] == [VISIO_SKU]
    assert alice.licenses_from_group(E3_GROUP)[0].last_updated is not None
    assert client.get_user(CAROL).account_enabled is False


def test_sign_in_activity_by_upn_uses_a_filter(server: GraphServer, client: GraphClient) -> None:
    # Graph refuses $select=signInActivity on /users/{upn}: the connector filters instead.
    user = client.get_user(UPNS[OBRIEN], USER_SELECT_WITH_SIGN_IN)
    assert user.id == OBRIEN
    assert user.sign_in_activity is None  # never signed in: Graph omits the property
    last = server.requests.find("GET", "/v1.0/users")[-1]
    assert last.path == "/v1.0/users"
    assert "userPrincipalName%20eq%20'o''brien@fabrikam.example'" in last.query
    with pytest.raises(NotFound):
        client.get_user("nobody@fabrikam.example", USER_SELECT_WITH_SIGN_IN)


def test_unknown_user_is_notfound(client: GraphClient) -> None:
    with pytest.raises(NotFound, match="Request_ResourceNotFound"):
        client.get_user("nobody@fabrikam.example")


def test_get_users_in_batches_of_twenty(server: GraphServer, client: GraphClient) -> None:
    for i in range(40):
        server.tenant.add_user(f"user{i:02d}@fabrikam.example", f"User {i}")
    keys = [f"user{i:02d}@fabrikam.example" for i in range(40)]
    keys += [UPNS[GUEST], UPNS[DOLLAR], "nobody@fabrikam.example", UPNS[GUEST]]
    found = client.get_users(keys)
    assert len(found) == 43  # the duplicate is fetched once
    assert isinstance(found["nobody@fabrikam.example"], NotFound)
    assert found[UPNS[GUEST]].id == GUEST  # type: ignore[union-attr]
    assert found[UPNS[DOLLAR]].id == DOLLAR  # type: ignore[union-attr]
    assert all(found[k].upn == k for k in keys if k != "nobody@fabrikam.example")  # type: ignore[union-attr]
    envelopes = server.requests.find("POST", r"/\$batch$")
    assert len(envelopes) == 3  # 20 + 20 + 3
    assert server.requests.count("GET", "/v1.0/users/", batch_part=True) == 43
    assert server.requests.count("GET", "/v1.0/users/", batch_part=False) == 0


def test_get_users_of_nothing_sends_nothing(client: GraphClient, server: GraphServer) -> None:
    before = len(server.requests)
    assert client.get_users([]) == {}
    assert len(server.requests) == before
