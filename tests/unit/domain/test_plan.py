"""Plans: caps, the mass-removal guard, the kill switch, savings, JSON and hashes."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from reclaim.domain import case as c
from reclaim.domain.case import Action
from reclaim.domain.case_steps import next_step
from reclaim.domain.plan import (
    Approval,
    Basis,
    ItemStatus,
    MassGuard,
    Plan,
    PolicyInput,
    Proposal,
    approve,
    build_plan,
    effective_cap,
    proposal_for,
    removal_order,
)
from reclaim.domain.policy import Caps, Policy

from .factories import T0, day, make_policy

AS_OF = dt.date(2025, 3, 3)
VISIO = make_policy()  # 15.50 USD, caps: 50 per run, 10 % of the group
P = ItemStatus.PLANNED


def removals(n: int, basis: Basis = Basis.ASK_PERMISSION_OFF, start: int = 0) -> list[Proposal]:
    return [
        Proposal(
            f"u{i:03}@x", 1, basis, "unused 60 days", dt.date(2024, 12, 1) + dt.timedelta(days=i)
        )
        for i in range(start, start + n)
    ]


def asks(n: int) -> list[Proposal]:
    return [Proposal(f"a{i:03}@x", 1, Basis.ASK, "unused 40 days") for i in range(n)]


def plan(*inputs: PolicyInput, paused: bool = False) -> Plan:
    return build_plan(inputs=inputs, as_of=AS_OF, created_at=day(0), paused=paused)


def statuses(p: Plan, action: Action = Action.REMOVE) -> list[ItemStatus]:
    return [i.status for i in p.policies[0].items if i.action is action]


@pytest.mark.parametrize(
    ("per_run", "pct", "size", "cap"),
    [
        (50, 10.0, 200, 20),
        (5, 10.0, 200, 5),
        (50, 10.0, 5, 1),
        (50, 0.0, 200, 0),
        (0, 10.0, 200, 0),
        (50, 10.0, 0, 0),
        (50, 33.3, 1000, 50),
        (50, 0.7, 1000, 7),
        (100, 18.4, 375, 69),
    ],
)
def test_effective_cap(per_run: int, pct: float, size: int, cap: int) -> None:
    assert effective_cap(Caps(max_per_run=per_run, max_percent_of_group=pct), size) == cap


def test_over_the_cap_defers_the_rest_by_priority() -> None:
    props = (
        removals(15)
        + removals(5, Basis.RELEASED, start=100)
        + [Proposal("never@x", 1, Basis.ASK_PERMISSION_OFF, "never used", None)]
    )
    p = plan(PolicyInput(VISIO, 200, props))  # cap 20; 21 wanted
    items = [i for i in p.policies[0].items if i.action is Action.REMOVE]
    assert [i.status for i in items] == [P] * 20 + [ItemStatus.DEFERRED_BY_CAP]
    assert [i.basis for i in items[:5]] == [Basis.RELEASED] * 5  # consent first
    assert items[5].user == "never@x"  # then never used, then oldest use
    assert items[-1].user == "u014@x"  # the most recent use waits
    assert p.alerts == (
        "Visio: 1 of 21 removals deferred by the cap of 20 (max_per_run 50, 10% of 200)",
    )
    assert not p.policies[0].halted


def test_far_over_the_cap_halts_instead_of_truncating() -> None:
    p = plan(PolicyInput(VISIO, 200, removals(41) + asks(3)))  # cap 20; > 2 x cap
    assert p.policies[0].halted
    assert set(statuses(p)) == {ItemStatus.HALTED}
    assert set(statuses(p, Action.ASK)) == {ItemStatus.HALTED}
    assert "mass-removal guard" in p.alerts[0]
    assert p.savings()["USD"].monthly == 0
    at_limit = plan(PolicyInput(VISIO, 200, removals(40)))
    assert not at_limit.policies[0].halted


def test_touching_most_of_a_big_group_halts_even_asks() -> None:
    assert plan(PolicyInput(VISIO, 100, asks(51))).policies[0].halted
    assert not plan(PolicyInput(VISIO, 100, asks(50))).policies[0].halted
    small = plan(PolicyInput(VISIO, 10, asks(8)))  # below min_group_size: no percentage rule
    assert not small.policies[0].halted
    strict = build_plan(
        inputs=[PolicyInput(VISIO, 10, asks(8))],
        as_of=AS_OF,
        created_at=day(0),
        paused=False,
        guard=MassGuard(min_group_size=5),
    )
    assert strict.policies[0].halted


def test_kill_switch_blocks_removals_but_lists_them() -> None:
    p = plan(PolicyInput(VISIO, 200, removals(3) + asks(2)), paused=True)
    assert statuses(p) == [ItemStatus.BLOCKED_PAUSED] * 3
    assert statuses(p, Action.ASK) == [P, P]
    assert p.alerts == ("Visio: kill switch on: 3 planned removal(s) blocked",)
    assert p.savings()["USD"].monthly == 0
    assert p.policies[0].held_savings().monthly == Decimal("46.50")


def test_savings_per_month_and_year_per_currency() -> None:
    euro = make_policy(name="CAD", seat_cost={"amount": "99.99", "currency": "EUR"})
    p = plan(PolicyInput(VISIO, 200, removals(25)), PolicyInput(euro, 40, removals(2)))
    usd, eur = p.savings()["USD"], p.savings()["EUR"]
    assert (usd.monthly, usd.yearly) == (Decimal("310.00"), Decimal("3720.00"))  # 20 x 15.50
    assert (eur.monthly, eur.yearly) == (Decimal("199.98"), Decimal("2399.76"))
    visio = next(x for x in p.policies if x.policy == "Visio")
    assert visio.held_savings().monthly == Decimal("77.50")  # 5 deferred
    assert [x.policy for x in p.policies] == ["CAD", "Visio"]


def test_json_round_trip_and_stable_hash() -> None:
    p = plan(
        PolicyInput(VISIO, 200, removals(22) + asks(2)),
        PolicyInput(make_policy(name="Kill", require_approval=True), 30, asks(1)),
    )
    wire = json.loads(json.dumps(p.to_dict()))
    back = Plan.from_dict(wire)
    assert back == p
    assert back.to_dict() == wire
    assert back.content_hash() == p.content_hash() == wire["content_hash"]
    later = build_plan(
        inputs=[
            PolicyInput(VISIO, 200, list(reversed(removals(22) + asks(2)))),
            PolicyInput(make_policy(name="Kill", require_approval=True), 30, asks(1)),
        ],
        as_of=AS_OF,
        created_at=day(5),
        paused=False,
    )
    assert later.content_hash() == p.content_hash()  # same facts, other time and order
    assert plan(PolicyInput(VISIO, 200, removals(21))).content_hash() != p.content_hash()
    wire["policies"][1]["items"][0]["user"] = "mallory@x"
    with pytest.raises(ValueError, match="content_hash"):
        Plan.from_dict(wire)
    assert p.needs_approval


def test_approval_names_exactly_one_plan() -> None:
    p = plan(PolicyInput(VISIO, 200, removals(3)))
    ok = approve(p, by="it-admin", at=day(1), note="monthly run")
    assert ok.covers(p)
    assert Approval.from_dict(json.loads(json.dumps(ok.to_dict()))) == ok
    assert not ok.covers(plan(PolicyInput(VISIO, 200, removals(4))))
    assert not ok.covers(plan(PolicyInput(VISIO, 200, removals(3)), paused=True))
    with pytest.raises(ValueError, match="approver"):
        approve(p, by=" ", at=day(1))


def test_duplicate_cycle_tick_is_planned_once() -> None:
    case = c.open_case(policy="Visio", user="ann@x", cycle=1, at=day(0))
    twice = [proposal_for(case, next_step(case, VISIO, day(0)), reason="r", last_used=None)] * 2
    p = plan(PolicyInput(VISIO, 200, [x for x in twice if x]))
    assert len(p.policies[0].items) == 1
    assert p.policies[0].items[0].idempotency_key == case.key(Action.ASK)


def test_proposals_follow_the_case() -> None:
    silent, releasing = (
        make_policy(ask_permission=False),
        make_policy(campaign={"on_no_response": "release"}),
    )
    case = c.open_case(policy="Visio", user="ann@x", cycle=1, at=day(0))

    def basis(k: c.Case, policy: Policy = VISIO, at: dt.datetime = T0) -> Basis | None:
        got = proposal_for(k, next_step(k, policy, at), reason="r", last_used=None)
        return got.basis if got else None

    assert basis(case) is Basis.ASK
    assert basis(case, silent) is Basis.ASK_PERMISSION_OFF
    asked = c.mark_asked(case, at=day(0))
    assert basis(asked, at=day(1)) is None  # waiting
    assert basis(asked, releasing, day(11)) is Basis.NO_RESPONSE
    assert basis(asked, VISIO, day(11)) is None  # keep default: no plan item
    released = c.record_answer(asked, at=day(1), keep=False)
    assert basis(released) is Basis.RELEASED
    assert basis(c.begin_removal(released, at=day(1))) is Basis.RELEASED
    timed_out = c.apply_timeout(asked, policy=releasing, at=day(11))
    assert basis(timed_out, releasing) is Basis.NO_RESPONSE
    assert basis(c.removal_sent(timed_out, at=day(11)), releasing) is Basis.RETRY


def _capped_runs(arrivals: list[list[Proposal]], *, cap: int, runs: int) -> list[list[str]]:
    """Plan ``runs`` runs in a row; before run r the cases of ``arrivals[r]`` open, and
    the removals each run plans are carried out (those people leave the queue)."""
    policy = make_policy(caps={"max_per_run": cap, "max_percent_of_group": 100})
    queue: list[Proposal] = []
    removed: list[list[str]] = []
    for run in range(runs):
        queue += arrivals[run] if run < len(arrivals) else []
        # The guard set loose: a backlog of several caps is what this is about.
        run_plan = build_plan(
            inputs=[PolicyInput(policy, 1000, queue)],
            as_of=AS_OF,
            created_at=day(run),
            paused=False,
            guard=MassGuard(halt_factor=100),
        )
        items = run_plan.policies[0].items
        done = [i.user for i in items if i.status is P]
        assert len(done) == min(cap, len(queue))
        removed.append(done)
        queue = [p for p in queue if p.user not in done]
    assert not queue
    return removed


def test_capped_runs_remove_equals_in_the_order_they_waited_whatever_their_names() -> None:
    # Three never-used people a run, a cap of two: the queue grows while cases arrive.
    # Each run's newcomers have names sorting before everyone waiting (z…, then y…, …):
    # ordered by name, the first arrivals would wait until arrivals stopped.
    arrivals = [
        [
            Proposal(f"{'zyxwvu'[r]}{i}@x", 1, Basis.ASK_PERMISSION_OFF, "never used", None, day(r))
            for i in range(3)
        ]
        for r in range(6)
    ]
    removed = _capped_runs(arrivals, cap=2, runs=9)
    assert removed[0] == ["z0@x", "z1@x"]
    assert removed[1] == ["z2@x", "y0@x"]  # the one deferred goes first, before newcomers
    order = [u for run in removed for u in run]
    assert order == [p.user for batch in arrivals for p in batch]  # first come, first served
    for r, batch in enumerate(arrivals):  # nobody waits longer than the queue ahead / cap
        ahead = sum(len(b) for b in arrivals[:r])
        for k, p in enumerate(batch):
            run = next(n for n, done in enumerate(removed) if p.user in done)
            assert run - r <= (ahead + k) // 2


def test_longest_unused_goes_first_then_longest_waiting_then_the_user_key() -> None:
    def prop(user: str, last: dt.date | None, opened: dt.datetime | None) -> Proposal:
        return Proposal(user, 1, Basis.ASK_PERMISSION_OFF, "unused", last, opened)

    old, recent = dt.date(2024, 10, 1), dt.date(2025, 1, 20)
    props = [
        prop("a@x", recent, day(0)),  # waited longest, but used recently
        prop("b@x", old, day(9)),  # unused longer: before everyone who used it later
        prop("c@x", None, day(5)),  # never used: first of all
        prop("d@x", None, day(2)),  # never used and waiting longer than c
        prop("e@x", recent, None),  # opening unknown: behind equals with a known one
        prop("f@x", recent, day(0)),  # same standing as a: the key decides, a first
    ]
    p = plan(PolicyInput(VISIO, 200, list(reversed(props))))
    assert [i.user for i in p.policies[0].items] == ["d@x", "c@x", "b@x", "a@x", "f@x", "e@x"]
    assert [removal_order(x) for x in props] == [removal_order(x) for x in props]  # total key
    # Priority of the basis still comes before any of it: a release is honoured first.
    released = Proposal("z@x", 1, Basis.RELEASED, "said release", recent, day(20))
    p = plan(PolicyInput(VISIO, 200, [*props, released]))
    assert p.policies[0].items[0].user == "z@x"


def test_a_plan_shows_how_long_each_removal_has_waited_and_old_plans_still_load() -> None:
    case = c.open_case(policy="Visio", user="ann@x", cycle=1, at=day(3))
    silent = make_policy(ask_permission=False)
    prop = proposal_for(case, next_step(case, silent, day(4)), reason="r", last_used=None)
    assert prop is not None and prop.waiting_since == day(3) == case.opened_at
    p = plan(PolicyInput(silent, 200, [prop]))
    wire = json.loads(json.dumps(p.to_dict()))
    assert wire["policies"][0]["items"][0]["waiting_since"] == day(3).isoformat()
    assert Plan.from_dict(wire) == p
    # A plan stored before items had the field: it loads, and its hash still holds.
    unknown = plan(PolicyInput(silent, 200, [Proposal("bo@x", 1, Basis.RELEASED, "r", None)]))
    stored = json.loads(json.dumps(unknown.to_dict()))
    assert "waiting_since" not in stored["policies"][0]["items"][0]
    assert Plan.from_dict(stored).content_hash() == stored["content_hash"]
