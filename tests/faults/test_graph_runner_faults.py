"""The Entra runner when Graph's sign-in fails, the app's credentials are revoked mid-run,
or Graph hangs for 30 s (throttling, 5xx bursts and short timeouts through the runner
are in tests/integration/entra/test_runner_faults.py; at the connector, in
tests/integration/graph/test_resilience.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.domain.case import CaseState
from reclaim.testing.graph import GraphServer, ManualClock
from reclaim.workflows.directory import Directories
from reclaim.workflows.entra_id import REMOVE
from tests.faults.scale import Figures, record
from tests.integration.entra.conftest import (
    ALICE,
    CLIENT_ID,
    CLIENT_SECRET,
    DOLLAR,
    DORA,
    E3_GROUP,
    GUEST,
    OBRIEN,
    UPNS,
)
from tests.integration.entra.runner_world import (
    SECRET_ENV,
    EntraWorld,
    build_entra_world,
    entra_policy,
)

S = CaseState
E3_IDS = (ALICE, OBRIEN, DOLLAR, GUEST, DORA)
TOKEN = r"/oauth2/v2.0/token$"


@pytest.fixture
def world(
    server: GraphServer,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[EntraWorld]:
    """E3 with ask_permission off: the first pass would remove all five members."""
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    made = build_entra_world(
        server, clock, db_url, tmp_path, entra_policy("E3", E3_GROUP, ask=False)
    )
    made.cycle()
    yield made
    made.close()


def states(world: EntraWorld) -> dict[str, CaseState]:
    return {UPNS[u]: world.case(UPNS[u]).case.state for u in E3_IDS}


def record_graph(world: EntraWorld, server: GraphServer, fault: str, *, injected: int) -> None:
    """This run's row of the reliability table (ask_permission off: all five consented);
    "lost" counts cases neither removed nor still waiting, due, for a later pass."""
    oks = [len(server.requests.removals_of(E3_GROUP, u, ok=True)) for u in E3_IDS]
    stuck = [
        u
        for u in E3_IDS
        if world.case(UPNS[u]).case.state not in (S.REMOVED, S.CANDIDATE, S.REMOVAL_PENDING)
    ]
    record(
        Figures(
            fault=fault,
            peer="Entra ID (Graph test server)",
            database=world.ctx.engine.url.get_backend_name(),
            injected=injected,
            cases=len(E3_IDS),
            consented=len(E3_IDS),
            removals=sum(oks),
            duplicates=sum(1 for n in oks if n > 1),
            lost=len(stuck),
        )
    )


def assert_untried_still_due(world: EntraWorld, *tried: int) -> None:
    """Every case the stopped pass did not reach is as the cycle left it: authorized,
    due now, nothing sent, no error."""
    for uid in E3_IDS:
        stored = world.case(UPNS[uid])
        if stored.id in tried:
            continue
        assert stored.case.state in (S.CANDIDATE, S.REMOVAL_PENDING), stored.case.state
        assert stored.last_error is None and stored.case.attempts == 0
        assert stored.next_due_at is not None and stored.next_due_at <= world.clock().timestamp()


@pytest.mark.parametrize("fault", ["503", "timeout"])
def test_sign_in_down_the_pass_stops_and_nothing_is_half_done(
    world: EntraWorld, server: GraphServer, fault: str
) -> None:
    if fault == "503":
        server.faults.fail_token_endpoint(None, 503)
    else:  # the token endpoint holds the request past the client's read timeout
        server.faults.hang_next(30.0, count=100, path=TOKEN)
    stats = world.drain(world.directories(settings={"read_timeout": 0.5}))

    # One case tried sign-in and waits for a retry; the pass stopped there instead of
    # trying sign-in again for every other case.
    assert stats.results() == {"retry": 1}
    (stop,) = stats.stops
    why = (
        "token endpoint failed: HTTP Error: 503"
        if fault == "503"
        else "cannot reach the token endpoint"
    )
    assert why in stop
    assert server.requests.count("DELETE") == 0
    tried = [s for s in (world.case(UPNS[u]) for u in E3_IDS) if s.last_error]
    assert len(tried) == 1 and why in (tried[0].last_error or "")
    assert tried[0].next_due_at is not None and tried[0].next_due_at > world.clock().timestamp()
    assert_untried_still_due(world, tried[0].id)
    assert all(server.is_member(u, E3_GROUP) for u in E3_IDS)

    server.faults.clear()  # sign-in is back: the next passes remove each seat once
    for _ in range(5):
        world.clock.advance(minutes=20)
        world.drain()
    assert set(states(world).values()) == {S.REMOVED}
    assert len(server.requests.removals()) == 5
    record_graph(world, server, f"Graph token endpoint {fault}, then back", injected=1)


def revoking_directories(world: EntraWorld, server: GraphServer, after: int) -> Directories:
    """The production factory, with the app's credentials revoked in the tenant right
    after the ``after``-th removal landed (as an admin deleting the secret would)."""
    removals: list[dict[str, Any]] = []

    def observe(step: dict[str, Any]) -> None:  # the Entra adapter files dicts
        if step["step"] == REMOVE and step["outcome"] == "204":
            removals.append(step)
            if len(removals) == after:
                server.disable_client(CLIENT_ID)

    return world.directories(observer=observe)


def test_credentials_revoked_mid_run_stop_the_run_and_the_admin_is_told(
    world: EntraWorld, server: GraphServer
) -> None:
    # Groups of one removal: the credentials go between two $batch requests (with the
    # default group of 20, all five seats here would travel in the first one).
    stats = world.drain(revoking_directories(world, server, after=2), group_size=1)

    assert stats.results() == {"removed": 2, "stopped": 1}
    (stop,) = stats.stops
    assert "disabled" in stop and "7000112" in stop and CLIENT_SECRET not in stop
    removed = [u for u in E3_IDS if world.case(UPNS[u]).case.state is S.REMOVED]
    assert len(removed) == 2  # the removals that were sent are recorded
    assert len(server.requests.removals()) == 2
    stopped = [world.case(UPNS[u]) for u in E3_IDS if world.case(UPNS[u]).last_error]
    assert len(stopped) == 1  # the case in hand says why, and waits (nothing half-done)
    assert "disabled" in (stopped[0].last_error or "")
    assert stopped[0].case.state in (S.CANDIDATE, S.REMOVAL_PENDING)
    assert server.is_member(stopped[0].case.user, E3_GROUP)
    assert_untried_still_due(world, *[world.case(UPNS[u]).id for u in removed], stopped[0].id)
    record_graph(world, server, "Graph credentials revoked mid-run (run stops)", injected=1)


def test_worker_command_says_the_credentials_were_revoked(
    world: EntraWorld, server: GraphServer
) -> None:
    server.disable_client(CLIENT_ID)
    result = CliRunner().invoke(app, ["worker", "--once", "-c", str(world.config)])
    assert result.exit_code == 0, result.output  # a stopped pass is reported, not a crash
    assert "stopped:" in result.stderr and "disabled" in result.stderr
    assert CLIENT_SECRET not in result.output + result.stderr
    assert server.requests.count("DELETE") == 0
    # The command runs several cases at once: each case in hand when sign-in was refused
    # says why and waits; none went further.
    stopped = [world.case(UPNS[u]) for u in E3_IDS if world.case(UPNS[u]).last_error]
    assert stopped and all("disabled" in (s.last_error or "") for s in stopped)
    assert all(server.is_member(u, E3_GROUP) for u in E3_IDS)


def test_30_second_hangs_time_out_and_each_seat_is_removed_once(
    world: EntraWorld, server: GraphServer
) -> None:
    # Graph holds two $batch requests for 30 s (the UPN lookups, then the DELETEs, or
    # their retries); the client gives up after 1 s. A held DELETE lands when the server
    # lets it go, after its client has left.
    batches = server.faults.hang_next(30.0, count=2, path=r"/\$batch$")
    started = time.monotonic()
    directories = {"settings": {"read_timeout": 1.0}}
    for _ in range(10):
        world.drain(world.directories(**directories))  # type: ignore[arg-type]
        if set(states(world).values()) == {S.REMOVED}:
            break
        world.clock.advance(hours=1)
    assert time.monotonic() - started < 25  # nobody waited for a hang to end
    assert batches.fired == 2
    assert set(states(world).values()) == {S.REMOVED}
    server.faults.clear()  # release the held requests: they reach the tenant now
    time.sleep(0.5)
    for uid in E3_IDS:
        assert len(server.requests.removals_of(E3_GROUP, uid, ok=True)) == 1, UPNS[uid]
        assert not server.is_member(uid, E3_GROUP)
    record_graph(world, server, "Graph 30-s hangs (client timeout 1 s)", injected=3)


def test_run_json_says_why_the_pass_stopped(world: EntraWorld, server: GraphServer) -> None:
    server.disable_client(CLIENT_ID)
    result = CliRunner().invoke(app, ["run", "--policy", "E3", "--json", "-c", str(world.config)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["blocked"] is None  # the group is writable: the stop is the sign-in's
    assert out["stopped"] and all("disabled" in s for s in out["stopped"])
    assert CLIENT_SECRET not in result.stdout
    assert server.requests.count("DELETE") == 0
