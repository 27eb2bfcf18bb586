"""$batch mechanics: per-part retries, dependsOn and 424, envelope limits."""

from __future__ import annotations

import pytest

from reclaim.connectors.graph import GraphClient
from reclaim.connectors.graph.batch import BatchPart, run_batch, run_batches
from reclaim.connectors.graph.messages import GraphRequest
from reclaim.testing.graph import GraphServer

from .conftest import ALICE, BOB, FakeTime

SELECT = {"$select": "id"}


def _get(user: str) -> GraphRequest:
    return GraphRequest("GET", f"/users/{user}", params=SELECT)


def test_failed_dependency_is_424(server: GraphServer, client: GraphClient) -> None:
    parts = [
        BatchPart("a", _get("nobody@fabrikam.example")),
        BatchPart("b", _get(ALICE), depends_on=("a",)),
    ]
    answers = run_batch(client.transport, parts)
    assert (answers["a"].status, answers["b"].status) == (404, 424)
    assert answers["b"].failure.code == "FailedDependency"


def test_a_dependent_follows_its_throttled_target(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    server.faults.throttle_next(1, retry_after=1, path=rf"/users/{ALICE}$")
    parts = [BatchPart("a", _get(ALICE)), BatchPart("b", _get(BOB), depends_on=("a",))]
    answers = run_batch(client.transport, parts)
    assert (answers["a"].status, answers["b"].status) == (200, 200)
    assert fake_time.sleeps == [1]
    bob = [r.status for r in server.requests.find("GET", rf"/users/{BOB}$")]
    assert bob == [424, 200]


def test_a_retried_part_drops_a_dependency_that_already_succeeded(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    server.faults.throttle_next(1, retry_after=2, path=rf"/users/{BOB}$")
    parts = [BatchPart("a", _get(ALICE)), BatchPart("b", _get(BOB), depends_on=("a",))]
    answers = run_batch(client.transport, parts)
    assert (answers["a"].status, answers["b"].status) == (200, 200)
    assert server.requests.count("GET", rf"/users/{ALICE}$") == 1


def test_batch_limits_are_checked_before_sending(server: GraphServer, client: GraphClient) -> None:
    with pytest.raises(ValueError, match="1 to 20"):
        run_batch(client.transport, [BatchPart(str(i), _get(ALICE)) for i in range(21)])
    with pytest.raises(ValueError, match="unique"):
        run_batch(client.transport, [BatchPart("x", _get(ALICE)), BatchPart("X", _get(BOB))])
    with pytest.raises(ValueError, match="relative"):
        run_batch(client.transport, [BatchPart("1", GraphRequest("GET", "https://h/v1.0/users"))])
    assert server.requests.all() == []


def test_run_batches_splits_and_keeps_ids(server: GraphServer, client: GraphClient) -> None:
    parts = [BatchPart(f"p{i}", _get(ALICE if i % 2 else BOB)) for i in range(45)]
    answers = run_batches(client.transport, parts)
    assert set(answers) == {p.id for p in parts}
    assert server.requests.count("POST", r"/\$batch$") == 3
