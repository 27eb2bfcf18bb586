"""Protected people and groups are never removed, even when a policy targets them."""

from __future__ import annotations

from pathlib import Path

from reclaim.config import SafetySettings
from reclaim.domain.case import CaseState

from .conftest import policy_yaml
from .world import World, build_world


def protect(world: World, **safety: tuple[str, ...]) -> None:
    world.ctx.settings = world.ctx.settings.model_copy(
        update={"safety": SafetySettings(**safety)}  # type: ignore[arg-type]
    )


def test_a_protected_user_is_never_removed(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=3, active=1)
    protect(world, protected_users=("IDLE1@x.test", "breakglass*"))
    world.cycle()

    stats = world.drain()

    assert stats.results() == {"removed": 2, "refused": 1}
    removed = {w["user"] for w in world.directory.writes()}
    assert removed == {"idle0@x.test", "idle2@x.test"}
    kept = world.case("idle1@x.test")
    assert kept.case.state is not CaseState.REMOVED and kept.case.attempts == 0
    assert "protected" in (kept.last_error or "") and "IDLE1@x.test" in (kept.last_error or "")


def test_a_policy_aimed_at_a_protected_group_removes_nobody(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=2, active=1)
    group = world.policy().group
    label = group.name or group.entra_id or ""
    protect(world, protected_groups=(label.upper(),))  # ids and names compare case-blind
    world.cycle()

    assert world.drain().results() == {"refused": 2}
    assert world.directory.writes() == []
    assert "protected group" in (world.case("idle0@x.test").last_error or "")
