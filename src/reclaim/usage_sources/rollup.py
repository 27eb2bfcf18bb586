"""Turning a chunk of validated events into roll-ups: the only shape usage is stored in.

Three aggregates per chunk, keyed by user and app (the importer passes row ids, which
group and join much faster than the text keys):
- ``daily``: (user, app, day) → seconds, events, first/last seen;
- ``observed``: (user, month) → a bit per day the user was seen at all;
- ``latest``: (user, app) → first/last day and last time seen.
Aggregating a file chunk by chunk and merging gives exactly what one pass would:
sums add, minima and maxima compose, and day bits OR together. ``Accumulator``
merges polars frames; the file import keeps ``observed`` and ``latest`` with
``KeyedTotals`` instead (numpy, folded in place), fed from ``daily_rollup``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
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


# daily_rollup packs (day, user, app) into one int64 when they fit these bits.
_DAY_BITS, _USER_BITS, _APP_BITS = 11, 32, 20


def daily_rollup(events: pl.DataFrame, *, user: str, app: str) -> pl.DataFrame:
    """Only the ``daily`` aggregate of ``rollup``, sorted by (day, user, app): for
    sources that keep ``observed`` and ``latest`` with :class:`KeyedTotals`.

    ``user`` and ``app`` must be integer ids. When the chunk's days and ids fit,
    the three keys are packed into one integer: grouping and sorting by one column
    measured ~40% cheaper than by three.
    """
    agg = (
        pl.col("seconds").sum().alias("seconds"),
        pl.len().cast(pl.Int64).alias("events"),
        pl.col("ts").min().alias("first_seen"),
        pl.col("ts").max().alias("last_seen"),
    )
    day = pl.col("ts") // SECONDS_PER_DAY
    bounds = events.select(
        day.min().alias("d0"),
        day.max().alias("d1"),
        pl.col(user).min().alias("u0"),
        pl.col(user).max().alias("u1"),
        pl.col(app).min().alias("a0"),
        pl.col(app).max().alias("a1"),
    ).row(0, named=True)
    fits = events.height > 0 and (
        bounds["d1"] - bounds["d0"] < 1 << _DAY_BITS
        and bounds["u0"] >= 0
        and bounds["u1"] < 1 << _USER_BITS
        and bounds["a0"] >= 0
        and bounds["a1"] < 1 << _APP_BITS
    )
    if not fits:
        return (
            events.with_columns(day.cast(pl.Int32).alias("day"))
            .group_by(user, app, "day")
            .agg(*agg)
            .sort("day", user, app)
        )
    d0 = int(bounds["d0"])
    key = ((day - d0) * (1 << _USER_BITS) + pl.col(user)) * (1 << _APP_BITS) + pl.col(app)
    return (
        events.select(key.alias("_key"), "ts", "seconds")
        .group_by("_key")
        .agg(*agg)
        .sort("_key")
        .select(
            (pl.col("_key") // (1 << (_USER_BITS + _APP_BITS)) + d0).cast(pl.Int32).alias("day"),
            (pl.col("_key") // (1 << _APP_BITS) % (1 << _USER_BITS)).alias(user),
            (pl.col("_key") % (1 << _APP_BITS)).alias(app),
            "seconds",
            "events",
            "first_seen",
            "last_seen",
        )
    )


def month_and_bit(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since the epoch → (``year * 12 + month - 1``, ``2**(day of month - 1)``),
    as :func:`month_of_day` and :func:`observed_days` compute them, in numpy."""
    as_day = days.astype("datetime64[D]")
    month_start = as_day.astype("datetime64[M]")
    month = month_start.astype(np.int64) + 1970 * 12
    day_index = (as_day - month_start.astype("datetime64[D]")).astype(np.int64)
    return month, np.left_shift(np.int64(1), day_index)


_NP_OPS: dict[str, np.ufunc] = {"min": np.minimum, "max": np.maximum, "or": np.bitwise_or}
_KEY_BITS = 31  # the second key takes the low 31 bits of the packed key, the first 32


def _pl_op(op: str, col: str) -> pl.Expr:
    if op == "min":
        return pl.col(col).min()
    if op == "max":
        return pl.col(col).max()
    return pl.col(col).bitwise_or()


@dataclass
class KeyedTotals:
    """A running aggregate keyed by two integer columns (min, max or bitwise or per
    value column), fed frames whose keys may repeat, in any order.

    The totals are numpy arrays sorted by a packed key: a frame's keys already
    there are found by binary search and folded in place (``ufunc.at``), and new
    keys wait until ``fold_rows`` of them are pending, then are sorted in once. A
    file's keys are nearly all met in its first chunks, so most rows take the
    first path: measured ~5x cheaper than concatenating and re-grouping frames
    (:class:`Accumulator`). Keys outside the packable range (negative, or beyond
    32 and 31 bits) are kept as frames and grouped with polars at the end.
    """

    keys: tuple[str, str]
    values: dict[str, tuple[str, str]]  # output column → (input column, "min"|"max"|"or")
    fold_rows: int = 200_000
    packed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    totals: dict[str, np.ndarray] = field(default_factory=dict)
    pending: list[tuple[np.ndarray, dict[str, np.ndarray]]] = field(default_factory=list)
    pending_rows: int = 0
    unpacked: list[pl.DataFrame] = field(default_factory=list)

    def add(self, frame: pl.DataFrame) -> None:
        """Fold in one frame holding the key columns and every input column."""
        if frame.height == 0:
            return
        high = frame.get_column(self.keys[0]).to_numpy().astype(np.int64, copy=False)
        low = frame.get_column(self.keys[1]).to_numpy().astype(np.int64, copy=False)
        if high.min() < 0 or high.max() >> 32 or low.min() < 0 or low.max() >> _KEY_BITS:
            self.unpacked.append(
                frame.select(*self.keys, *(pl.col(c).alias(o) for o, (c, _) in self.values.items()))
            )
            return
        key = (high << _KEY_BITS) | low
        order = np.argsort(key, kind="stable")  # adaptive: daily rows come in runs
        key = key[order]
        vals = {
            out: frame.get_column(col).to_numpy().astype(np.int64, copy=False)[order]
            for out, (col, _) in self.values.items()
        }
        if len(self.packed):
            pos = np.searchsorted(self.packed, key)
            pos[pos == len(self.packed)] = 0
            hit = self.packed[pos] == key
            for out, (_, op) in self.values.items():
                _NP_OPS[op].at(self.totals[out], pos[hit], vals[out][hit])
            if hit.all():
                return
            miss = ~hit
            key = key[miss]
            vals = {out: v[miss] for out, v in vals.items()}
        self.pending.append((key, vals))
        self.pending_rows += len(key)
        if self.pending_rows >= self.fold_rows:
            self._fold()

    def _fold(self) -> None:
        if not self.pending:
            return
        key = np.concatenate([self.packed, *(k for k, _ in self.pending)])
        order = np.argsort(key)
        key = key[order]
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        for out, (_, op) in self.values.items():
            empty = np.empty(0, dtype=np.int64)
            merged = np.concatenate(
                [self.totals.get(out, empty), *(v[out] for _, v in self.pending)]
            )
            self.totals[out] = _NP_OPS[op].reduceat(merged[order], starts)
        self.packed = key[starts]
        self.pending, self.pending_rows = [], 0

    def empty(self) -> bool:
        """True when nothing was added."""
        return not len(self.packed) and not self.pending and not self.unpacked

    def result(self) -> pl.DataFrame:
        """One row per key: the key columns and the output columns."""
        self._fold()
        frame = pl.DataFrame(
            {
                self.keys[0]: self.packed >> _KEY_BITS,
                self.keys[1]: self.packed & ((1 << _KEY_BITS) - 1),
                **{out: self.totals.get(out, np.empty(0, dtype=np.int64)) for out in self.values},
            },
            schema={c: pl.Int64 for c in (*self.keys, *self.values)},
        )
        if not self.unpacked:
            return frame
        return (
            pl.concat([frame, *(f.cast(pl.Int64) for f in self.unpacked)])
            .group_by(*self.keys)
            .agg(_pl_op(op, out) for out, (_, op) in self.values.items())
        )
