"""Verdicts member by member, on a small generated organization whose truth is known by
construction (``usage_personas``); the columnar batch is checked against these in
``test_usage_columns.py``."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclaim.domain.usage import (
    PRECEDENCE,
    Evaluator,
    MemberFacts,
    SeasonalRule,
    UsageFacts,
    VerdictKind,
    month_bits,
    verdict,
)

from .factories import daily, facts, make_policy
from .usage_personas import (
    AS_OF,
    LONG_AGO,
    OBSERVED,
    ORG,
    POLICY,
    SINCE,
    K,
    ceo_on_leave,
    never_used,
    on_leave,
    quarter_end,
    underuser,
    vip,
    year_end,
)


@pytest.mark.parametrize("persona", sorted(ORG))
def test_generated_org_gets_the_known_verdicts(persona: str) -> None:
    make, expected = ORG[persona]
    evaluator = Evaluator(POLICY, as_of=AS_OF)
    rng = random.Random(persona)
    for _ in range(12):
        member, usage = make(rng)
        got = evaluator.evaluate(member, usage)
        assert got.kind is expected, (persona, got, usage)
        assert got.reason
        assert got.last_used == usage.last_used


def test_reasons_say_why() -> None:
    ev = Evaluator(POLICY, as_of=AS_OF)
    rng = random.Random(1)
    assert "quarterly pattern" in ev.evaluate(*quarter_end(rng)).reason
    assert "yearly pattern" in ev.evaluate(*year_end(rng)).reason
    assert "excluded group vip" in ev.evaluate(*vip(rng)).reason
    assert "exclusion list" in ev.evaluate(*ceo_on_leave(rng)).reason
    assert "never used while observed since 2023-06-01" in ev.evaluate(*never_used(rng)).reason
    assert "below the 120-minute floor" in ev.evaluate(*underuser(rng)).reason
    assert "no data from any source since" in ev.evaluate(*on_leave(rng)).reason


def test_year_end_user_is_asked_outside_the_run_up_to_their_season() -> None:
    member, _ = year_end(random.Random(2))
    uses = {dt.date(y, 12, d): 120.0 for y in (2023, 2024) for d in range(10, 31)}
    august = dt.date(2025, 8, 12)
    got = verdict(
        policy=POLICY, member=member, usage=facts(uses, OBSERVED, as_of=august), as_of=august
    )
    assert got.kind is K.UNUSED  # next season opens 2025-12-01: beyond the 62-day horizon


def test_a_skipped_season_breaks_the_pattern() -> None:
    uses = {dt.date(y, m, 29): 90.0 for y in (2024, 2025) for m in (3, 6, 9, 12)}
    uses = {d: m for d, m in uses.items() if d < dt.date(2025, 9, 1)}  # September skipped
    as_of = dt.date(2025, 10, 15)
    got = verdict(
        policy=POLICY,
        member=MemberFacts("a@x"),
        usage=facts(uses, OBSERVED, as_of=as_of),
        as_of=as_of,
    )
    assert got.kind is K.UNUSED


def test_seasonal_needs_enough_earlier_cycles() -> None:
    once = {dt.date(2024, 12, 20): 60.0}  # a single December is not a yearly pattern
    got = Evaluator(POLICY, as_of=AS_OF).evaluate(
        MemberFacts("a@x"), facts(once, OBSERVED, as_of=AS_OF)
    )
    assert got.kind is K.UNUSED


def test_underused_but_seasonal_is_seasonal() -> None:
    # Quarter-end user who touched the app briefly last week: recent, but under the floor.
    uses = {dt.date(y, m, 30): 10.0 for y in (2024, 2025) for m in (3, 6, 9)}
    uses |= {dt.date(2024, 12, 30): 10.0}
    as_of = dt.date(2025, 10, 20)
    got = verdict(
        policy=POLICY,
        member=MemberFacts("a@x"),
        usage=facts(uses, OBSERVED, as_of=as_of),
        as_of=as_of,
    )
    assert got.kind is K.SEASONAL
    plain = make_policy(underuse=None)
    assert (
        verdict(
            policy=plain,
            member=MemberFacts("a@x"),
            usage=facts(uses, OBSERVED, as_of=as_of),
            as_of=as_of,
        ).kind
        is K.IN_USE
    )


def test_recent_use_counts_even_when_data_is_stale() -> None:
    # Missing data can only hide use: what we did see proves use.
    last = AS_OF - dt.timedelta(days=20)
    usage = UsageFacts(
        last_used=last, minutes_in_window=500, first_observed=SINCE, last_observed=last
    )
    assert (
        verdict(policy=POLICY, member=MemberFacts("a@x"), usage=usage, as_of=AS_OF).kind is K.IN_USE
    )
    low = UsageFacts(last_used=last, minutes_in_window=5, first_observed=SINCE, last_observed=last)
    assert (
        verdict(policy=POLICY, member=MemberFacts("a@x"), usage=low, as_of=AS_OF).kind is K.NO_DATA
    )


def test_underuse_is_not_judged_without_durations_or_a_full_window() -> None:
    uses = {AS_OF - dt.timedelta(days=3): 1.0}
    no_durations = facts(uses, OBSERVED, as_of=AS_OF, durations=False)
    got = verdict(policy=POLICY, member=MemberFacts("a@x"), usage=no_durations, as_of=AS_OF)
    assert got.kind is K.IN_USE
    assert "underuse is not judged" in got.reason
    short = facts(uses, daily(AS_OF - dt.timedelta(days=40), AS_OF), as_of=AS_OF)
    got = verdict(policy=POLICY, member=MemberFacts("a@x"), usage=short, as_of=AS_OF)
    assert got.kind is K.NO_DATA
    assert "90-day window" in got.reason


def test_unknown_grant_date_means_no_grace_and_says_so() -> None:
    got = verdict(
        policy=POLICY,
        member=MemberFacts("a@x", granted_on=None),
        usage=facts({}, OBSERVED, as_of=AS_OF),
        as_of=AS_OF,
    )
    assert got.kind is K.UNUSED
    assert "grant date unknown" in got.reason


@pytest.mark.parametrize(("days_ago", "kind"), [(30, K.IN_USE), (31, K.UNUSED)])
def test_unused_days_boundary(days_ago: int, kind: VerdictKind) -> None:
    last = AS_OF - dt.timedelta(days=days_ago)
    usage = facts({last: 500.0}, OBSERVED, as_of=AS_OF)
    assert verdict(policy=POLICY, member=MemberFacts("a@x"), usage=usage, as_of=AS_OF).kind is kind


@pytest.mark.parametrize(("days_ago", "kind"), [(13, K.GRACE), (14, K.UNUSED)])
def test_grace_boundary(days_ago: int, kind: VerdictKind) -> None:
    member = MemberFacts("a@x", granted_on=AS_OF - dt.timedelta(days=days_ago))
    usage = facts({}, OBSERVED, as_of=AS_OF)
    assert verdict(policy=POLICY, member=member, usage=usage, as_of=AS_OF).kind is kind


def test_month_bits_and_rule_validation() -> None:
    bits = month_bits(
        [dt.date(2025, 11, 1), dt.date(2025, 9, 30), dt.date(2020, 1, 1)], as_of=AS_OF
    )
    assert bits == 0b101
    assert SeasonalRule().history_months == 26
    with pytest.raises(ValueError, match="seasonal period"):
        SeasonalRule(periods=((12, 2),))
    with pytest.raises(ValueError, match="max_burst_months"):
        SeasonalRule(max_burst_months=3)


def test_precedence_is_the_documented_order() -> None:
    assert [k.value for k in PRECEDENCE] == [
        "excluded",
        "grace",
        "in_use",
        "no_data",
        "seasonal",
        "unused",
        "underused",
    ]
    assert {k for k in VerdictKind if k.is_candidate} == {K.UNUSED, K.UNDERUSED}


dates = st.one_of(st.none(), st.dates(dt.date(2022, 1, 1), dt.date(2026, 1, 1)))


@given(
    user=st.sampled_from(["a@x", "ceo@example.com"]),
    groups=st.frozensets(st.sampled_from(["staff", "vip", "sales"])),
    granted=dates,
    last=dates,
    minutes=st.one_of(st.none(), st.floats(0, 10_000)),
    first=dates,
    observed=dates,
    bits=st.integers(0, 2**26 - 1),
)
def test_any_facts_give_exactly_one_safe_verdict(
    user: str,
    groups: frozenset[str],
    granted: dt.date | None,
    last: dt.date | None,
    minutes: float | None,
    first: dt.date | None,
    observed: dt.date | None,
    bits: int,
) -> None:
    usage = UsageFacts(last, minutes, first, observed, bits)
    got = Evaluator(POLICY, as_of=AS_OF).evaluate(MemberFacts(user, groups, granted), usage)
    assert got.kind in VerdictKind
    assert got.reason
    if user == "ceo@example.com" or "vip" in groups:
        assert got.kind is K.EXCLUDED
    if got.kind.is_candidate:
        # A candidate always rests on fresh data observed over the whole period judged.
        assert observed is not None
        assert (AS_OF - observed).days <= 7
        assert first is not None
        assert granted is None or (AS_OF - granted).days >= 14
        if got.kind is K.UNUSED:
            assert last is None or (AS_OF - last).days > 30
            assert last is not None or (AS_OF - first).days > 30
        else:
            assert minutes is not None
            assert minutes < 120


def test_docs_worked_example() -> None:
    # docs/verdicts.md, "a quarter-end user": keep the two in step.
    uses: dict[dt.date, float] = {}
    for year in (2024, 2025):
        for month in (3, 6, 9, 12):
            uses |= {dt.date(year, month, d): 90.0 for d in (28, 29, 30)}
            if month != 12:
                uses[dt.date(year, month + 1, 2)] = 60.0
    uses = {d: m for d, m in uses.items() if d <= dt.date(2025, 7, 2)}

    def at(as_of: dt.date) -> str:
        usage = facts(uses, daily(SINCE, as_of), as_of=as_of)
        got = verdict(
            policy=POLICY, member=MemberFacts("a@x", granted_on=LONG_AGO), usage=usage, as_of=as_of
        )
        return f"{got.kind}: {got.reason}"

    assert at(dt.date(2025, 8, 12)) == (
        "seasonal: quarterly pattern: used in the same months in 4 of the previous 4 cycles; "
        "next expected from 2025-09-01 (in 20 days)"
    )
    assert at(dt.date(2025, 10, 31)).startswith("seasonal")
    assert at(dt.date(2025, 11, 1)).startswith("unused: last used 2025-07-02, 122 days ago")
