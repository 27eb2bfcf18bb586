"""Turning a chunk of validated events into roll-ups: the only shape usage is stored in.

Three aggregates per chunk, keyed by user and app (the importer passes row ids, which
group and join much faster than the text keys):
- ``daily``: (user, app, day) → seconds, events, first/last seen;
- ``observed``: (user, month) → a bit per day the user was seen at all;
- ``latest``: (user, app) → first/last day and last time seen.
Aggregating a file chunk by chunk and merging gives exactly what one pass would:
sums add, minima and maxima compose, and day bits OR together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

SECONDS_PER_DAY = 86_400
# The app of a row that only says its user was seen (a device heartbeat, a sign-in):
# sources hand such rows to ``observed_days``, never to ``rollup``.
OBSERVED_ONLY_APP = "(observed)"


@dataclass(frozen=True)
class Rollup:
    """The aggregates of one chunk of events."""

    daily: pl.DataFrame  # user, app, day, seconds, events, first_seen, last_seen
    observed: pl.DataFrame  # user, month, days_mask, last_day
    latest: pl.DataFrame  # user, app, first_day, last_day, last_seen
    events: int


def month_of_day(day: pl.Expr) -> pl.Expr:
    """Days since the epoch → ``year * 12 + month - 1``."""
    date = day.cast(pl.Date)
    return date.dt.year().cast(pl.Int32) * 12 + date.dt.month().cast(pl.Int32) - 1


def app_names(events: pl.DataFrame) -> pl.DataFrame:
    """(app_key, app_name): the first spelling of each app seen in ``events``."""
    return events.select("app_key", "app_name").unique(
        subset="app_key", keep="first", maintain_order=True
    )


def rollup(events: pl.DataFrame, *, user: str = "user", app: str = "app_key") -> Rollup:
    """Aggregate validated events keyed by the ``user`` and ``app`` columns."""
    ev = events.with_columns((pl.col("ts") // SECONDS_PER_DAY).cast(pl.Int32).alias("day"))
    daily = ev.group_by(user, app, "day").agg(
        pl.col("seconds").sum().alias("seconds"),
        pl.len().cast(pl.Int64).alias("events"),
        pl.col("ts").min().alias("first_seen"),
        pl.col("ts").max().alias("last_seen"),
    )
    # Observed days come from the (much smaller) daily frame: same days, fewer rows.
    observed = observed_days(daily.select(user, "day"), user=user)
    latest = daily.group_by(user, app).agg(
        pl.col("day").min().alias("first_day"),
        pl.col("day").max().alias("last_day"),
        pl.col("last_seen").max().alias("last_seen"),
    )
    return Rollup(daily=daily, observed=observed, latest=latest, events=ev.height)


def observed_days(days: pl.DataFrame, *, user: str = "user") -> pl.DataFrame:
    """(user, day) pairs → the ``observed`` aggregate: (user, month, days_mask, last_day).

    Also what sources call for rows that only say a user was seen (a sign-in, a device
    heartbeat): those mark the day observed without being use of any app, so they
    never reach ``rollup`` and never make a ``usage_daily`` row.
    """
    return (
        days.select(user, "day")
        .unique()
        .with_columns(
            month_of_day(pl.col("day")).alias("month"),
            # 2**(day of month - 1), exact in float64 for days 1..31.
            pl.lit(2.0)
            .pow(pl.col("day").cast(pl.Date).dt.day().cast(pl.Float64) - 1)
            .cast(pl.Int64)
            .alias("bit"),
        )
        .group_by(user, "month")
        # Days are unique here, so summing their bits is the same as OR-ing them.
        .agg(pl.col("bit").sum().alias("days_mask"), pl.col("day").max().alias("last_day"))
    )


def merge_latest(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Combine ``latest`` aggregates (same columns) into one row per key."""
    cols = parts[0].columns
    keys = [c for c in cols if c not in ("first_day", "last_day", "last_seen")]
    return (
        pl.concat([p.select(cols) for p in parts])
        .group_by(keys)
        .agg(pl.col("first_day").min(), pl.col("last_day").max(), pl.col("last_seen").max())
    )


def merge_observed(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Combine ``observed`` aggregates: day bits OR together, last day is the max."""
    cols = parts[0].columns
    keys = [c for c in cols if c not in ("days_mask", "last_day")]
    return (
        pl.concat([p.select(cols) for p in parts])
        .group_by(keys)
        .agg(pl.col("days_mask").bitwise_or(), pl.col("last_day").max())
    )


@dataclass
class Accumulator:
    """Merges many partial aggregates, a batch at a time rather than one by one.

    Merging after every chunk would re-sort the growing total each time; batching
    until ``batch_rows`` pending rows keeps the cost linear.
    """

    merge: Callable[[list[pl.DataFrame]], pl.DataFrame]
    batch_rows: int = 200_000
    total: pl.DataFrame | None = None
    pending: list[pl.DataFrame] = field(default_factory=list)

    def add(self, part: pl.DataFrame) -> None:
        """Take one more partial aggregate."""
        self.pending.append(part)
        if sum(p.height for p in self.pending) >= self.batch_rows:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            prior = [] if self.total is None else [self.total]
            self.total = self.merge(prior + self.pending)
            self.pending = []

    def result(self) -> pl.DataFrame:
        """The merged aggregate of everything added."""
        self._flush()
        assert self.total is not None, "result() before any add()"
        return self.total
