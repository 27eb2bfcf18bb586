"""Usage retention: drop roll-ups older than ``usage.retention_days``.

What goes: daily roll-ups (``usage_daily``) and observed-day bitmaps
(``usage_observed``) from before the cut-off. What stays: ``usage_latest`` (the last
day each user used each app — without it a user idle for longer than the retention
would look "never used") and import records (they make re-imports no-ops).

The delete walks the cut-off region one day at a time, each day in its own short
transaction: ``usage_daily``'s key starts with the day, so each delete is one
contiguous range, locks little, and leaves PostgreSQL's autovacuum work it can keep
up with (no single huge transaction, no table rewrite).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select

from reclaim.store.tables import usage_daily, usage_observed
from reclaim.store.usage_queries import day_number

# The seasonal rule looks back a year and a quarter; keeping less would make
# year-end users look unused. Config validation enforces the same floor.
MIN_RETENTION_DAYS = 400


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune removed (or would remove, in a dry run)."""

    cutoff: dt.date  # the first day kept
    daily_rows: int
    observed_rows: int
    dry_run: bool


def _month(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def prune_usage(
    engine: Engine,
    *,
    retention_days: int,
    today: dt.date,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PruneReport:
    """Delete usage older than ``retention_days`` before ``today``; see the module doc.

    ``progress(done_days, total_days)`` is called after each day.
    """
    if retention_days < MIN_RETENTION_DAYS:
        raise ValueError(
            f"usage.retention_days: {retention_days} is below {MIN_RETENTION_DAYS}, "
            "the history the seasonal rule needs"
        )
    cutoff = today - dt.timedelta(days=retention_days)
    first_kept = day_number(cutoff)
    # Whole months only: a bitmap row holds the month's days together.
    first_month_kept = _month(cutoff)
    with engine.connect() as conn:
        oldest = conn.execute(select(func.min(usage_daily.c.day))).scalar()
        old_daily = conn.execute(
            select(func.count()).select_from(usage_daily).where(usage_daily.c.day < first_kept)
        ).scalar_one()
        old_observed = conn.execute(
            select(func.count())
            .select_from(usage_observed)
            .where(usage_observed.c.month < first_month_kept)
        ).scalar_one()
    if dry_run or not (old_daily or old_observed):
        return PruneReport(cutoff, int(old_daily), int(old_observed), dry_run)
    if oldest is not None and oldest < first_kept:
        total = first_kept - int(oldest)
        for done, day in enumerate(range(int(oldest), first_kept), start=1):
            with engine.begin() as conn:
                conn.execute(delete(usage_daily).where(usage_daily.c.day == day))
            if progress:
                progress(done, total)
    with engine.begin() as conn:
        conn.execute(delete(usage_observed).where(usage_observed.c.month < first_month_kept))
    return PruneReport(cutoff, int(old_daily), int(old_observed), dry_run)
