"""The runner against a Graph server that throttles, fails and hangs.

Throttling storms (the server's own token buckets, with and without Retry-After, and
injected 429s), 5xx bursts and timeouts: every case still finishes, and the request
log shows exactly one successful ``DELETE .../$ref`` per removed seat, even where a
timed-out DELETE landed at the server after the client gave up on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reclaim.domain.case import CaseState
from reclaim.testing.graph import GraphServer, ManualClock

from .conftest import ALICE, CLIENT_SECRET, DOLLAR, DORA, E3_GROUP, GUEST, OBRIEN, UPNS
from .runner_world import SECRET_ENV, EntraWorld, build_entra_world, entra_policy

S = CaseState
E3_IDS = (ALICE, OBRIEN, DOLLAR, GUEST, DORA)
REF = r"/groups/[^/]+/members/[^/]+/\$ref$"


@pytest.fixture
def world(
    server: GraphServer,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[EntraWorld]:
    """E3 with ask_permission off: the first pass removes every member."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    made = build_entra_world(
        server, clock, db_url, tmp_path, entra_policy("E3", E3_GROUP, ask=False)
    )
    made.cycle()
    yield made
    made.close()


def run_until_done(world: EntraWorld, **directory_options: Any) -> list[Any]:
    """Drain, move the clock past any backoff, drain again, until no case is open."""
    passes = []
    for _ in range(40):
        passes.append(world.drain(world.directories(**directory_options)))
        if all(world.case(UPNS[u]).case.state is S.REMOVED for u in E3_IDS):
            return passes
        world.clock.advance(hours=2)
    states = {UPNS[u]: world.case(UPNS[u]).case.state for u in E3_IDS}
    raise AssertionError(f"cases still open after 40 passes: {states}")


def assert_one_delete_each(server: GraphServer) -> None:
    for uid in E3_IDS:
        landed = server.requests.removals_of(E3_GROUP, uid, ok=True)
        assert len(landed) == 1, (UPNS[uid], [r.status for r in landed])
        assert not server.is_member(uid, E3_GROUP)


@pytest.mark.parametrize("retry_after", [True, False], ids=["retry-after", "no-retry-after"])
def test_throttling_storm_every_case_finishes(
    world: EntraWorld, server: GraphServer, retry_after: bool
) -> None:
    # A tiny tenant budget: reads and writes both run into the server's token buckets.
    server.throttle.configure(scale=0.002, send_retry_after=retry_after)
    server.faults.throttle_next(6, retry_after=3 if retry_after else None, path=REF)
    run_until_done(world)
    assert_one_delete_each(server)
    throttled = server.requests.find(status=429)
    assert len(throttled) >= 6
    assert any(r.fault is None for r in throttled), "the server's own limits never bit"


def test_5xx_bursts_are_retried(world: EntraWorld, server: GraphServer) -> None:
    server.faults.fail_next(4, 503, method="DELETE", path=REF)
    server.faults.fail_next(3, 500, method="GET", path=r"/groups/[^/]+$")  # the group check
    server.faults.fail_next(2, 502, method="GET", path=r"/users/")  # UPN lookups ($batch parts)
    run_until_done(world)
    assert_one_delete_each(server)
    assert server.requests.count("DELETE", REF, status=503) == 4
    assert server.requests.count("GET", status=500) == 3


def test_timeouts_are_retried(world: EntraWorld, server: GraphServer) -> None:
    # Requests held past the client's read timeout: the client gives up on them and
    # tries again. A held DELETE may still land after its client left (then the retry
    # finds the member gone: already_removed); either way it lands once.
    # Removals go in $batch requests (services/group_removal.py): the first two, the
    # UPN lookups and then the DELETEs, or their retries, are held.
    batches = server.faults.hang_next(1.0, count=2, path=r"/\$batch")
    run_until_done(world, settings={"read_timeout": 0.3})
    assert batches.fired == 2  # two requests did time out
    assert_one_delete_each(server)
    causes = {world.case(UPNS[u]).case.history[-1].cause for u in E3_IDS}
    assert causes <= {"removed", "already_removed"}
