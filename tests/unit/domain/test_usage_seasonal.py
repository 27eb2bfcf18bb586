"""The seasonal rule's screen: :meth:`SeasonalRule.may_explain` never leaves out a
member :meth:`SeasonalRule.explain` would explain (decisions read the month history
only for the members it names)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from reclaim.domain.seasonal import SeasonalRule, month_index, month_indexes
from reclaim.domain.usage import EPOCH

rules = st.builds(
    SeasonalRule,
    periods=st.sampled_from([((3, 2), (12, 1)), ((3, 1),), ((4, 2), (6, 2)), ((5, 2), (12, 1))]),
    lookback_months=st.sampled_from([12, 24]),
    max_burst_months=st.sampled_from([1, 2]),
    horizon_days=st.sampled_from([0, 31, 62, 120, 400]),
    min_contrast=st.sampled_from([0.0, 0.5, 1.0]),
)


def _number(d: dt.date) -> int:
    return (d - EPOCH).days


@settings(max_examples=400)  # cheap, and only some draws are explained
@given(
    rule=rules,
    as_of=st.dates(dt.date(2023, 1, 1), dt.date(2027, 12, 31)),
    ago=st.integers(0, 120) | st.integers(-40, 500),
    observed=st.integers(0, 1200),
    data=st.data(),
    kept=st.integers(0, 2**26 - 1),
    noise=st.lists(st.integers(0, 2**26 - 1), min_size=2, max_size=5),
)
def test_may_explain_keeps_everyone_the_rule_explains(
    rule: SeasonalRule,
    as_of: dt.date,
    ago: int,
    observed: int,
    data: st.DataObject,
    kept: int,
    noise: list[int],
) -> None:
    last = as_of - dt.timedelta(days=ago)
    first = last - dt.timedelta(days=observed)
    # A history repeating every few months from the last use back (some cycles
    # skipped), plus sparse noise: the histories patterns show in.
    start = month_index(as_of) - month_index(last)
    every = data.draw(st.sampled_from([p for p, _ in rule.periods]) | st.integers(2, 13))
    bits = 0
    for i, months in enumerate(range(max(start, 0), 26, every)):
        if i == 0 or kept >> i & 1:
            bits |= 1 << months
    sparse = 2**26 - 1
    for n in noise:
        sparse &= n
    bits |= sparse
    why = rule.explain(as_of, last, first, bits)
    may = rule.may_explain(
        as_of, np.array([_number(last)], np.int64), np.array([_number(first)], np.int64)
    )
    if why is not None:
        event("explained")
        assert may.tolist() == [True], why


def test_may_explain_answers_per_member() -> None:
    rule = SeasonalRule()
    as_of = dt.date(2025, 8, 12)
    last = [dt.date(2025, 7, 2), dt.date(2025, 7, 2), dt.date(2024, 1, 5), dt.date(2025, 9, 1)]
    first = [dt.date(2023, 6, 1), dt.date(2025, 5, 1), dt.date(2023, 6, 1), dt.date(2023, 6, 1)]
    got = rule.may_explain(
        as_of,
        np.array([_number(d) for d in last], np.int64),
        np.array([_number(d) for d in first], np.int64),
    )
    # docs' quarter-end user; the same observed for 3 months only (no earlier cycle
    # fits); last use 19 months ago (every window has passed); last use after as_of.
    assert got.tolist() == [True, False, False, False]
    quarter_end = sum(1 << m for m in (1, 2, 4, 5, 7, 8, 10, 11, 13, 14))
    assert rule.explain(as_of, last[0], first[0], quarter_end) is not None
    assert rule.explain(as_of, last[1], first[1], quarter_end) is None


@given(st.dates(dt.date(1970, 1, 1), dt.date(2200, 12, 31)))
def test_month_indexes_are_month_index(day: dt.date) -> None:
    assert month_indexes(np.array([_number(day)], np.int64)).tolist() == [month_index(day)]
