"""``reclaim run``, ``cases show``, ``pause`` and ``restore`` on a real config against the
Graph server: the production wiring (``default_directories`` building the Graph client
from ``entra:``), over HTTPS on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.domain.case import CaseState
from reclaim.store.tables import cases, directory_writes
from reclaim.testing.graph import GraphServer, ManualClock

from .conftest import ALICE, CLIENT_SECRET, DOLLAR, DORA, E3_GROUP, GUEST, OBRIEN, UPNS
from .runner_world import SECRET_ENV, EntraWorld, build_entra_world, entra_policy

S = CaseState
E3_IDS = (ALICE, OBRIEN, DOLLAR, GUEST, DORA)
ADD_REF = rf"/groups/{E3_GROUP}/members/\$ref$"
pytestmark = pytest.mark.slow  # each test starts the CLI several times


@pytest.fixture
def make_world(
    server: GraphServer,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    made: list[EntraWorld] = []

    def build(**kw: Any) -> EntraWorld:
        world = build_entra_world(
            server, clock, db_url, tmp_path, entra_policy("E3", E3_GROUP, ask=False), **kw
        )
        made.append(world)
        return world

    yield build
    for world in made:
        world.close()


def cli(world: EntraWorld, *args: str, ok: bool = True) -> Any:
    result = CliRunner().invoke(app, [*args, "-c", str(world.config)])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def run_json(world: EntraWorld, *extra: str) -> dict[str, Any]:
    return json.loads(cli(world, "run", "--policy", "E3", "--json", *extra).stdout)


def case_id(world: EntraWorld, uid: str) -> int:
    return world.case(UPNS[uid]).id


def test_run_removes_and_cases_show_lists_each_graph_step(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world()
    out = run_json(world)
    assert sorted(s["result"] for s in out["steps"]) == ["removed"] * 5
    assert out["blocked"] is None and out["stopped"] == []
    for uid in E3_IDS:
        assert len(server.requests.removals_of(E3_GROUP, uid)) == 1
    shown = json.loads(cli(world, "cases", "show", str(case_id(world, GUEST)), "--json").stdout)
    assert shown["state"] == "removed"
    steps = shown["history"][-1]["data"]["steps"]
    assert [s["step"] for s in steps][-1] == "Remove from group"
    assert {s["input"] for s in steps if s["step"].startswith("Get user")} == {UPNS[GUEST].lower()}
    text = cli(world, "cases", "show", str(case_id(world, GUEST))).stdout
    assert f"· Remove from group: {E3_GROUP} → 204 (" in text


def test_dry_run_sends_no_write_and_keeps_nothing(make_world: Any, server: GraphServer) -> None:
    world = make_world()
    out = run_json(world, "--dry-run")
    assert out["dry_run"] and {s["result"] for s in out["steps"]} == {"refused"}
    assert server.requests.count("DELETE") == 0 and server.requests.count("POST", ADD_REF) == 0
    with world.ctx.engine.connect() as conn:
        assert conn.execute(select(cases.c.id)).first() is None
    assert all(server.is_member(uid, E3_GROUP) for uid in E3_IDS)


def test_pause_stops_every_write_until_resumed(make_world: Any, server: GraphServer) -> None:
    world = make_world()
    cli(world, "pause")
    out = run_json(world)
    assert {s["result"] for s in out["steps"]} == {"refused"}
    assert server.requests.count("DELETE") == 0
    cli(world, "resume")
    world.clock.advance(minutes=20)  # refused cases look again after 15 minutes
    assert world.drain().results() == {"removed": 5}
    assert len(server.requests.removals()) == 5


def test_national_cloud_host_name(make_world: Any, server: GraphServer) -> None:
    # Another host name for the same loopback server, as a sovereign cloud's Graph would be.
    world = make_world(graph_url=f"https://localhost:{server.port}")
    assert world.settings.entra is not None and "localhost" in world.settings.entra.graph_url
    out = run_json(world)
    assert sorted(s["result"] for s in out["steps"]) == ["removed"] * 5
    assert len(server.requests.removals()) == 5


def test_restore_adds_back_once_and_only_a_removed_case(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world()
    run_json(world)
    cid = str(case_id(world, ALICE))
    dry = cli(world, "restore", cid, "--dry-run")
    assert "would add the user back" in dry.stdout
    assert server.requests.count("POST", ADD_REF) == 0
    done = json.loads(cli(world, "restore", cid, "--reason", "needs it", "--json").stdout)
    assert done["result"] == "restored"
    assert [s["step"] for s in done["steps"]][-1] == "Add to group"
    assert server.requests.count("POST", ADD_REF) == 1 and server.is_member(ALICE, E3_GROUP)
    case = world.case(UPNS[ALICE]).case
    assert case.state is S.RESTORED
    event = case.history[-1]
    assert event.data["reason"] == "needs it" and event.data["steps"][-1]["outcome"] == "204"
    again = cli(world, "restore", cid, ok=False)
    assert again.exit_code != 0 and "only a removed case can be restored" in again.output
    assert server.requests.count("POST", ADD_REF) == 1
    never = cli(world, "restore", "999999", ok=False)
    assert never.exit_code != 0 and "no case #999999" in never.output


def test_restore_of_someone_already_back_is_success(make_world: Any, server: GraphServer) -> None:
    world = make_world()
    run_json(world)
    server.tenant.add_member(E3_GROUP, OBRIEN)  # an admin put them back by hand
    done = json.loads(cli(world, "restore", str(case_id(world, OBRIEN)), "--json").stdout)
    assert done["result"] == "already_member"
    assert [r.status for r in server.requests.find("POST", ADD_REF)] == [400]
    case = world.case(UPNS[OBRIEN]).case
    assert case.state is S.RESTORED and case.history[-1].data["already_member"] is True


def test_restore_while_paused_is_refused_and_sends_nothing(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world()
    run_json(world)
    cli(world, "pause")
    cid = case_id(world, DORA)
    refused = cli(world, "restore", str(cid), ok=False)
    assert refused.exit_code != 0 and "paused" in refused.output
    assert server.requests.count("POST", ADD_REF) == 0
    assert world.case(UPNS[DORA]).case.state is S.REMOVED


@contextmanager
def record_held(world: EntraWorld, cid: int) -> Iterator[None]:
    """Hold a lock that makes the worker's next write to the store wait (a row lock on
    the case on PostgreSQL, the database write lock on SQLite)."""
    url = world.ctx.engine.url
    if url.get_backend_name() == "sqlite":
        raw = sqlite3.connect(str(url.database), isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")
            yield
        finally:
            raw.execute("ROLLBACK")
            raw.close()
        return
    with world.ctx.engine.connect() as conn:
        conn.execute(select(cases.c.id).where(cases.c.id == cid).with_for_update())
        try:
            yield
        finally:
            conn.rollback()


def test_worker_killed_after_the_delete_landed_before_recording_it_deletes_once(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world()
    world.cycle()
    alice = world.case(UPNS[ALICE])
    # The five removals go as one group (services/group_removal.py): after the $batch
    # reads of the UPNs and of the memberships, the $batch of DELETEs is held at the
    # server; while it waits, the test takes a lock that makes the worker's record of
    # the outcomes wait; once the DELETEs have landed, the worker is killed: the
    # removals happened, Reclaim never recorded them.
    rule = server.faults.add_latency(1.0, count=3, path=r"/\$batch$")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reclaim", "worker", "--once", "-c", str(world.config)],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: rule.fired == 3 or proc.poll() is not None, 60)
        assert rule.fired == 3, "the worker never sent its DELETEs"
        with record_held(world, alice.id):
            wait_for(lambda: len(server.requests.removals(ok=True)) == 5, 10)
            time.sleep(0.3)  # the worker is now waiting on the lock to record it
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert not any(server.is_member(uid, E3_GROUP) for uid in E3_IDS)
    dead = world.case(UPNS[ALICE])
    assert dead.case.state is S.REMOVAL_PENDING and dead.case.attempts == 1
    world.clock.advance(minutes=11)  # the dead worker's leases run out
    world.drain()
    for uid in E3_IDS:  # each case read membership, found it gone: already removed
        stored = world.case(UPNS[uid])
        assert (stored.case.state, stored.case.history[-1].cause) == (S.REMOVED, "already_removed")
        assert len(server.requests.removals_of(E3_GROUP, uid, ok=None)) == 1, UPNS[uid]
    with world.ctx.engine.connect() as conn:
        rows = conn.execute(select(directory_writes.c.sends, directory_writes.c.result)).all()
    assert sorted((r.sends, r.result) for r in rows) == [(1, "already_done")] * 5


def wait_for(done: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_restore_the_directory_refuses_leaves_the_case_removed_and_says_why(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world()
    run_json(world)
    with server.tenant.lock:  # the account was deleted since the removal
        del server.tenant.users[DOLLAR]
    stored = world.case(UPNS[DOLLAR])
    failed = cli(world, "restore", str(stored.id), ok=False)
    assert failed.exit_code != 0
    assert "did not add" in failed.output and "NotFound" in failed.output
    assert server.requests.count("POST", ADD_REF) == 0
    after = world.case(UPNS[DOLLAR])
    assert after.case.state is S.REMOVED
    resolve = after.case.history[-1].data["steps"][-1]
    assert resolve["step"] == "Get user UUID from UPN" and resolve["outcome"].startswith("NotFound")
