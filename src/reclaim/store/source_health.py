"""Per usage source: when it last delivered, how much, whom it observed, and if it is stale.

A source that goes quiet leaves its users without recent observations, and the
verdicts then say ``no_data`` for them after the freshness window: nobody is judged on
a silent source. This module says *which* source went quiet, for ``reclaim usage
sources`` (and, later, the dashboard).

A source is **stale** when nothing arrived from it within the freshness window, or
when what arrived observes no day within it (a source replaying old data is no fresher
than a silent one); **never** when it has not delivered anything yet.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from reclaim.store.source_state import all_counters
from reclaim.store.tables import sources, usage_observed
from reclaim.store.usage_queries import day_date, day_number, month_number


@dataclass(frozen=True)
class SourceHealth:
    """One source's figures as of a moment."""

    name: str
    kind: str
    last_received: dt.datetime | None
    rows_accepted: int  # usage events
    rows_rejected: int
    observations: int  # rows that only said a user was seen (heartbeats, sign-ins)
    repeats: int  # moments of use reported again, recorded once
    users_observed: int  # distinct users seen within the freshness window
    last_observed: dt.date | None  # the latest day any user was seen by this source
    status: str  # fresh | stale | never

    @property
    def stale(self) -> bool:
        """Whether this source needs attention."""
        return self.status != "fresh"


def _window_bits(month: int, lo: int, hi: int) -> int:
    """The days_mask bits of ``month`` that fall within day numbers ``lo..hi``."""
    first = day_number(dt.date(month // 12, month % 12 + 1, 1))
    start, end = max(lo - first, 0), min(hi - first, 30)
    if end < start:
        return 0
    return ((1 << (end + 1)) - 1) & ~((1 << start) - 1)


def source_health(conn: Connection, *, now: dt.datetime, freshness_days: int) -> list[SourceHealth]:
    """Every source, by name, with its status under a ``freshness_days`` window."""
    today = now.astimezone(dt.UTC).date()
    hi = day_number(today)
    lo = hi - freshness_days  # the Evaluator's cutoff: observed on or after it is fresh
    m_lo, m_hi = month_number(day_date(lo)), month_number(today)
    users: dict[int, set[int]] = defaultdict(set)
    last_day: dict[int, int] = {}
    rows = conn.execute(
        select(
            usage_observed.c.source_id,
            usage_observed.c.user_id,
            usage_observed.c.month,
            usage_observed.c.days_mask,
        ).where(usage_observed.c.month >= m_lo, usage_observed.c.month <= m_hi)
    )
    for src, uid, month, mask in rows:
        if int(mask) & _window_bits(int(month), lo, hi):
            users[int(src)].add(int(uid))
    for src, last in conn.execute(
        select(usage_observed.c.source_id, func.max(usage_observed.c.last_day)).group_by(
            usage_observed.c.source_id
        )
    ):
        last_day[int(src)] = int(last)
    counters = all_counters(conn)
    out = []
    cutoff = int(now.timestamp()) - freshness_days * 86_400
    for s in conn.execute(select(sources).order_by(sources.c.name)):
        seen = last_day.get(int(s.id))
        if s.last_received is None:
            status = "never"
        elif s.last_received < cutoff or seen is None or seen < lo:
            status = "stale"
        else:
            status = "fresh"
        tallies = counters.get(int(s.id), {})
        out.append(
            SourceHealth(
                name=s.name,
                kind=s.kind,
                last_received=dt.datetime.fromtimestamp(s.last_received, dt.UTC)
                if s.last_received is not None
                else None,
                rows_accepted=int(s.rows_accepted),
                rows_rejected=int(s.rows_rejected),
                observations=tallies.get("observations", 0),
                repeats=tallies.get("repeats", 0),
                users_observed=len(users.get(int(s.id), ())),
                last_observed=day_date(seen) if seen is not None else None,
                status=status,
            )
        )
    return out
