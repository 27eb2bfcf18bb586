"""Protected people and groups are never asked or removed, even when a policy targets
them: the cycle gives them no case, and the write gate refuses whatever slips past."""

from __future__ import annotations

from pathlib import Path

from reclaim.config import SafetySettings
from reclaim.domain.case import CaseState
from reclaim.domain.plan import ItemStatus
from reclaim.services.plans import preview

from .conftest import policy_yaml
from .world import World, build_world


def protect(world: World, **safety: tuple[str, ...]) -> None:
    world.ctx.settings = world.ctx.settings.model_copy(
        update={"safety": SafetySettings(**safety)}  # type: ignore[arg-type]
    )


def test_a_protected_user_gets_no_case(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=3, active=1)
    protect(world, protected_users=("IDLE1@x.test", "breakglass*"))

    outcome = world.cycle()

    assert sorted(outcome.opened) == ["idle0@x.test", "idle2@x.test"]
    assert world.drain().results() == {"removed": 2}
    assert {w["user"] for w in world.directory.writes()} == {"idle0@x.test", "idle2@x.test"}
    assert "idle1@x.test" not in world.cases()


def test_an_open_case_of_a_newly_protected_user_is_closed(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio"), unused=1, active=1)
    world.cycle()
    assert world.drain().results() == {"asked": 1}
    protect(world, protected_users=("idle*@x.test",))
    world.clock.advance(days=1)

    outcome = world.cycle()

    assert outcome.closed == [("idle0@x.test", "excluded")]
    closed = world.case("idle0@x.test").case
    assert closed.state is CaseState.CANCELLED
    assert "safety.protected_users" in str(closed.history[-1].data.get("detail"))


def test_the_gate_refuses_a_protected_user_whose_removal_was_already_planned(
    db_url: str, tmp_path: Path
) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=3, active=1)
    world.cycle()  # planned before the protection was configured
    protect(world, protected_users=("IDLE1@x.test",))

    assert world.drain().results() == {"removed": 2, "refused": 1}

    kept = world.case("idle1@x.test")
    assert kept.case.state is not CaseState.REMOVED and kept.case.attempts == 0
    assert "protected" in (kept.last_error or "") and "IDLE1@x.test" in (kept.last_error or "")


def test_a_policy_aimed_at_a_protected_group_asks_and_removes_nobody(
    db_url: str, tmp_path: Path
) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=2, active=1)
    group = world.policy().group
    label = group.name or group.entra_id or ""
    protect(world, protected_groups=(label.upper(),))  # ids and names compare case-blind

    outcome = world.cycle()

    assert outcome.opened == [] and outcome.blocked and "protected group" in outcome.blocked
    assert world.drain().results() == {}
    assert world.directory.writes() == []


def test_the_plan_preview_leaves_protected_people_out_and_holds_a_protected_group(
    db_url: str, tmp_path: Path
) -> None:
    """`reclaim plan` (and the Policies page's preview) show what a cycle would do, so
    they must not list a protected person, nor plan removals from a protected group."""
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=3, active=1)
    protect(world, protected_users=("IDLE1@x.test",))

    planned = preview(
        world.ctx.engine, settings=world.ctx.settings, policies=[world.policy()], now=world.clock()
    ).plan.policies[0]

    assert sorted(i.user for i in planned.items) == ["idle0@x.test", "idle2@x.test"]
    group = world.policy().group
    protect(world, protected_groups=(group.name or group.entra_id or "",))

    held = preview(
        world.ctx.engine, settings=world.ctx.settings, policies=[world.policy()], now=world.clock()
    ).plan.policies[0]

    assert any("protected group" in a for a in held.alerts)
    assert held.items and all(i.status is ItemStatus.BLOCKED_GROUP for i in held.items)
    assert world.cases() == {}  # a preview opens nothing
