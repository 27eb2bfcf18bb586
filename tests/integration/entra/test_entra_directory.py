"""EntraDirectory against the Graph test server over HTTPS on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from reclaim.config import parse_settings
from reclaim.connectors.errors import AlreadyDone, Rejected, WriteRefused
from reclaim.connectors.graph import GraphClient
from reclaim.domain.policy import Workflow
from reclaim.testing.graph import GraphServer
from reclaim.workflows.directory import DirectoryPort, RemoveOutcome
from reclaim.workflows.entra_id import (
    ADD,
    CHECK,
    DIRECT_LICENSE,
    REMOVE,
    RESOLVE,
    EntraDirectory,
    entra_directory_factory,
)

from .conftest import (
    ALICE,
    DORA,
    DYNAMIC_GROUP,
    E3_GROUP,
    ERIN,
    GUEST,
    OBRIEN,
    SYNCED_GROUP,
    UPNS,
    policy,
)

E3 = policy("E3", E3_GROUP)
ERIN_GROUP = "ee000000-0000-0000-0000-0000000000ee"


def test_is_a_directory_port(client: GraphClient) -> None:
    assert isinstance(EntraDirectory(client), DirectoryPort)


@pytest.mark.parametrize("uid", list(UPNS))
def test_is_member_resolves_awkward_upns(client: GraphClient, uid: str) -> None:
    directory = EntraDirectory(client)
    assert directory.is_member(policy=E3, user=UPNS[uid].upper()) is (uid != ERIN)
    assert directory.object_id(UPNS[uid]) == uid


def test_remove_sends_one_delete_with_ref_and_records_steps(
    server: GraphServer, client: GraphClient
) -> None:
    seen: list[dict[str, Any]] = []
    directory = EntraDirectory(client, on_step=seen.append)
    assert directory.is_member(policy=E3, user=UPNS[GUEST])
    server.requests.clear()

    outcome = directory.remove_member(policy=E3, user=UPNS[GUEST], idempotency_key="k1")

    assert outcome is RemoveOutcome.REMOVED
    deletes = server.requests.find("DELETE")
    assert [(d.path, d.status) for d in deletes] == [
        (f"/v1.0/groups/{E3_GROUP}/members/{GUEST}/$ref", 204)
    ]
    assert server.requests.count("GET", r"/users/") == 0  # the UPN → id came from the cache
    assert not server.is_member(GUEST, E3_GROUP)
    steps = directory.take_steps()
    assert [s["step"] for s in steps] == [RESOLVE, CHECK, "Read group", RESOLVE, REMOVE]
    assert steps[0]["outcome"] == GUEST and steps[1]["outcome"] == "member"
    assert steps[3]["outcome"] == f"{GUEST} (cached)" and steps[3]["ms"] == 0
    assert steps[-1] == {"step": REMOVE, "input": E3_GROUP, "outcome": "204", "ms": steps[-1]["ms"]}
    assert all(isinstance(s["ms"], int) and s["ms"] >= 0 for s in steps)
    assert seen == steps and directory.take_steps() == []


def test_remove_non_member_is_already_done(server: GraphServer, client: GraphClient) -> None:
    directory = EntraDirectory(client)
    with pytest.raises(AlreadyDone):
        directory.remove_member(policy=E3, user=UPNS[ERIN], idempotency_key="k")
    assert directory.steps[-1]["step"] == REMOVE
    assert directory.steps[-1]["outcome"] == "already done"


def test_remove_twice_second_is_already_done(server: GraphServer, client: GraphClient) -> None:
    directory = EntraDirectory(client)
    directory.remove_member(policy=E3, user=UPNS[ALICE], idempotency_key="k")
    with pytest.raises(AlreadyDone):
        directory.remove_member(policy=E3, user=UPNS[ALICE], idempotency_key="k")
    assert server.requests.count("DELETE") == 2
    assert not server.is_member(ALICE, E3_GROUP)


def test_direct_license_is_reported_not_touched(server: GraphServer, client: GraphClient) -> None:
    directory = EntraDirectory(client)
    directory.remove_member(policy=E3, user=UPNS[DORA], idempotency_key="k")
    note = directory.steps[-1]
    assert note["step"] == DIRECT_LICENSE and "kept" in note["outcome"]
    assert server.requests.count("POST", r"assignLicense") == 0
    states = server.tenant.users[DORA].license_states
    assert [s.assigned_by_group for s in states] == [None]  # the direct seat stays


def test_synced_group_is_rejected_with_onprem_hint_and_nothing_sent(
    server: GraphServer, client: GraphClient
) -> None:
    directory = EntraDirectory(client)
    synced = policy("Synced", SYNCED_GROUP)
    with pytest.raises(Rejected, match="onprem_ad"):
        directory.remove_member(policy=synced, user=UPNS[ALICE], idempotency_key="k")
    assert server.requests.count("DELETE") == 0
    assert server.is_member(ALICE, SYNCED_GROUP)


def test_dynamic_group_is_rejected_and_nothing_sent(
    server: GraphServer, client: GraphClient
) -> None:
    directory = EntraDirectory(client)
    dynamic = policy("Dynamic", DYNAMIC_GROUP)
    with pytest.raises(Rejected, match="dynamic membership"):
        directory.remove_member(policy=dynamic, user=UPNS[ALICE], idempotency_key="k")
    with pytest.raises(Rejected):
        directory.add_member(policy=dynamic, user=UPNS[ERIN], idempotency_key="k")
    assert server.requests.count("DELETE") == 0
    assert server.requests.count("POST", r"/members/\$ref") == 0


def test_add_back_then_already_member(server: GraphServer, client: GraphClient) -> None:
    directory = EntraDirectory(client)
    directory.remove_member(policy=E3, user=UPNS[ALICE], idempotency_key="k")
    directory.add_member(policy=E3, user=UPNS[ALICE], idempotency_key="r")
    assert server.is_member(ALICE, E3_GROUP)
    assert directory.steps[-1]["step"] == ADD and directory.steps[-1]["outcome"] == "204"
    with pytest.raises(AlreadyDone):
        directory.add_member(policy=E3, user=UPNS[ALICE], idempotency_key="r")


def test_dry_run_refuses_and_sends_nothing(server: GraphServer, make_client: Any) -> None:
    directory = EntraDirectory(make_client(dry_run=True))
    assert directory.is_member(policy=E3, user=UPNS[ALICE])  # reads still work
    with pytest.raises(WriteRefused):
        directory.remove_member(policy=E3, user=UPNS[ALICE], idempotency_key="k")
    with pytest.raises(WriteRefused):
        directory.add_member(policy=E3, user=UPNS[ERIN], idempotency_key="k")
    assert server.requests.find("DELETE") == []
    assert server.requests.count("POST", r"/members/\$ref") == 0
    assert server.is_member(ALICE, E3_GROUP)


def test_kill_switch_is_read_at_each_write(server: GraphServer, make_client: Any) -> None:
    paused = [False]
    directory = EntraDirectory(make_client(writes_allowed=lambda: not paused[0]))
    directory.remove_member(policy=E3, user=UPNS[ALICE], idempotency_key="k")
    paused[0] = True
    with pytest.raises(WriteRefused):
        directory.remove_member(policy=E3, user=UPNS[OBRIEN], idempotency_key="k2")
    assert server.requests.count("DELETE") == 1


def _settings(extra: str = "") -> Any:
    text = (
        "entra:\n"
        "  tenant_id: 0d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6\n"
        "  client_id: 6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d\n"
        "  client_secret: env:RECLAIM_TEST_UNSET_SECRET  # resolved only at sign-in\n"
        "  authority_host: https://login.microsoftonline.us\n"
        "  graph_url: https://dod-graph.microsoft.us\n" + extra
    )
    return parse_settings(text, source="test.yaml")


def test_factory_builds_national_cloud_client_shared_by_policies() -> None:
    directories = entra_directory_factory(_settings(), tenant_size="L")
    try:
        first = directories(E3)
        assert directories(policy("Other", ERIN_GROUP, Workflow.ENTRA_ID)) is first
        graph = first.client.settings
        assert graph.api_root == "https://dod-graph.microsoft.us/v1.0"
        assert graph.authority == (
            "https://login.microsoftonline.us/0d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"
        )
        assert graph.token_scope == "https://dod-graph.microsoft.us/.default"
        assert graph.tenant_size == "L"
    finally:
        directories.close()


def test_factory_honours_safety_dry_run() -> None:
    directories = entra_directory_factory(_settings("safety: {dry_run: true}\n"))
    try:
        with pytest.raises(WriteRefused):
            directories(E3).client.remove_member(E3_GROUP, ALICE)  # refused before any I/O
    finally:
        directories.close()


def test_factory_honours_paused() -> None:
    directories = entra_directory_factory(_settings("safety: {paused: true}\n"))
    try:
        with pytest.raises(WriteRefused):
            directories(E3).client.add_member(E3_GROUP, ALICE)
    finally:
        directories.close()


def test_remove_many_batches_and_reports_each_user(
    server: GraphServer, client: GraphClient
) -> None:
    directory = EntraDirectory(client)
    assert directory.is_member(policy=E3, user=UPNS[ALICE])  # Alice's id is cached
    server.requests.clear()
    directory.take_steps()
    wanted = [UPNS[ALICE], UPNS[GUEST], UPNS[OBRIEN], UPNS[ERIN], "nobody@contoso.example"]

    results = directory.remove_many(policy=E3, users=wanted)

    assert {k: r.outcome.value for k, r in results.items()} == {
        UPNS[ALICE]: "done",
        UPNS[GUEST].lower(): "done",
        UPNS[OBRIEN]: "done",
        UPNS[ERIN]: "already_done",
        "nobody@contoso.example": "not_found",
    }
    assert server.requests.count("DELETE", batch_part=True) == 4
    assert server.requests.count("DELETE", batch_part=False) == 0
    assert not server.is_member(GUEST, E3_GROUP) and not server.is_member(OBRIEN, E3_GROUP)
    steps = directory.take_steps()
    assert [s["step"] for s in steps] == ["Read group", RESOLVE, REMOVE]
    assert steps[1]["input"] == "4 users" and steps[1]["outcome"] == "3 resolved, 1 failed"
    assert steps[0] == {
        "step": "Read group",
        "input": E3_GROUP,
        "outcome": "E3 Users",
        "ms": steps[0]["ms"],
    }
    assert steps[-1]["outcome"] == "4 of 4 removed or already out"


def test_remove_many_refuses_synced_group_without_writes(
    server: GraphServer, client: GraphClient
) -> None:
    directory = EntraDirectory(client)
    with pytest.raises(Rejected, match="onprem_ad"):
        directory.remove_many(policy=policy("Syn", SYNCED_GROUP), users=[UPNS[ALICE]])
    assert server.requests.count("DELETE") == 0
