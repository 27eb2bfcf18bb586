"""The plan flags a group Reclaim can never write (synced from on-prem AD under
entra_id, dynamic under any workflow) and says when no sync has checked it."""

from __future__ import annotations

import datetime as dt

import pytest

from reclaim.domain.case import Action
from reclaim.domain.plan import (
    Basis,
    ItemStatus,
    Plan,
    PolicyInput,
    Proposal,
    build_plan,
)
from reclaim.domain.plan_groups import GroupFacts, group_check
from reclaim.domain.policy import Policy

from .factories import GROUP_ID, day, make_policy

AS_OF = dt.date(2025, 3, 3)
SEEN = dt.datetime(2025, 3, 2, 6, 0, tzinfo=dt.UTC)
ENTRA = make_policy()
ONPREM = make_policy(workflow="onprem_ad")
MANUAL = make_policy(workflow="manual")


def facts(*, synced: bool = False, dynamic: bool = False) -> GroupFacts:
    return GroupFacts(GROUP_ID, "Visio Users", dynamic, synced, SEEN)


def proposals() -> list[Proposal]:
    asks = [Proposal(f"a{i}@x", 1, Basis.ASK, "unused 40 days") for i in range(3)]
    removals = [Proposal(f"r{i}@x", 1, Basis.RELEASED, "released") for i in range(2)]
    return asks + removals


def plan(policy: Policy, group_facts: GroupFacts | None, *, paused: bool = False) -> Plan:
    inp = PolicyInput(policy, 200, proposals(), group_check(policy, group_facts))
    return build_plan(inputs=[inp], as_of=AS_OF, created_at=day(0), paused=paused)


@pytest.mark.parametrize(
    ("policy", "group", "hint"),
    [
        (ENTRA, facts(synced=True), "use workflow: onprem_ad"),
        (ENTRA, facts(dynamic=True), "dynamic membership: change the rule"),
        (ONPREM, facts(dynamic=True), "dynamic membership: change the rule"),
        (MANUAL, facts(dynamic=True), "dynamic membership: change the rule"),
    ],
)
def test_an_unwritable_group_holds_every_item_with_the_way_forward(
    policy: Policy, group: GroupFacts, hint: str
) -> None:
    p = plan(policy, group)
    (pol,) = p.policies
    assert {i.status for i in pol.items} == {ItemStatus.BLOCKED_GROUP}
    assert pol.count(Action.ASK) == 3 and pol.count(Action.REMOVE) == 2
    (alert,) = pol.alerts
    assert hint in alert and "'Visio Users'" in alert and GROUP_ID in alert
    assert "3 ask(s) and 2 removal(s) held" in alert
    assert not pol.halted and not p.needs_approval
    assert pol.savings().monthly == 0  # nothing planned, nothing saved


def test_blocked_wins_over_the_kill_switch_and_the_guard() -> None:
    p = plan(ENTRA, facts(synced=True), paused=True)
    assert {i.status for i in p.policies[0].items} == {ItemStatus.BLOCKED_GROUP}
    assert len(p.alerts) == 1 and "kill switch" not in p.alerts[0]


@pytest.mark.parametrize(
    ("policy", "group"),
    [
        (ENTRA, facts()),
        (ONPREM, facts(synced=True)),  # what onprem_ad is for
        (MANUAL, facts(synced=True)),  # an admin removes in AD by hand
    ],
)
def test_a_writable_group_plans_as_usual(policy: Policy, group: GroupFacts) -> None:
    (pol,) = plan(policy, group).policies
    assert pol.alerts == ()
    assert {i.status for i in pol.items} == {ItemStatus.PLANNED}


def test_no_sync_yet_is_said_for_entra_and_changes_nothing() -> None:
    (pol,) = plan(ENTRA, None).policies
    (alert,) = pol.alerts
    assert "no directory sync has run for this policy yet" in alert
    assert "reclaim directory sync --policy 'Visio'" in alert
    assert {i.status for i in pol.items} == {ItemStatus.PLANNED}


@pytest.mark.parametrize("policy", [ONPREM, MANUAL])
def test_no_sync_yet_is_not_news_outside_entra(policy: Policy) -> None:
    (pol,) = plan(policy, None).policies
    assert pol.alerts == ()


def test_a_blocked_plan_round_trips_through_json_with_its_hash() -> None:
    p = plan(ENTRA, facts(dynamic=True))
    again = Plan.from_dict(p.to_dict())
    assert again == p and again.content_hash() == p.content_hash()
    assert again.to_dict()["policies"][0]["counts"] == {
        "ask_blocked_group": 3,
        "remove_blocked_group": 2,
    }
