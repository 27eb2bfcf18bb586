"""The plan flags a group Reclaim can never write before anyone is asked: ``reclaim plan``
and ``reclaim run`` against the Graph server, on SQLite and PostgreSQL.

A group synced from on-premises AD (under workflow ``entra_id``) or with dynamic
membership: the plan carries an alert with the way forward, nobody is asked, no case is
opened, and the server's request log shows no write at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.services.entra_sync import sync_policy
from reclaim.store.directory_tables import directory_groups
from reclaim.store.tables import cases, notifications
from reclaim.testing.graph import GraphServer, ManualClock

from .conftest import CLIENT_SECRET, DYNAMIC_GROUP, E3_GROUP, SYNCED_GROUP
from .runner_world import SECRET_ENV, EntraWorld, build_entra_world, entra_policy

pytestmark = pytest.mark.slow  # each test starts the CLI a few times

ONPREM_HINT = "use workflow: onprem_ad"
DYNAMIC_HINT = "dynamic membership: change the rule"


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

    def build(*policies: str) -> EntraWorld:
        world = build_entra_world(server, clock, db_url, tmp_path, *policies)
        made.append(world)
        return world

    yield build
    for world in made:
        world.close()


def cli(world: EntraWorld, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "-c", str(world.config)])
    assert result.exit_code == 0, result.output
    return result.stdout


def count(world: EntraWorld, table: Any) -> int:
    with world.ctx.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize(
    ("group", "hint", "ask"),
    [
        pytest.param(SYNCED_GROUP, ONPREM_HINT, True, id="synced-asking"),
        pytest.param(DYNAMIC_GROUP, DYNAMIC_HINT, True, id="dynamic-asking"),
        pytest.param(SYNCED_GROUP, ONPREM_HINT, False, id="synced-no-ask"),
        pytest.param(DYNAMIC_GROUP, DYNAMIC_HINT, False, id="dynamic-no-ask"),
    ],
)
def test_unwritable_group_is_flagged_and_nobody_is_asked_or_removed(
    make_world: Any, server: GraphServer, group: str, hint: str, ask: bool
) -> None:
    world = make_world(entra_policy("Locked", group, ask=ask))
    shown = json.loads(cli(world, "plan", "--policy", "Locked", "--json"))
    (pol,) = shown["policies"]
    assert any(hint in a for a in pol["alerts"]), pol["alerts"]
    assert pol["items"] and {i["status"] for i in pol["items"]} == {"blocked_group"}
    assert shown["needs_approval"] is False
    text = cli(world, "plan", "--policy", "Locked")
    assert hint in text and "blocked group" in text

    ran = json.loads(cli(world, "run", "--policy", "Locked", "--json"))
    assert ran["opened"] == [] and ran["authorized"] == 0 and ran["steps"] == []
    assert hint in ran["blocked"] and ran["stopped"] == []
    assert any(hint in a for a in ran["plan"]["alerts"])
    assert count(world, cases) == 0 and count(world, notifications) == 0  # nobody asked
    assert server.requests.count("DELETE") == 0
    assert server.requests.removals(ok=None) == []
    assert hint in cli(world, "run", "--policy", "Locked")  # the text output says it too


def test_onprem_workflow_on_a_synced_group_is_not_flagged(make_world: Any) -> None:
    policy = entra_policy("Hybrid", SYNCED_GROUP).replace(
        "workflow: entra_id", "workflow: onprem_ad"
    )
    world = make_world(policy)
    shown = json.loads(cli(world, "plan", "--policy", "Hybrid", "--json"))
    (pol,) = shown["policies"]
    assert pol["alerts"] == []
    assert [i["status"] for i in pol["items"]] == ["planned"]


def test_a_writable_group_plans_as_before(make_world: Any) -> None:
    world = make_world(entra_policy("E3", E3_GROUP))
    shown = json.loads(cli(world, "plan", "--policy", "E3", "--json"))
    (pol,) = shown["policies"]
    assert pol["alerts"] == []
    assert {i["status"] for i in pol["items"]} == {"planned"}


def test_without_a_directory_sync_the_plan_says_the_group_is_unchecked(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world(entra_policy("E3", E3_GROUP))
    with world.ctx.engine.begin() as conn:  # as if members came from a CSV, not a sync
        conn.execute(delete(directory_groups))
    shown = json.loads(cli(world, "plan", "--policy", "E3", "--json"))
    (pol,) = shown["policies"]
    (alert,) = pol["alerts"]
    assert "no directory sync has run" in alert and "reclaim directory sync" in alert
    assert {i["status"] for i in pol["items"]} == {"planned"}  # said, not guessed


def test_a_group_turned_dynamic_after_the_ask_gets_no_reminder_until_writable(
    make_world: Any, server: GraphServer
) -> None:
    world = make_world(entra_policy("E3", E3_GROUP))
    policy = world.settings.policy("E3")
    world.cycle()
    asked = world.drain().results()["asked"]
    assert asked and count(world, notifications) == asked

    def resync() -> None:
        sync_policy(
            world.ctx.engine,
            world.client(),
            policy,
            configured=world.settings.policies,
            now=world.clock(),
        )

    group = server.tenant.groups[E3_GROUP]
    group.group_types.append("DynamicMembership")  # an admin turned it into a rule
    resync()
    world.clock.advance(days=4)  # past the first reminder (day 3)
    outcome = world.cycle()
    assert outcome.blocked and DYNAMIC_HINT in outcome.blocked
    assert world.drain().results() == {}  # no reminder pressing anyone
    assert count(world, notifications) == asked
    assert server.requests.count("DELETE") == 0

    group.group_types.clear()  # writable again: the reminders go out
    resync()
    assert world.cycle().blocked is None
    assert world.drain().results() == {"reminded": asked}
