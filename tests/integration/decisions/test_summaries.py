"""The monthly usage summary and the facts read from it, against plain computations."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, delete, func, insert, select, update

from reclaim.domain.usage import month_bits
from reclaim.store.facts import active_months, app_ids_by_policy, load_facts
from reclaim.store.policies import policy_id
from reclaim.store.summaries import (
    ensure_usage_summaries,
    rebuild_usage_summaries,
    refresh_summaries,
    stale_days,
    summaries_current,
)
from reclaim.store.tables import sources, summary_state, usage_daily, usage_latest, usage_monthly
from reclaim.store.usage_queries import day_number
from reclaim.store.usage_window import pair_usage, window_sum_sql

from .conftest import NOW, import_group, import_usage, make_settings, open_store, policy_yaml

EPOCH = dt.date(1970, 1, 1)


def _daily(rng: random.Random, n: int) -> pl.DataFrame:
    """Random daily roll-ups over ~15 months for 5 users and 3 apps, unique keys."""
    first = day_number(dt.date(2025, 9, 1))
    keys = {(first + rng.randrange(460), rng.randint(1, 5), rng.randint(1, 3)) for _ in range(n)}
    rows = [(d, u, a, rng.choice([0, 30, 600, 5000]), rng.randint(1, 4)) for d, u, a in keys]
    return pl.DataFrame(
        rows,
        schema={
            "day": pl.Int64,
            "user_id": pl.Int64,
            "app_id": pl.Int64,
            "seconds": pl.Int64,
            "events": pl.Int64,
        },
        orient="row",
    )


def _write_daily(
    engine: Engine, frame: pl.DataFrame, *, latest: pl.DataFrame | None = None
) -> None:
    """Daily roll-ups and the per-(user, app) latest rows of ``latest`` (default:
    ``frame``), as an import writes them; ``latest`` is written when not empty."""
    with engine.begin() as conn:
        conn.execute(
            insert(usage_daily),
            [{**r, "first_seen": 0, "last_seen": 0} for r in frame.to_dicts()],
        )
        if latest is None or latest.height:
            rows = (
                (frame if latest is None else latest)
                .group_by("user_id", "app_id")
                .agg(pl.col("day").min().alias("first_day"), pl.col("day").max().alias("last_day"))
            )
            conn.execute(insert(usage_latest), [{**r, "last_seen": 0} for r in rows.to_dicts()])


def _monthly_rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(select(usage_monthly).order_by(*usage_monthly.primary_key))
        ]


def _expected_monthly(daily: pl.DataFrame) -> list[tuple]:
    """The summary computed plainly, row by row, from the daily roll-ups."""
    rows: dict[tuple[int, int, int], list[int]] = {}
    for day, user, app, secs in daily.select("day", "user_id", "app_id", "seconds").iter_rows():
        date = EPOCH + dt.timedelta(days=day)
        key = (user, app, date.year * 12 + date.month - 1)
        row = rows.setdefault(key, [0, 0] + [0] * 31)
        row[0] += secs
        row[1] |= 1 << (date.day - 1)
        row[2 + date.day - 1] += secs
    return sorted((*k, *v) for k, v in rows.items())


def _add_source(engine: Engine, events: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(sources).values(
                id=1, name="s", kind="file", rows_accepted=events, rows_rejected=0
            )
        )


def test_refreshing_day_by_day_or_by_month_equals_a_plain_computation(engine: Engine) -> None:
    rng = random.Random(3)
    daily = _daily(rng, 900)
    days = sorted(set(daily.get_column("day").to_list()))
    # In three uneven parts, as imports would: refreshed at once, marked for later, and
    # a part refreshed twice (an idempotent refresh: a day's column is set, not added to).
    parts = [days[:40], days[40:300], days[300:]]
    _write_daily(engine, daily.filter(pl.col("day").is_in(parts[0])), latest=daily)
    with engine.begin() as conn:
        assert refresh_summaries(conn, parts[0], now=1) == len(parts[0])
    _write_daily(engine, daily.filter(pl.col("day").is_in(parts[1])), latest=daily.clear())
    with engine.begin() as conn:
        assert refresh_summaries(conn, parts[1], now=1, defer=True) == 0
    _write_daily(engine, daily.filter(pl.col("day").is_in(parts[2])), latest=daily.clear())
    with engine.begin() as conn:
        refresh_summaries(conn, parts[2], now=1)
        refresh_summaries(conn, parts[2][:5], now=1)
    _add_source(engine, int(daily.get_column("events").sum()))
    with engine.connect() as conn:
        assert not summaries_current(conn)  # part 2 is only marked
        # Part 2's days, less those a whole-month pass of part 3 recomputed on its way.
        stale = stale_days(conn, scan=False)
        assert len(stale) > 200 and set(stale) <= set(parts[1])
    assert ensure_usage_summaries(engine, now=2) == len(stale)
    assert _monthly_rows(engine) == _expected_monthly(daily)
    with engine.connect() as conn:
        assert summaries_current(conn)
        state = conn.execute(select(summary_state.c.events)).scalar()
    assert state == daily.get_column("events").sum()
    # Windows of every shape: inside a month, across two, across many, ending today.
    with engine.connect() as conn:
        for _ in range(40):
            hi = day_number(dt.date(2025, 9, 1)) + rng.randrange(30, 470)
            lo = hi - rng.choice([1, 7, 20, 31, 60, 90, 200]) + 1
            expr, _ = window_sum_sql(lo, hi)
            assert "usage_daily" not in expr  # no daily roll-up is read, whatever the window
            pairs = pair_usage(conn, [1, 2, 3], lo=lo, hi=hi)
            found = {
                (u, a): (last, secs)
                for a, u, last, secs in zip(*(c.tolist() for c in pairs), strict=True)
            }
            expected = daily.filter(pl.col("day") <= hi).select("user_id", "app_id").unique()
            assert set(found) == set(expected.iter_rows())  # first used after hi: left out
            for (u, a), got in found.items():
                part = daily.filter((pl.col("user_id") == u) & (pl.col("app_id") == a))
                window = part.filter(pl.col("day").is_between(lo, hi))
                before = part.filter(pl.col("day") <= hi)
                assert got[1] == window.get_column("seconds").sum(), (lo, hi, u, a)
                assert got[0] == before.get_column("day").max(), (lo, hi, u, a)


def test_days_a_writer_forgot_are_found_and_refreshed_before_a_read(engine: Engine) -> None:
    daily = _daily(random.Random(4), 300)
    _write_daily(engine, daily)  # and no refresh_summaries call at all
    _add_source(engine, int(daily.get_column("events").sum()))
    with engine.connect() as conn:
        assert not summaries_current(conn)
        assert stale_days(conn, scan=False) == []  # nothing was marked...
        assert stale_days(conn, scan=True) == sorted(set(daily.get_column("day")))  # ...found
    assert ensure_usage_summaries(engine, now=5) == daily.get_column("day").n_unique()
    assert ensure_usage_summaries(engine, now=6) == 0
    assert _monthly_rows(engine) == _expected_monthly(daily)
    # Events counted by a source but in no day (pruned before days were tracked): one
    # scan proves every day exact, the rest is recorded, and no later run scans again.
    with engine.begin() as conn:
        conn.execute(update(sources).values(rows_accepted=sources.c.rows_accepted + 5))
        assert not summaries_current(conn)
    assert ensure_usage_summaries(engine, now=7) == 0
    with engine.connect() as conn:
        assert summaries_current(conn)
    assert _monthly_rows(engine) == _expected_monthly(daily)


def test_a_refresh_after_retention_keeps_the_history_of_pruned_days(engine: Engine) -> None:
    daily = _daily(random.Random(5), 300)
    _write_daily(engine, daily)
    _add_source(engine, int(daily.get_column("events").sum()))
    assert ensure_usage_summaries(engine, now=1) > 0
    cutoff = day_number(dt.date(2026, 1, 1))
    with engine.begin() as conn:  # as store.retention prunes: daily rows only
        conn.execute(delete(usage_daily).where(usage_daily.c.day < cutoff))
        assert summaries_current(conn)
        assert stale_days(conn, scan=True) == []  # pruned days are not "changed" days
        assert (
            rebuild_usage_summaries(conn, now=2)
            == daily.filter(pl.col("day") >= cutoff).get_column("day").n_unique()
        )
    assert _monthly_rows(engine) == _expected_monthly(daily)  # the pruned months included


def test_facts_match_a_plain_computation_including_a_look_back(
    engine: Engine, tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(
        db_url,
        tmp_path / "data",
        policy_yaml(
            "Visio",
            apps="VISIO.EXE, Microsoft Visio",
            extra="underuse: {min_minutes: 60, window_days: 45}",
        ),
    )
    ctx = open_store(settings)
    rng = random.Random(9)
    users = [f"u{i}@x.test" for i in range(12)]
    events = []
    for user in users:
        for _ in range(rng.randint(0, 40)):
            day = NOW.date() - dt.timedelta(days=rng.randint(1, 500))
            events.append(
                (
                    user,
                    rng.choice(["VISIO.EXE", "Microsoft Visio", "Teams"]),
                    day,
                    rng.choice([None, 60, 900]),
                )
            )
    import_usage(ctx.engine, tmp_path, events)
    import_group(ctx, tmp_path, "Visio", {u: dt.date(2024, 1, 1) for u in users})
    ensure_usage_summaries(ctx.engine, now=1)
    policy = settings.policies[0]
    for as_of in (NOW.date(), NOW.date() - dt.timedelta(days=75), dt.date(2025, 12, 31)):
        with ctx.engine.connect() as conn:
            pid = policy_id(conn, "Visio")
            assert pid is not None
            facts = load_facts(conn, [(policy, pid)], as_of=as_of)[0]
            apps = app_ids_by_policy(conn, [policy])["Visio"]
            months = active_months(conn, app_ids=apps, user_ids=facts.user_ids, as_of=as_of)
        lo = as_of - dt.timedelta(days=44)
        cols = facts.facts
        for uid, member, usage in zip(facts.user_ids, cols.members(), cols.usages(), strict=True):
            mine = [(a, d, s) for u, a, d, s in events if u == member.user and d <= as_of]
            used = [(d, s) for a, d, s in mine if a != "Teams"]
            seen = [d for _, d, _ in mine]
            assert usage.last_used == max((d for d, _ in used), default=None), member.user
            assert usage.last_observed == max(seen, default=None)
            assert usage.first_observed == min(seen, default=None)
            in_window = [s for d, s in used if d >= lo]
            if not in_window:
                assert usage.minutes_in_window == 0.0
            elif not any(in_window):
                assert usage.minutes_in_window is None  # used, but no durations reported
            else:
                assert usage.minutes_in_window == sum(s or 0 for s in in_window) / 60
            assert months.get(uid, 0) == month_bits([d for d, _ in used], as_of=as_of)
    ctx.engine.dispose()


def test_an_import_marks_its_days_and_the_next_decision_refreshes_just_those(
    tmp_path: Path, db_url: str
) -> None:
    ctx = open_store(make_settings(db_url, tmp_path / "data", policy_yaml("Visio")))
    first = [
        (f"u{i}@x.test", "VISIO.EXE", NOW.date() - dt.timedelta(days=d), 600)
        for i in range(3)
        for d in (40, 41, 70)
    ]
    import_usage(ctx.engine, tmp_path, first, name="first.csv")
    days = sorted({day_number(day) for _, _, day, _ in first})
    with ctx.engine.connect() as conn:
        assert not summaries_current(conn)
        assert stale_days(conn, scan=False) == days  # marked by the import, nothing else
    assert ensure_usage_summaries(ctx.engine, now=1) == len(days)
    # A second file adds to a day already summarized: only that day is refreshed again.
    again = [("u0@x.test", "VISIO.EXE", NOW.date() - dt.timedelta(days=40), 300)]
    import_usage(ctx.engine, tmp_path, again, name="second.csv")
    with ctx.engine.connect() as conn:
        assert stale_days(conn, scan=False) == [days[-1]]
    assert ensure_usage_summaries(ctx.engine, now=2) == 1
    with ctx.engine.connect() as conn:
        assert summaries_current(conn)
        total = conn.execute(select(func.sum(usage_monthly.c.seconds))).scalar()
    assert total == 9 * 600 + 300
    ctx.engine.dispose()
