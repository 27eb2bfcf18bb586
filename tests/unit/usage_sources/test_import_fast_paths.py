"""The file import's fast paths agree with the plain ones they stand in for.

- ``quick_events`` picks rows without any text clean-up: each must be one that
  ``validate`` accepts, with the same time and seconds;
- ``daily_rollup`` (one packed key when ids fit) gives ``rollup``'s daily rows;
- ``KeyedTotals`` (numpy, in place) gives what grouping every row at once gives.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.usage_sources.events import quick_events, validate
from reclaim.usage_sources.rollup import (
    KeyedTotals,
    daily_rollup,
    month_and_bit,
    month_of_day,
    rollup,
)

NOW = int(dt.datetime(2026, 11, 28, tzinfo=dt.UTC).timestamp())

# Values near the edges of every rule, as exports spell them.
users = st.sampled_from(["a@x.test", " A@x.test ", "A@X.TEST", "", "   ", "b@x.test", None])
apps = st.sampled_from(["Miro", "miro ", " ", "", "VISIO.EXE", None])
times = st.sampled_from(
    [
        "2026-10-01T09:00:00Z",
        "2026-10-01T09:00:00+02:00",
        "2026-10-01 09:00:00",
        " 2026-10-02T10:00:00Z",
        "1790000000",
        "2031-01-01T00:00:00Z",
        "not-a-time",
        "",
        None,
    ]
)
dates = st.sampled_from(["2026-10-03", "03/10/2026", "", None])
seconds = st.sampled_from(
    ["60", "0", "86400", "86401", "-5", "1.5", " 7", "+7", "007", "1e3", "x", "", " ", None]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(users, apps, times, dates, seconds), min_size=1, max_size=30),
    st.booleans(),
)
def test_quick_rows_are_rows_validate_accepts_alike(
    rows: list[tuple[str | None, ...]], with_seconds: bool
) -> None:
    columns = ["user", "app", "timestamp", "date", "seconds"]
    if not with_seconds:
        rows = [r[:4] for r in rows]
        columns = columns[:4]
    raw = pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")
    raw = raw.with_columns(line=pl.int_range(2, raw.height + 2, dtype=pl.Int64))
    quick = quick_events(raw, now=NOW)
    assert quick.rest.len() == raw.height
    assert quick.events.height + int(quick.rest.sum()) == raw.height

    # Every quick row, checked alone by validate: accepted, same time and seconds
    # (user and app are left as written; the caller normalizes them).
    by_line = {r["line"]: r for r in raw.iter_rows(named=True)}
    for row in quick.events.iter_rows(named=True):
        alone = pl.DataFrame([by_line[row["line"]]], schema=raw.schema)
        checked = validate(alone, now=NOW)
        if by_line[row["line"]]["user"].strip() and by_line[row["line"]]["app"].strip():
            assert checked.rejects.height == 0, row
            event = checked.events.row(0, named=True)
            assert (event["ts"], event["seconds"]) == (row["ts"], row["seconds"])
        else:  # blank once trimmed: the importer sends these rows to validate
            assert checked.rejects.height == 1


def _events(n: int, seed: int, *, big_ids: bool = False) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    users = rng.integers(1, 40, n) + (1 << 40 if big_ids else 0)
    return pl.DataFrame(
        {
            "user_id": users,
            "app_id": rng.integers(1, 6, n),
            "ts": 1_790_000_000 + rng.integers(0, 5 * 86_400, n),
            "seconds": rng.integers(0, 3600, n),
        }
    )


def test_daily_rollup_is_rollups_daily_sorted() -> None:
    for big in (False, True):  # packed key, and the plain grouping when ids don't fit
        events = _events(5000, seed=3, big_ids=big)
        expected = rollup(events, user="user_id", app="app_id").daily
        got = daily_rollup(events, user="user_id", app="app_id")
        assert got.select("day", "user_id", "app_id").rows() == sorted(
            got.select("day", "user_id", "app_id").rows()
        )
        assert got.sort("day", "user_id", "app_id").equals(
            expected.select(got.columns).sort("day", "user_id", "app_id")
        )


def test_month_and_bit_match_polars() -> None:
    days = np.array([-800, -1, 0, 30, 31, 59, 20_000, 20_454, 60_000], dtype=np.int64)
    month, bit = month_and_bit(days)
    frame = pl.DataFrame({"day": days})
    assert month.tolist() == frame.select(month_of_day(pl.col("day"))).to_series().to_list()
    day_of_month = frame.select(pl.col("day").cast(pl.Date).dt.day()).to_series().to_list()
    assert bit.tolist() == [1 << (d - 1) for d in day_of_month]


def test_keyed_totals_equal_one_grouping() -> None:
    rng = np.random.default_rng(11)
    parts = []
    for i in range(12):
        n = 400
        high = rng.integers(0, 300, n)
        if i == 7:  # keys beyond the packed range take the polars path
            high[:50] = (1 << 33) + rng.integers(0, 3, 50)
        parts.append(
            pl.DataFrame(
                {
                    "user_id": high,
                    "app_id": rng.integers(0, 9, n),
                    "day": rng.integers(20_000, 20_100, n),
                    "bit": 1 << rng.integers(0, 31, n),
                }
            )
        )
    totals = KeyedTotals(
        ("user_id", "app_id"),
        {"first": ("day", "min"), "last": ("day", "max"), "mask": ("bit", "or")},
        fold_rows=500,  # folds several times, and most later keys are hits
    )
    for part in parts:
        totals.add(part)
    expected = (
        pl.concat(parts)
        .group_by("user_id", "app_id")
        .agg(
            pl.col("day").min().alias("first"),
            pl.col("day").max().alias("last"),
            pl.col("bit").bitwise_or().alias("mask"),
        )
    )
    got = totals.result()
    assert sorted(got.rows()) == sorted(expected.select(got.columns).rows())
    assert KeyedTotals(("a", "b"), {"c": ("c", "min")}).empty()
