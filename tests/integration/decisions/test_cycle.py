"""Cycles: cases opened once per candidate, cool-down, caps, the guard, approvals."""

from __future__ import annotations

from pathlib import Path

from reclaim.domain.case import CaseState
from reclaim.domain.plan import ItemStatus
from reclaim.services.cases import answer
from reclaim.services.plans import approve_plan, preview

from .conftest import policy_yaml
from .world import DAY, build_world

S = CaseState


def test_a_cycle_opens_one_case_per_candidate_and_a_second_cycle_none(
    db_url: str, tmp_path: Path
) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio"))
    first = world.cycle()
    assert sorted(first.opened) == ["idle0@x.test", "idle1@x.test", "idle2@x.test"]
    assert first.breakdown["unused"] == 3 and first.breakdown["in_use"] == 2
    assert first.authorized == 3  # three asks
    again = world.cycle()
    assert again.opened == [] and again.authorized == 0  # already open and allowed
    stats = world.drain()
    assert stats.results() == {"asked": 3}
    assert {s.case.state for s in world.cases().values()} == {S.ASKED}
    assert world.directory.writes() == []  # asking writes nothing to the directory
    history = world.case("idle0@x.test").case.history
    assert [e.cause for e in history] == ["opened", "asked"]
    assert history[0].data["verdict"] == "unused"


def test_keep_is_not_asked_again_before_the_cool_down_ends(db_url: str, tmp_path: Path) -> None:
    yaml = policy_yaml(
        "Visio",
        extra="campaign: {keep_cooldown_days: 5, response_timeout_days: 10, reminder_days: [3]}",
    )
    world = build_world(db_url, tmp_path, yaml, unused=1, active=0)
    world.cycle()
    world.drain()
    case = world.case("idle0@x.test")
    answer(
        world.ctx.engine,
        world.ctx.settings,
        case.id,
        keep=True,
        now=world.clock(),
        reason="monthly report",
    )
    world.clock.advance(days=4)
    assert world.cycle().opened == []
    world.clock.advance(days=1)
    assert world.cycle().opened == ["idle0@x.test"]
    assert world.case("idle0@x.test").case.cycle == 2


def test_caps_defer_removals_to_later_cycles(db_url: str, tmp_path: Path) -> None:
    world = build_world(
        db_url, tmp_path, policy_yaml("Visio", ask=False, cap=3), unused=5, active=6
    )
    outcome = world.cycle()
    items = outcome.plan.policies[0].items
    assert [i.status for i in items].count(ItemStatus.PLANNED) == 3
    assert [i.status for i in items].count(ItemStatus.DEFERRED_BY_CAP) == 2
    assert outcome.plan.policies[0].alerts  # deferrals are announced
    assert world.drain().results() == {"removed": 3}
    assert world.drain().results() == {}  # deferred cases are not due
    world.clock.advance(days=1)
    world.cycle()
    assert world.drain().results() == {"removed": 2}
    assert set(world.directory.removals().values()) == {1}
    assert len(world.directory.removals()) == 5


def test_the_mass_removal_guard_halts_the_policy(db_url: str, tmp_path: Path) -> None:
    world = build_world(
        db_url, tmp_path, policy_yaml("Visio", ask=False, cap=50, percent=10), unused=15, active=10
    )
    outcome = world.cycle()
    assert outcome.plan.policies[0].halted
    assert outcome.authorized == 0
    assert world.drain().results() == {}
    assert world.directory.writes() == []


def test_removals_wait_for_an_approved_plan(db_url: str, tmp_path: Path) -> None:
    world = build_world(
        db_url, tmp_path, policy_yaml("Visio", ask=False, approval=True), unused=2, active=3
    )
    made = preview(
        world.ctx.engine, settings=world.ctx.settings, policies=[world.policy()], now=world.clock()
    )
    assert made.status == "awaiting_approval"
    assert world.cases() == {}  # a preview opens nothing
    outcome = world.cycle()
    assert outcome.awaiting_approval == 2 and outcome.authorized == 0
    assert world.drain().results() == {}
    assert outcome.plan_id is not None
    stored, woken = approve_plan(world.ctx.engine, outcome.plan_id, by="alice", now=world.clock())
    assert stored.status == "approved" and stored.decided_by == "alice" and woken == 2
    assert world.drain().results() == {"removed": 2}


def test_an_approved_preview_lets_its_removals_go_when_the_cycle_opens_them(
    db_url: str, tmp_path: Path
) -> None:
    world = build_world(
        db_url, tmp_path, policy_yaml("Visio", ask=False, approval=True), unused=2, active=3
    )
    made = preview(
        world.ctx.engine, settings=world.ctx.settings, policies=[world.policy()], now=world.clock()
    )
    approve_plan(world.ctx.engine, made.plan_id, by="alice", now=world.clock())
    outcome = world.cycle()
    assert outcome.authorized == 2 and outcome.awaiting_approval == 0
    assert world.drain().results() == {"removed": 2}


def test_open_cases_close_when_the_user_leaves_the_group_or_is_excluded(
    db_url: str, tmp_path: Path
) -> None:
    from .conftest import import_group

    world = build_world(db_url, tmp_path, policy_yaml("Visio"), unused=3, active=0)
    world.cycle()
    world.drain()
    import_group(world.ctx, tmp_path, "Visio", {"idle0@x.test": None, "idle2@x.test": None})
    outcome = world.cycle()
    assert outcome.closed == [("idle1@x.test", "left_group")]
    case = world.case("idle1@x.test")
    assert (case.case.state, case.case.status) == (S.CANCELLED, "cancelled")


def test_release_then_use_again_cancels_instead_of_removing(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio"), unused=1, active=0)
    world.cycle()
    world.drain()
    case = world.case("idle0@x.test")
    answer(
        world.ctx.engine, world.ctx.settings, case.id, keep=False, now=world.clock(), by="helpdesk"
    )
    world.clock.advance(days=2)
    world.use("idle0@x.test", world.clock().date() - DAY, name="late.csv")
    world.cycle()
    assert world.drain().results() == {"cancelled": 1}
    done = world.case("idle0@x.test")
    assert done.case.history[-1].cause == "usage_resumed"
    assert world.directory.writes() == []
    assert done.case.history[2].data == {"reason": "recorded by helpdesk"}
