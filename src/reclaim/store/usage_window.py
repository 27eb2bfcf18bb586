"""Last use and seconds of use in a window, per (user, app), from the usage summaries.

Seconds over ``lo..hi`` come from ``usage_monthly`` alone: whole months from its
``seconds`` column, the partial months at the window's edges from its per-day columns
(:func:`window_sum_sql`), with one index seek per (user, app) driven by
``usage_latest``. No daily roll-up is read, whatever the window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from reclaim.domain.usage import month_index
from reclaim.store.tables import DAY_COLUMNS
from reclaim.store.usage_queries import day_number

EPOCH = dt.date(1970, 1, 1)
CHUNK = 900  # ids per IN list: below SQLite's oldest 999-parameter limit


def fetch(conn: Connection, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
    """All rows as plain DB-API tuples.

    Skips SQLAlchemy's per-row Result processing, which costs more than the query
    itself on the 100,000-row reads decisions make; only ints and strings are read.
    """
    result: Any = conn.execute(statement, params or {})
    return list(result.cursor.fetchall())


def month_bounds(month: int) -> tuple[int, int]:
    """First and last day number of a month given as ``year * 12 + month - 1``."""
    first = dt.date(month // 12, month % 12 + 1, 1)
    nxt = dt.date((month + 1) // 12, (month + 1) % 12 + 1, 1)
    return day_number(first), day_number(nxt) - 1


def _days_expr(first: int, last: int) -> str:
    """Seconds on days ``first..last`` of a month (1-based), with the fewest terms:
    the days themselves, or the month's total minus the other days."""
    inside = DAY_COLUMNS[first - 1 : last]
    outside = DAY_COLUMNS[: first - 1] + DAY_COLUMNS[last:]
    if not outside:
        return "m.seconds"
    if len(inside) <= len(outside) + 1:
        return "(" + " + ".join(f"m.{c}" for c in inside) + ")"
    return "(m.seconds - " + " - ".join(f"m.{c}" for c in outside) + ")"


def window_sum_sql(lo: int, hi: int) -> tuple[str, dict[str, int]]:
    """A SQL expression over ``usage_monthly m`` rows of months ``m0..m1`` whose SUM is
    the seconds on days ``lo..hi``, with its parameters."""
    first = EPOCH + dt.timedelta(days=lo)
    last = EPOCH + dt.timedelta(days=hi)
    m0, m1 = month_index(first), month_index(last)
    if m0 == m1:
        return _days_expr(first.day, last.day), {"m0": m0, "m1": m1}
    # Days past a month's end are always 0, so "to day 31" is "to the end of the month".
    expr = (
        f"CASE m.month WHEN :m0 THEN {_days_expr(first.day, 31)} "
        f"WHEN :m1 THEN {_days_expr(1, last.day)} ELSE m.seconds END"
    )
    return expr, {"m0": m0, "m1": m1}


Pairs = dict[int, dict[int, tuple[int, int]]]  # app → user → (last day, seconds in window)


def pair_usage(conn: Connection, app_ids: Sequence[int], *, lo: int, hi: int) -> Pairs:
    """Per app of ``app_ids`` and user with any use of it on or before ``hi``: the last
    day of use on or before ``hi`` and the seconds of use within ``lo..hi``."""
    expr, params = window_sum_sql(lo, hi)
    as_of = EPOCH + dt.timedelta(days=hi)
    top = month_index(as_of)
    in_apps = ",".join(str(int(a)) for a in app_ids)
    rows = fetch(
        conn,
        text(
            # One index seek per pair, and none for pairs unused since the window began.
            "SELECT l.user_id, l.app_id, l.last_day, CASE WHEN l.last_day >= :lo THEN "
            f"(SELECT SUM({expr}) FROM usage_monthly m WHERE m.user_id = l.user_id "
            "AND m.app_id = l.app_id AND m.month BETWEEN :m0 AND :m1) ELSE 0 END, "
            # Used after as_of (a look back in time): the last month of use on or
            # before it and that month's day bits, packed as month * 2**32 + bits.
            "CASE WHEN l.last_day > :hi THEN (SELECT m.month * 4294967296 + CASE WHEN "
            "m.month = :top THEN m.days_mask & :keep ELSE m.days_mask END "
            "FROM usage_monthly m WHERE m.user_id = l.user_id AND m.app_id = l.app_id "
            "AND (m.month < :top OR (m.month = :top AND (m.days_mask & :keep) != 0)) "
            "ORDER BY m.month DESC LIMIT 1) END "
            f"FROM usage_latest l WHERE l.app_id IN ({in_apps})"
        ),
        {**params, "lo": lo, "hi": hi, "top": top, "keep": (1 << as_of.day) - 1},
    )
    pairs: Pairs = {int(a): {} for a in app_ids}
    starts: dict[int, int] = {}
    for uid, aid, last, secs, before in rows:
        if last > hi:
            if before is None:
                continue  # first used after as_of
            month, bits = divmod(before, 1 << 32)
            start = starts.get(month)
            if start is None:
                start = starts[month] = month_bounds(month)[0]
            last = start + bits.bit_length() - 1
        pairs[aid][uid] = (last, secs or 0)
    return pairs
