"""The columnar batch (``domain.usage_columns``) gives exactly the per-member verdicts.

Every test here compares :func:`judge_columns` with :meth:`Evaluator.evaluate` member by
member: on a grid of every threshold, on the generated organization of
``usage_personas`` (seasonal members included), and on random facts and policies.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from reclaim.domain.usage import (
    EPOCH,
    Evaluator,
    MemberFacts,
    SeasonalRule,
    UsageFacts,
    VerdictKind,
)
from reclaim.domain.usage_columns import (
    NO_DAY,
    DateTable,
    DayNumbers,
    FactColumns,
    Judgement,
    Rule,
    judge_columns,
)

from .factories import make_policy
from .usage_personas import AS_OF, ORG, K

Members = list[tuple[MemberFacts, UsageFacts]]


def _assert_same_as_each_member(ev: Evaluator, members: Members) -> list[VerdictKind]:
    """Judge ``members`` at once, with their day numbers given and derived, and check
    every verdict against the member's own; returns the kinds."""
    columns = FactColumns.of(members)
    kinds, reasons = judge_columns(ev, columns, DayNumbers.of(columns))
    expected = [ev.evaluate(m, u) for m, u in members]
    assert list(zip(kinds, reasons, strict=True)) == [(v.kind, v.reason) for v in expected]
    assert judge_columns(ev, columns) == (kinds, reasons)  # the arrays derived alike
    return kinds


def _assert_history_is_read_for_enough(ev: Evaluator, members: Members) -> None:
    """What ``services.decisions`` relies on: with ``active_months`` known only for the
    members :meth:`Judgement.history_wanted` names (0 for everyone else, as the store
    leaves it), every verdict is what the full history gives."""
    full = FactColumns.of(members)
    partial = FactColumns.of(members)
    judgement = Judgement(ev, partial)
    wanted = set(judgement.history_wanted())
    for i in range(len(members)):
        if i not in wanted:
            partial.active_months[i] = 0
    assert judgement.verdicts() == judge_columns(ev, full)


# Days ago on and around every threshold of POLICY (grace 14, unused 30, window 90,
# freshness 7), and a few others.
near = st.one_of(
    st.none(),
    st.sampled_from([-1, 0, 1, 6, 7, 8, 13, 14, 15, 29, 30, 31, 32, 88, 89, 90, 91, 200]).map(
        lambda n: AS_OF - dt.timedelta(days=n)
    ),
)
member_facts = st.tuples(
    st.builds(
        MemberFacts,
        st.sampled_from(["a@x", "b@x", "ceo@example.com"]),
        st.frozensets(st.sampled_from(["staff", "vip", "sales"])),
        near,
    ),
    st.builds(
        UsageFacts,
        near,
        st.one_of(st.none(), st.sampled_from([0.0, 119.99, 120.0]), st.floats(0, 10_000)),
        near,
        near,
        st.integers(0, 2**26 - 1),
    ),
)


@given(
    members=st.lists(member_facts, max_size=30),
    floor=st.booleans(),
    excluded=st.booleans(),
)
def test_judging_a_whole_policy_at_once_gives_each_member_verdict(
    members: Members, floor: bool, excluded: bool
) -> None:
    policy = make_policy(
        underuse={"min_minutes": 120, "window_days": 90} if floor else None,
        exclude={"users": ["ceo@example.com"], "groups": ["VIP"]} if excluded else {},
    )
    ev = Evaluator(policy, as_of=AS_OF)
    _assert_same_as_each_member(ev, members)
    _assert_history_is_read_for_enough(ev, members)
    columns = FactColumns.of(members)
    assert columns.members() == [m for m, _ in members]
    assert columns.usages() == [u for _, u in members]


@pytest.mark.parametrize("floor", [True, False])
def test_judging_at_once_matches_each_member_on_every_threshold(floor: bool) -> None:
    # Every combination of grant date, last use, minutes and freshness around the
    # policy's thresholds: the batch's rules must never place a member elsewhere.
    policy = make_policy(underuse={"min_minutes": 120, "window_days": 90} if floor else None)
    ago = [None, *(AS_OF - dt.timedelta(days=n) for n in (-1, 0, 7, 8, 13, 14, 15, 29, 30, 31))]
    users = ["a@x", "ceo@example.com", "b@x"]
    groups = [frozenset(), frozenset({"vip"}), frozenset({"staff"}), frozenset({"staff"})]
    # No history, and quarter-end patterns whose last burst was in month 0 or month 1.
    bits = [0, 0b1001001001, 0b10010010010, 0, 0b10010010010]
    members = [
        (
            MemberFacts(users[i % 3], groups[i % 4], granted),
            UsageFacts(last, minutes, first, seen, bits[i % len(bits)]),
        )
        for i, (granted, last, minutes, seen, first) in enumerate(
            itertools.product(
                ago,
                ago,
                [None, 0.0, 119.99, 120.0, 500.0],
                ago,
                [None, *(AS_OF - dt.timedelta(days=n) for n in (20, 200, 700))],
            )
        )
    ]
    ev = Evaluator(policy, as_of=AS_OF)
    kinds = _assert_same_as_each_member(ev, members)
    _assert_history_is_read_for_enough(ev, members)
    reached = set(Judgement(ev, FactColumns.of(members)).rules.tolist())
    # Every rule is reached (underuse and its short window only with a floor).
    assert reached == {int(r) for r in Rule} - (
        set() if floor else {Rule.UNDERUSED, Rule.SHORT_WINDOW}
    )
    assert set(kinds) == set(VerdictKind) - (set() if floor else {K.UNDERUSED})


@pytest.mark.parametrize("floor", [True, False])
def test_the_generated_org_judged_at_once(floor: bool) -> None:
    policy = make_policy(underuse={"min_minutes": 120, "window_days": 90} if floor else None)
    rng = random.Random(7)
    everyone = [(make(rng), kind) for make, kind in ORG.values() for _ in range(5)]
    rng.shuffle(everyone)
    ev = Evaluator(policy, as_of=AS_OF)
    kinds = _assert_same_as_each_member(ev, [m for m, _ in everyone])
    _assert_history_is_read_for_enough(ev, [m for m, _ in everyone])
    if floor:  # the known truth (without a floor the underuser is in use)
        assert kinds == [kind for _, kind in everyone]
    assert K.SEASONAL in kinds


day_in = st.dates(dt.date(2023, 1, 1), dt.date(2026, 3, 1))
wide_facts = st.tuples(
    st.builds(
        MemberFacts,
        st.sampled_from(["a@x", "ceo@example.com"]),
        st.frozensets(st.sampled_from(["staff", "vip"])),
        st.one_of(st.none(), day_in),
    ),
    st.builds(
        UsageFacts,
        st.one_of(st.none(), day_in),
        st.one_of(st.none(), st.floats(0, 500)),
        st.one_of(st.none(), day_in),
        st.one_of(st.none(), day_in),
        st.integers(0, 2**26 - 1),
    ),
)
rules = st.builds(
    SeasonalRule,
    periods=st.sampled_from([((3, 2), (12, 1)), ((3, 1),), ((4, 2), (6, 2)), ((12, 1),)]),
    lookback_months=st.just(12),
    max_burst_months=st.sampled_from([1, 2]),
    horizon_days=st.sampled_from([0, 31, 62, 120]),
    min_contrast=st.sampled_from([0.0, 0.5]),
)


@st.composite
def patterned(draw: st.DrawFn, as_of: dt.date) -> tuple[MemberFacts, UsageFacts]:
    """A member whose history repeats every few months (some cycles skipped, some noise):
    the facts the seasonal rule is for, consistent with as_of."""
    start = draw(st.integers(0, 14))  # months since the last use
    period = draw(st.sampled_from([3, 4, 6, 12]))
    bits = 0
    for ago in range(start, 26, period):
        if ago == start or draw(st.booleans()):
            bits |= 1 << ago
    if draw(st.booleans()):
        bits |= 1 << (start + 1)  # a burst spilling over two months
    noise = -1
    for _ in range(4):  # about one month in 16
        noise &= draw(st.integers(0, 2**26 - 1))
    bits |= (noise << start) & (2**26 - 1)  # never after the last use
    month = as_of.year * 12 + as_of.month - 1 - start
    last = dt.date(month // 12, month % 12 + 1, draw(st.integers(1, 28)))
    last = min(last, as_of)
    first = as_of - dt.timedelta(days=draw(st.integers(0, 900)))
    seen = as_of - dt.timedelta(days=draw(st.integers(0, 3)))
    minutes = draw(st.one_of(st.none(), st.floats(0, 500)))
    granted = draw(st.one_of(st.none(), day_in))
    return MemberFacts("a@x", frozenset(), granted), UsageFacts(last, minutes, first, seen, bits)


@given(
    members=st.lists(wide_facts, max_size=25),
    as_of=st.dates(dt.date(2024, 6, 1), dt.date(2026, 1, 1)),
    unused_days=st.integers(1, 90),
    grace_days=st.integers(0, 30),
    underuse=st.one_of(st.none(), st.tuples(st.integers(1, 300), st.integers(1, 120))),
    freshness=st.integers(0, 30),
    seasonal=rules,
    data=st.data(),
)
def test_any_policy_and_facts_give_each_member_verdict_at_once(
    members: Members,
    as_of: dt.date,
    unused_days: int,
    grace_days: int,
    underuse: tuple[int, int] | None,
    freshness: int,
    seasonal: SeasonalRule,
    data: st.DataObject,
) -> None:
    members = members + data.draw(st.lists(patterned(as_of), max_size=25))
    floor: dict[str, Any] | None = None
    if underuse is not None:
        floor = {"min_minutes": underuse[0], "window_days": underuse[1]}
    policy = make_policy(unused_days=unused_days, grace_days=grace_days, underuse=floor)
    ev = Evaluator(policy, as_of=as_of, freshness_days=freshness, seasonal=seasonal)
    kinds = _assert_same_as_each_member(ev, members)
    _assert_history_is_read_for_enough(ev, members)
    if K.SEASONAL in kinds:  # shown by --hypothesis-show-statistics: the rule is exercised
        event("a seasonal verdict")


def test_a_short_history_needs_no_seasonal_history() -> None:
    # Observed for three months only (a new store): no cycle fits, no history is read.
    as_of = dt.date(2026, 10, 31)
    member = MemberFacts("a@x", granted_on=dt.date(2025, 1, 1))
    usage = UsageFacts(dt.date(2026, 9, 1), 0.0, dt.date(2026, 8, 3), as_of, 0b11)
    ev = Evaluator(make_policy(), as_of=as_of)
    judgement = Judgement(ev, FactColumns.of([(member, usage)]))
    assert judgement.rules.tolist() == [Rule.LAST_USED]
    assert judgement.history_wanted() == []
    longer = usage._replace(first_observed=dt.date(2025, 1, 2))
    assert Judgement(ev, FactColumns.of([(member, longer)])).history_wanted() == [0]


def test_day_numbers_must_be_parallel() -> None:
    columns = FactColumns.of([(MemberFacts("a@x"), UsageFacts())])
    days = DayNumbers.of(FactColumns.of([]))
    ev = Evaluator(make_policy(), as_of=AS_OF)
    with pytest.raises(ValueError, match="one value per member"):
        judge_columns(ev, columns, days)


def test_fact_columns_must_be_parallel() -> None:
    with pytest.raises(ValueError, match="one value per member"):
        FactColumns(["a@x"], [], [None], [None], [None], [None], [None], [0])


@given(
    st.lists(
        st.lists(
            st.one_of(st.just(NO_DAY), st.integers(20_000, 20_400), st.integers(-1000, 60_000)),
            max_size=20,
        ),
        max_size=6,
    )
)
def test_a_date_table_gives_each_day_its_date(columns: list[list[int]]) -> None:
    # One table for a run's columns, whose days spread as they come (wider than the
    # table may grow: the distinct days only).
    table = DateTable()
    for days in columns:
        got = table.of(np.array(days, np.int64))
        assert got == [None if n == NO_DAY else EPOCH + dt.timedelta(days=n) for n in days]
