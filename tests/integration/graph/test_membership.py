"""Membership writes: remove and add back, refusals, bulk removal through $batch."""

from __future__ import annotations

import pytest

from reclaim.connectors.errors import AlreadyDone, NotFound, Rejected, Transient
from reclaim.connectors.graph import GraphClient, Outcome
from reclaim.testing.graph import GraphServer

from .conftest import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    DYNAMIC_GROUP,
    E3_GROUP,
    E3_SKU,
    EMPTY_GROUP,
    GUEST,
    OBRIEN,
    PARENT_GROUP,
    SYNCED_GROUP,
    VISIO_GROUP,
    VISIO_SKU,
    FakeTime,
)

UNKNOWN_USER = "00000000-0000-0000-0000-0000000000ff"


def test_remove_member_sends_exactly_one_delete_with_ref(
    server: GraphServer, client: GraphClient
) -> None:
    client.remove_member(E3_GROUP, BOB)
    assert not server.is_member(BOB, E3_GROUP)
    deletes = server.requests.find("DELETE")
    assert [(r.path, r.status) for r in deletes] == [
        (f"/v1.0/groups/{E3_GROUP}/members/{BOB}/$ref", 204)
    ]
    assert server.requests.refused_user_deletes() == []
    assert server.tenant.find_user(BOB) is not None  # the membership went, not the user


def test_removing_a_non_member_is_already_done_after_a_check(
    server: GraphServer, client: GraphClient
) -> None:
    with pytest.raises(AlreadyDone):
        client.remove_member(E3_GROUP, DAVE)
    # The 404 was not taken on trust: the user's direct groups were read.
    assert server.requests.count("GET", rf"/users/{DAVE}/memberOf$") == 1


def test_removal_404_while_still_listed_is_transient(
    server: GraphServer, client: GraphClient
) -> None:
    # A 404 from a replica that has not seen the membership yet: do not call it done.
    server.faults.fail_next(1, 404, method="DELETE", path=r"/members/.+/\$ref$")
    with pytest.raises(Transient, match="still lists the membership"):
        client.remove_member(E3_GROUP, BOB)
    assert server.is_member(BOB, E3_GROUP)


def test_removing_an_unknown_user_is_notfound(client: GraphClient) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        client.remove_member(E3_GROUP, UNKNOWN_USER)


def test_synced_group_is_rejected_with_the_onprem_hint(
    server: GraphServer, client: GraphClient
) -> None:
    with pytest.raises(Rejected, match="onprem_ad workflow") as info:
        client.remove_member(SYNCED_GROUP, BOB)
    assert info.value.code == "graph-synced-group"
    assert server.is_member(BOB, SYNCED_GROUP)


def test_dynamic_group_is_rejected_as_rule_based(server: GraphServer, client: GraphClient) -> None:
    with pytest.raises(Rejected, match="dynamic membership") as info:
        client.remove_member(DYNAMIC_GROUP, BOB)
    assert "membership rule" in info.value.detail
    assert info.value.code == "graph-dynamic-group"


def test_add_back_and_already_member(server: GraphServer, client: GraphClient) -> None:
    client.remove_member(E3_GROUP, OBRIEN)
    client.add_member(E3_GROUP, OBRIEN)
    assert server.is_member(OBRIEN, E3_GROUP)
    with pytest.raises(AlreadyDone):
        client.add_member(E3_GROUP, OBRIEN)
    posts = server.requests.find("POST", rf"/groups/{E3_GROUP}/members/\$ref$")
    assert [r.status for r in posts] == [204, 400]
    with pytest.raises(Rejected, match="onprem_ad"):
        client.add_member(SYNCED_GROUP, DAVE)
    with pytest.raises(NotFound):
        client.add_member(E3_GROUP, UNKNOWN_USER)


def test_is_member_direct_and_transitive(client: GraphClient) -> None:
    assert client.is_member(E3_GROUP, BOB)
    assert not client.is_member(EMPTY_GROUP, BOB)
    # Bob is in "All Licensed" only through the nested "E3 Users" group.
    assert not client.is_member(PARENT_GROUP, BOB)
    assert client.is_member(PARENT_GROUP, BOB, transitive=True)


def test_remove_members_mixed_outcomes(server: GraphServer, client: GraphClient) -> None:
    users = [ALICE, BOB, DAVE, UNKNOWN_USER, GUEST, BOB]
    results = client.remove_members(E3_GROUP, users)
    assert [(r.user_id, r.outcome) for r in results] == [
        (ALICE, Outcome.DONE),
        (BOB, Outcome.DONE),
        (DAVE, Outcome.ALREADY_DONE),
        (UNKNOWN_USER, Outcome.NOT_FOUND),
        (GUEST, Outcome.DONE),
    ]
    assert all(r.succeeded for r in results[:3])
    assert not any(server.is_member(u, E3_GROUP) for u in (ALICE, BOB, GUEST))
    assert server.is_member(CAROL, E3_GROUP)
    assert server.requests.count("DELETE", batch_part=True) == 5
    assert server.requests.refused_user_deletes() == []


def test_remove_members_retries_only_the_throttled_parts(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    users = [ALICE, BOB, OBRIEN, GUEST, CAROL]
    # The first two removal parts are answered 429 with their own Retry-After.
    server.faults.throttle_next(2, retry_after=3, path=r"/members/.+/\$ref$")
    results = client.remove_members(E3_GROUP, users)
    assert {r.outcome for r in results} == {Outcome.DONE}
    assert fake_time.sleeps == [3]  # the parts' Retry-After, once, for both
    envelopes = server.requests.find("POST", r"/\$batch$")
    assert len(envelopes) == 2
    second = [r for r in server.requests.all() if r.batch_id == envelopes[1].request_id]
    assert len(second) == 2  # only the throttled parts were sent again
    assert server.requests.count("DELETE", status=429) == 2


def test_remove_members_gives_up_per_part_as_transient(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    server.faults.throttle_next(50, retry_after=2, path=rf"/members/{BOB}/\$ref$")
    results = {r.user_id: r for r in client.remove_members(E3_GROUP, [ALICE, BOB])}
    assert results[ALICE].outcome is Outcome.DONE
    assert results[BOB].outcome is Outcome.TRANSIENT
    error = results[BOB].error
    assert isinstance(error, Transient)
    assert error.retry_after == 2
    assert fake_time.sleeps == [2, 2, 2, 2]  # max_attempts=5 in these tests


def test_remove_members_from_a_synced_group_sends_no_write(
    server: GraphServer, client: GraphClient
) -> None:
    results = client.remove_members(SYNCED_GROUP, [BOB, ALICE])
    assert {r.outcome for r in results} == {Outcome.REJECTED}
    assert "onprem_ad" in str(results[0].error)
    assert server.requests.count("POST", r"/\$batch$") == 0
    assert server.requests.count("DELETE") == 0


def test_remove_members_of_many_users_in_concurrent_batches(
    server: GraphServer, client: GraphClient
) -> None:
    big = server.tenant.add_group("Big Licensed")
    ids = []
    for i in range(95):
        user = server.tenant.add_user(f"bulk{i:03d}@fabrikam.example")
        server.tenant.add_member(big.id, user.id, journal=False)
        ids.append(user.id)
    results = client.remove_members(big.id, ids)
    assert [r.user_id for r in results] == ids
    assert {r.outcome for r in results} == {Outcome.DONE}
    assert server.requests.count("POST", r"/\$batch$") == 5  # 4 x 20 + 15
    assert server.tenant.groups[big.id].members == {}


def test_remove_direct_license(server: GraphServer, client: GraphClient) -> None:
    client.remove_direct_license(ALICE, VISIO_SKU)
    alice = client.get_user(ALICE)
    assert alice.direct_licenses() == ()
    assert alice.licenses_from_group(VISIO_GROUP)  # the group grant stays
    # Again (a retry after a crash): done, and the remaining group grant is named.
    with pytest.raises(AlreadyDone, match=f"still granted by group.s. {VISIO_GROUP}"):
        client.remove_direct_license(ALICE, VISIO_SKU)
    with pytest.raises(AlreadyDone, match="no direct assignment"):
        client.remove_direct_license(DAVE, E3_SKU)
    with pytest.raises(NotFound):
        client.remove_direct_license(UNKNOWN_USER, E3_SKU)
