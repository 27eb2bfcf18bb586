"""Last use and seconds of use in a window, per (user, app), from the usage summaries.

Seconds over ``lo..hi`` come from ``usage_monthly`` alone: whole months from its
``seconds`` column, the partial months at the window's edges from its per-day columns
(:func:`window_sum_sql`), with one index seek per (user, app) driven by
``usage_latest``. No daily roll-up is read, whatever the window. The rows come back
as integer arrays (:class:`PairUsage`), not a tuple per pair.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
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


Ints = npt.NDArray[np.int64]
NO_MONTH = -1  # "no month of use on or before as_of" in pair_usage's packed column


class PairUsage(NamedTuple):
    """Per (app, user) with any use on or before ``hi``: the last day of use on or before
    ``hi`` and the seconds of use within ``lo..hi``. Arrays sorted by app, then user (a
    run reads a hundred thousand pairs: arrays, not a tuple each)."""

    app_ids: Ints
    user_ids: Ints
    last_days: Ints
    seconds: Ints

    def of_app(self, app_id: int) -> tuple[Ints, Ints, Ints]:
        """This app's (user ids, last days, seconds), by user id."""
        lo, hi = np.searchsorted(self.app_ids, [app_id, app_id + 1]).tolist()
        return self.user_ids[lo:hi], self.last_days[lo:hi], self.seconds[lo:hi]


def int_rows(rows: list[Any], width: int) -> Ints:
    """Rows of ``width`` integers (no NULL) as a 2-D array, without a Python-level loop."""
    flat = np.fromiter(chain.from_iterable(rows), np.int64, count=len(rows) * width)
    return flat.reshape(len(rows), width)


def month_starts(months: Ints) -> Ints:
    """The first day number of each month (``year * 12 + month - 1``) of ``months``."""
    distinct, where = np.unique(months, return_inverse=True)
    starts = np.array([month_bounds(m)[0] for m in distinct.tolist()], np.int64)
    return starts[where.reshape(-1)]


def bit_lengths(values: Ints) -> Ints:
    """``int.bit_length`` of each non-negative value below 2**53 (exact in a float)."""
    return np.frexp(values.astype(np.float64))[1].astype(np.int64)


def pair_usage(conn: Connection, app_ids: Sequence[int], *, lo: int, hi: int) -> PairUsage:
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
            # Integers only (no NULL): the rows go straight into an array.
            "SELECT l.user_id, l.app_id, l.last_day, COALESCE(CASE WHEN l.last_day >= :lo "
            f"THEN (SELECT CAST(SUM({expr}) AS BIGINT) FROM usage_monthly m "
            "WHERE m.user_id = l.user_id AND m.app_id = l.app_id "
            "AND m.month BETWEEN :m0 AND :m1) END, 0), "
            # Used after as_of (a look back in time): the last month of use on or
            # before it and that month's day bits, packed as month * 2**32 + bits.
            "COALESCE(CASE WHEN l.last_day > :hi THEN (SELECT m.month * 4294967296 + CASE "
            "WHEN m.month = :top THEN m.days_mask & :keep ELSE m.days_mask END "
            "FROM usage_monthly m WHERE m.user_id = l.user_id AND m.app_id = l.app_id "
            "AND (m.month < :top OR (m.month = :top AND (m.days_mask & :keep) != 0)) "
            f"ORDER BY m.month DESC LIMIT 1) END, {NO_MONTH}) "
            f"FROM usage_latest l WHERE l.app_id IN ({in_apps})"
        ),
        {**params, "lo": lo, "hi": hi, "top": top, "keep": (1 << as_of.day) - 1},
    )
    a = int_rows(rows, 5)
    uid, aid, last, secs, before = (a[:, i] for i in range(5))
    later = last > hi
    if later.any():
        # The last day on or before hi: the last month of use's first day plus its
        # highest day bit; pairs first used after hi are left out.
        keep = ~later | (before != NO_MONTH)
        uid, aid, last, secs, before, later = (
            c[keep] for c in (uid, aid, last, secs, before, later)
        )
        month, bits = before[later] >> 32, before[later] & 0xFFFFFFFF
        last = last.copy()
        last[later] = month_starts(month) + bit_lengths(bits) - 1
    order = np.lexsort((uid, aid))
    return PairUsage(aid[order], uid[order], last[order], secs[order])
