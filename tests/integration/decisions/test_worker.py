"""Executing steps: removals through the gate, failures, retries, the kill switch, crashes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from reclaim.connectors.errors import Rejected, StopRun, Transient
from reclaim.domain import case as dc
from reclaim.domain.case import CaseState
from reclaim.domain.case_steps import ready_for_removal
from reclaim.runner.worker import Worker
from reclaim.services.cases import answer, complete_task
from reclaim.store import cases as store
from reclaim.store.leases import PAUSED, set_control
from reclaim.store.tables import directory_writes, memberships, notifications
from reclaim.store.writes import begin_write, get_write
from reclaim.testing.recording_directory import RecordingDirectory
from reclaim.workflows.manual import ManualDirectory, list_tasks

from .conftest import policy_yaml
from .world import build_world

S = CaseState


def test_crash_between_removal_sent_and_recorded_finishes_as_already_removed(
    db_url: str, tmp_path: Path
) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=1, active=2)
    world.cycle()
    stored = world.case("idle0@x.test")
    now = world.clock()
    # What a worker had done when it died: write recorded as sending, case marked sent,
    # removal landed in the directory, outcome never recorded.
    with world.ctx.engine.begin() as conn:
        moved = ready_for_removal(stored.case, policy=world.policy(), at=now)
        stored = store.save_case(conn, stored, moved)
        begin_write(
            conn,
            key=stored.remove_key,
            case_id=stored.id,
            plan_id=stored.plan_id,
            action="remove",
            workflow="recording",
            now=int(now.timestamp()),
        )
        store.save_case(conn, stored, dc.removal_sent(moved, at=now))
    world.directory.remove_member(
        policy=world.policy(), user="idle0@x.test", idempotency_key=stored.remove_key
    )
    world.clock.advance(minutes=5)
    with world.ctx.engine.begin() as conn:  # the dead worker's lease has run out
        store.set_columns(
            conn, world.case("idle0@x.test"), next_due_at=int(world.clock().timestamp())
        )
    assert world.drain().results() == {"already_removed": 1}
    case = world.case("idle0@x.test").case
    assert (case.state, case.status, case.outcome) == (S.REMOVED, "success", "action_taken")
    assert case.history[-1].cause == "already_removed"
    assert world.directory.removals()[("Visio", "idle0@x.test")] == 1  # never sent twice
    with world.ctx.engine.connect() as conn:
        record = get_write(conn, stored.remove_key)
    assert record is not None and record.result == "already_done"


def test_transient_errors_back_off_then_succeed_and_rejections_fail_alone(
    db_url: str, tmp_path: Path
) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=3, active=4)
    world.directory = RecordingDirectory(
        {"Visio": [f"idle{i}@x.test" for i in range(3)]},
        script={
            "idle0@x.test": [Transient("throttled", retry_after=600)],
            "idle1@x.test": [Rejected("dynamic group: members cannot be removed")],
        },
    )
    world.cycle()
    stats = world.drain()
    assert sorted(stats.results().elements()) == ["failed", "removed", "retry"]
    retry = world.case("idle0@x.test")
    assert retry.case.state is S.REMOVAL_PENDING and retry.last_error == "throttled"
    retry_at = retry.case.retry_at
    assert retry_at is not None and retry_at >= world.clock() + dt.timedelta(seconds=600)
    assert retry.next_due_at == int(retry_at.timestamp())  # Retry-After honoured
    failed = world.case("idle1@x.test").case
    assert (failed.state, failed.outcome) == (S.FAILED, "failed")
    assert world.drain().results() == {}  # not due before the backoff ends
    world.clock.advance(seconds=700)
    assert world.drain().results() == {"removed": 1}
    assert [e.cause for e in world.case("idle0@x.test").case.history][-3:] == [
        "retry_later",
        "removal_sent",
        "removed",
    ]


def test_stop_run_ends_the_pass_and_the_case_waits(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=2, active=4)
    world.directory = RecordingDirectory(
        script={u: [StopRun("credentials revoked")] for u in ("idle0@x.test", "idle1@x.test")}
    )
    world.cycle()
    stats = world.drain()
    assert stats.stops == ["credentials revoked"]
    assert stats.results() == {"stopped": 1}  # the second case was not even tried
    tried, untried = world.case("idle0@x.test"), world.case("idle1@x.test")
    assert tried.case.state is S.REMOVAL_PENDING and tried.last_error == "credentials revoked"
    assert untried.last_error is None and untried.case.state is S.CANDIDATE
    assert tried.lease_owner is None and untried.lease_owner is None  # leases given back


def test_the_kill_switch_stops_writes_at_the_gate(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=2, active=4)
    with world.ctx.engine.begin() as conn:
        set_control(conn, PAUSED, "1", by="ops", now=0)
    outcome = world.cycle()
    assert outcome.plan.paused  # the plan shows it
    assert world.drain().results() == {"refused": 2}
    assert world.directory.writes() == []
    assert world.case("idle0@x.test").case.attempts == 0  # nothing was sent
    with world.ctx.engine.begin() as conn:
        set_control(conn, PAUSED, "0", by="ops", now=0)
    world.clock.advance(minutes=20)
    assert world.drain().results() == {"removed": 2}


def test_dry_run_refuses_every_write(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=1, active=4)
    world.cycle()
    assert world.drain(dry_run=True).results() == {"refused": 1}
    assert world.directory.writes() == []
    assert "dry run" in (world.case("idle0@x.test").last_error or "")


def test_reminders_then_timeout_with_release_default(db_url: str, tmp_path: Path) -> None:
    world = build_world(
        db_url, tmp_path, policy_yaml("Visio", default="release"), unused=1, active=3
    )
    world.cycle()
    assert world.drain().results() == {"asked": 1}
    world.clock.advance(days=3, minutes=1)
    assert world.drain().results() == {"reminded": 1}
    world.clock.advance(days=3)
    assert world.drain().results() == {"reminded": 1}
    world.clock.advance(days=4)
    # Timed out: the release default queues the removal, which waits for a plan.
    assert world.drain().results() == {"removal_pending": 1}
    world.cycle()
    assert world.drain().results() == {"removed": 1}
    with world.ctx.engine.connect() as conn:
        kinds = sorted(conn.execute(select(notifications.c.kind, notifications.c.reminder)).all())
    assert kinds == [("ask", 0), ("remind", 1), ("remind", 2)]
    causes = [e.cause for e in world.case("idle0@x.test").case.history]
    assert causes == [
        "opened",
        "asked",
        "reminded",
        "reminded",
        "no_response",
        "removal_sent",
        "removed",
    ]


def test_an_answer_given_while_a_worker_holds_the_case_is_not_lost(
    db_url: str, tmp_path: Path
) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio"), unused=1, active=3)
    world.cycle()
    world.drain()
    loaded = world.case("idle0@x.test")  # a worker loaded it …
    answer(world.ctx.engine, world.ctx.settings, loaded.id, keep=True, now=world.clock())
    later = dc.mark_reminded(loaded.case, at=world.clock(), reminder=1)
    with world.ctx.engine.begin() as conn:
        try:
            store.save_case(conn, loaded, later)  # … and saves after the answer
            raise AssertionError("a stale save must be refused")
        except store.StaleCase:
            pass
    assert world.case("idle0@x.test").case.state is S.ANSWERED_KEEP


def test_manual_workflow_tasks_complete_their_cases(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=2, active=4)
    manual = ManualDirectory(world.ctx.engine, clock=world.clock)
    world.directory = manual  # type: ignore[assignment]
    world.cycle()
    assert world.drain().results() == {"queued": 2}
    assert world.drain().results() == {}  # waiting for a person, not polled
    with world.ctx.engine.connect() as conn:
        tasks = list_tasks(conn)
    assert sorted(t.user for t in tasks) == ["idle0@x.test", "idle1@x.test"]
    done = complete_task(
        world.ctx.engine, world.ctx.settings, tasks[0].id, by="admin", now=world.clock()
    )
    assert done.case.state is S.REMOVED and done.case.history[-1].data["by"] == "admin"
    with world.ctx.engine.connect() as conn:
        assert [t.user for t in list_tasks(conn)] == [tasks[1].user]
        active = conn.execute(
            select(memberships.c.active).where(memberships.c.user_id == done.user_id)
        ).scalar()
        assert active is False or active == 0  # the member list knows they are out
        results = dict(
            conn.execute(
                select(directory_writes.c.idempotency_key, directory_writes.c.result)
            ).all()
        )
    assert results[done.remove_key] == "done"
    # The other one left the group by the next member import: the case completes too.
    from .conftest import import_group

    import_group(world.ctx, tmp_path, "Visio", {f"busy{i}@x.test": None for i in range(4)})
    world.clock.advance(days=1, minutes=1)
    assert world.drain().results() == {"already_removed": 1}


def test_a_workflow_whose_config_section_is_missing_stops_the_run_saying_so(
    db_url: str, tmp_path: Path
) -> None:
    from reclaim.workflows.directory import default_directories

    entra = policy_yaml("Visio").replace(
        'group: {name: "Visio users"}\n    workflow: manual',
        "group: {entra_id: 0f1e2d3c-0000-4000-8000-000000000001}\n    workflow: entra_id",
    )
    assert "entra_id" in entra
    world = build_world(db_url, tmp_path, entra, unused=1, active=3)
    assert world.ctx.settings.entra is None
    directories = default_directories(world.ctx.engine, world.ctx.settings)
    world.cycle()
    stats = Worker(
        engine=world.ctx.engine,
        settings=world.ctx.settings,
        directories=directories,
        clock=world.clock,
    ).drain()
    assert stats.results() == {"stopped": 1}  # the first step needs the directory
    assert "entra_id workflow cannot start" in stats.stops[0]
    assert "entra: section" in stats.stops[0]
    case = world.case("idle0@x.test")
    assert case.case.state is S.CANDIDATE  # nothing was asked or written
    assert case.last_error is not None and "entra: section" in case.last_error
