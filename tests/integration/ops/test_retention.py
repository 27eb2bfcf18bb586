"""usage.retention_days: old roll-ups go, day by day; last-use dates stay."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, insert, select

from reclaim.store.retention import prune_usage
from reclaim.store.tables import usage_daily, usage_latest, usage_observed
from reclaim.store.usage_queries import day_number

TODAY = dt.date(2026, 11, 28)
RETENTION = 400
CUTOFF = TODAY - dt.timedelta(days=RETENTION)  # 2025-10-24: the first day kept


def seed(engine: Engine) -> None:
    days = [CUTOFF - dt.timedelta(days=30), CUTOFF - dt.timedelta(days=1), CUTOFF, TODAY]
    with engine.begin() as conn:
        conn.execute(
            insert(usage_daily),
            [
                {"day": day_number(d), "user_id": u, "app_id": 1, "seconds": 60, "events": 1,
                 "first_seen": 0, "last_seen": 0}
                for d in days
                for u in (1, 2)
            ],
        )  # fmt: skip
        conn.execute(
            insert(usage_observed),
            [
                {"user_id": 1, "source_id": 1, "month": m, "days_mask": 1, "last_day": 1}
                for m in (2025 * 12 + 8, 2025 * 12 + 9, 2026 * 12 + 10)  # Sep, Oct 2025; Nov 2026
            ],
        )
        conn.execute(
            insert(usage_latest).values(
                user_id=3, app_id=1, first_day=day_number(dt.date(2024, 1, 5)),
                last_day=day_number(dt.date(2024, 2, 1)), last_seen=0,
            )
        )  # fmt: skip


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (usage_daily, usage_observed, usage_latest)
        )  # type: ignore[return-value]


def test_prune_keeps_the_retention_window_and_last_use(engine: Engine) -> None:
    seed(engine)
    dry = prune_usage(engine, retention_days=RETENTION, today=TODAY, dry_run=True)
    assert (dry.daily_rows, dry.observed_rows) == (4, 1)
    assert counts(engine) == (8, 3, 1)  # a dry run deletes nothing

    report = prune_usage(engine, retention_days=RETENTION, today=TODAY)

    assert report.cutoff == CUTOFF and (report.daily_rows, report.observed_rows) == (4, 1)
    with engine.connect() as conn:
        kept_days = set(conn.execute(select(usage_daily.c.day)).scalars())
        months = set(conn.execute(select(usage_observed.c.month)).scalars())
    assert kept_days == {day_number(CUTOFF), day_number(TODAY)}
    # October 2025 holds the cut-off day, so its bitmap stays whole.
    assert months == {2025 * 12 + 9, 2026 * 12 + 10}
    assert counts(engine)[2] == 1  # the 2024 last-use date of user 3 survives
    again = prune_usage(engine, retention_days=RETENTION, today=TODAY)
    assert (again.daily_rows, again.observed_rows) == (0, 0)


def test_retention_below_the_seasonal_lookback_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match=r"usage.retention_days: 90 is below 400"):
        prune_usage(engine, retention_days=90, today=TODAY)
