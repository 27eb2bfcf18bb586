"""Pure helpers of the decision path: window sums over the monthly summary, backoff."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from reclaim.services.runtime import BACKOFF_MAX, backoff
from reclaim.store.usage_queries import day_number
from reclaim.store.usage_window import month_bounds, window_sum_sql

D = day_number


def test_a_window_of_whole_months_reads_the_month_totals() -> None:
    expr, params = window_sum_sql(D(dt.date(2026, 8, 1)), D(dt.date(2026, 10, 31)))
    assert expr == "CASE m.month WHEN :m0 THEN m.seconds WHEN :m1 THEN m.seconds ELSE m.seconds END"
    assert params == {"m0": 2026 * 12 + 7, "m1": 2026 * 12 + 9}


def test_partial_edge_months_use_the_fewest_day_columns() -> None:
    # 3 Aug .. 20 Oct: August is its total minus its first two days; October's first 20
    # days are its total minus days 21..31 (12 terms rather than 20).
    expr, _ = window_sum_sql(D(dt.date(2026, 8, 3)), D(dt.date(2026, 10, 20)))
    first, second = expr.split("WHEN :m1 THEN")
    assert "(m.seconds - m.d01 - m.d02)" in first
    assert second.count("m.d") == 11 and "(m.seconds - m.d21 - " in second
    # Up to the 16th: the 16 days themselves (the total minus 15 days is no shorter).
    expr, _ = window_sum_sql(D(dt.date(2026, 8, 3)), D(dt.date(2026, 10, 16)))
    assert expr.split("WHEN :m1 THEN")[1].startswith(" (m.d01 + ")
    inside, _ = window_sum_sql(D(dt.date(2026, 8, 10)), D(dt.date(2026, 8, 12)))
    assert inside == "(m.d10 + m.d11 + m.d12)"


def test_month_bounds() -> None:
    assert month_bounds(2024 * 12 + 1) == (D(dt.date(2024, 2, 1)), D(dt.date(2024, 2, 29)))
    assert month_bounds(2026 * 12 + 11) == (D(dt.date(2026, 12, 1)), D(dt.date(2026, 12, 31)))


def test_backoff_doubles_with_jitter_up_to_a_ceiling_and_honours_retry_after() -> None:
    rng = random.Random(1)
    waits = [backoff(n, rng=rng) for n in range(1, 6)]
    for n, wait in enumerate(waits, start=1):
        assert 0.9 * 60 * 2 ** (n - 1) <= wait <= 1.1 * 60 * 2 ** (n - 1)
    assert backoff(40, rng=rng) <= 1.1 * BACKOFF_MAX
    assert backoff(1, 3600, rng=rng) == 3600  # the peer's Retry-After wins when longer


@pytest.mark.parametrize("failures", [0, 1])
def test_backoff_starts_at_about_a_minute(failures: int) -> None:
    assert 54 <= backoff(failures) <= 66
