"""Dry run, kill switch and the object-delete guard: refused in the transport, never sent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reclaim.connectors.errors import StopRun, WriteRefused
from reclaim.connectors.graph import GraphClient, Outcome
from reclaim.connectors.graph.batch import BatchPart, run_batch
from reclaim.connectors.graph.messages import GraphRequest
from reclaim.testing.graph import GraphServer

from .conftest import (
    ALICE,
    BOB,
    E3_GROUP,
    EMPTY_GROUP,
    PARENT_GROUP,
    VISIO_SKU,
    ClientFactory,
    server_settings,
)

WRITES: list[tuple[str, Callable[[GraphClient], object]]] = [
    ("remove_member", lambda c: c.remove_member(E3_GROUP, BOB)),
    ("remove_members", lambda c: c.remove_members(E3_GROUP, [ALICE, BOB])),
    ("add_member", lambda c: c.add_member(EMPTY_GROUP, BOB)),
    ("remove_direct_license", lambda c: c.remove_direct_license(ALICE, VISIO_SKU)),
]


def _writes_seen(server: GraphServer) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in server.requests.all()
        if r.method in ("DELETE", "PATCH", "PUT")
        or (r.method == "POST" and not r.path.endswith("/token"))
    ]


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[w[0] for w in WRITES])
def test_dry_run_refuses_every_write_before_sending(
    server: GraphServer,
    make_client: ClientFactory,
    name: str,
    write: Callable[[GraphClient], object],
) -> None:
    client = make_client(dry_run=True)
    with pytest.raises(WriteRefused, match="dry run") as info:
        write(client)
    assert info.value.code == "graph-dry-run"
    assert server.requests.all() == []  # not even a sign-in
    assert server.is_member(BOB, E3_GROUP)


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[w[0] for w in WRITES])
def test_kill_switch_refuses_every_write_before_sending(
    server: GraphServer,
    make_client: ClientFactory,
    name: str,
    write: Callable[[GraphClient], object],
) -> None:
    client = make_client(writes_allowed=lambda: False)
    with pytest.raises(WriteRefused, match="paused") as info:
        write(client)
    assert info.value.code == "graph-paused"
    assert _writes_seen(server) == []


def test_reads_still_work_in_dry_run(server: GraphServer, make_client: ClientFactory) -> None:
    client = make_client(dry_run=True)
    assert client.get_user(ALICE).id == ALICE
    assert set(client.get_users([ALICE, BOB])) == {ALICE, BOB}  # a $batch of GETs is a read
    assert client.is_member(PARENT_GROUP, BOB, transitive=True)  # checkMemberGroups reads
    assert client.subscribed_skus()
    assert [r.path for r in server.requests.all() if r.method == "POST"] == [
        f"/{server.tenant.tenant_id}/oauth2/v2.0/token",
        "/v1.0/$batch",
        f"/v1.0/users/{BOB}/checkMemberGroups",
    ]


def test_kill_switch_thrown_mid_run_stops_the_remaining_batches(
    server: GraphServer, make_client: ClientFactory
) -> None:
    group = server.tenant.add_group("Bulk")
    users = []
    for i in range(95):
        user = server.tenant.add_user(f"k{i:03d}@fabrikam.example")
        server.tenant.add_member(group.id, user.id, journal=False)
        users.append(user.id)
    checks = iter([True, True])  # the call's own check and the first batch, then paused

    client = make_client(
        settings=server_settings(server, concurrency=1),
        writes_allowed=lambda: next(checks, False),
    )
    results = client.remove_members(group.id, users)
    outcomes = [r.outcome for r in results]
    assert outcomes == [Outcome.DONE] * 20 + [Outcome.STOPPED] * 75
    assert isinstance(results[-1].error, WriteRefused)
    assert server.requests.count("DELETE") == 20


def test_unreadable_kill_switch_fails_closed(
    server: GraphServer, make_client: ClientFactory
) -> None:
    def broken() -> bool:
        raise ConnectionError("settings store down")

    client = make_client(writes_allowed=broken)
    with pytest.raises(WriteRefused, match="could not be read"):
        client.remove_member(E3_GROUP, BOB)
    assert _writes_seen(server) == []


@pytest.mark.parametrize(
    "path",
    [f"/groups/{E3_GROUP}/members/{BOB}", f"/users/{BOB}", f"/groups/{E3_GROUP}"],
)
def test_delete_without_ref_is_never_sent(
    server: GraphServer, client: GraphClient, path: str
) -> None:
    with pytest.raises(WriteRefused, match="without /\\$ref") as info:
        client.transport.send(GraphRequest("DELETE", path))
    assert isinstance(info.value, StopRun)
    assert info.value.code == "graph-object-delete"
    part = BatchPart("1", GraphRequest("DELETE", path))
    with pytest.raises(WriteRefused, match="without /\\$ref"):
        run_batch(client.transport, [part])
    assert server.requests.all() == []
    assert server.tenant.find_user(BOB) is not None
