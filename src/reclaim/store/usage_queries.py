"""Reading usage back: per member of a policy, last use, minutes in a window, last seen.

Days are integers (days since 1970-01-01, UTC) as stored; callers convert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from reclaim.domain.names import app_key
from reclaim.store.tables import apps, memberships, usage_daily, usage_latest, usage_observed, users

EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    """A date as stored: days since 1970-01-01."""
    return (d - EPOCH).days


def day_date(n: int) -> dt.date:
    """A stored day number back to a date."""
    return EPOCH + dt.timedelta(days=n)


def month_number(d: dt.date) -> int:
    """A date's month as stored in usage_observed: year * 12 + month - 1."""
    return d.year * 12 + d.month - 1


@dataclass(frozen=True)
class MemberUsage:
    """One member of a policy's group with what the store knows of their use."""

    user: str
    granted_at: int | None
    granted_source: str
    last_used: dt.date | None
    seconds_in_window: int
    last_observed: dt.date | None

    @property
    def minutes_in_window(self) -> float:
        """Use within the window, in minutes."""
        return round(self.seconds_in_window / 60, 1)


def app_ids_for(conn: Connection, names: Iterable[str]) -> list[int]:
    """Ids of the stored apps whose key matches any of ``names`` (aliases included)."""
    keys = sorted({app_key(n) for n in names})
    return [int(r[0]) for r in conn.execute(select(apps.c.id).where(apps.c.key.in_(keys)))]


def _chunks(ids: list[int], size: int = 900) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def last_observed(conn: Connection, user_ids: list[int], as_of: dt.date) -> dict[int, dt.date]:
    """The last day on or before ``as_of`` each user was seen by any source."""
    as_of_n, as_of_m = day_number(as_of), month_number(as_of)
    best: dict[int, int] = {}
    for part in _chunks(user_ids):
        rows = conn.execute(
            select(
                usage_observed.c.user_id,
                usage_observed.c.month,
                usage_observed.c.days_mask,
                usage_observed.c.last_day,
            ).where(usage_observed.c.user_id.in_(part), usage_observed.c.month <= as_of_m)
        )
        for uid, month, mask, last in rows:
            if month == as_of_m and last > as_of_n:
                # Only the bits up to as_of count: drop later days of this month.
                mask &= (1 << as_of.day) - 1
                if not mask:
                    continue
                last = day_number(dt.date(month // 12, month % 12 + 1, mask.bit_length()))
            if last > best.get(uid, -1):
                best[uid] = last
    return {uid: day_date(d) for uid, d in best.items()}


def member_usage(
    conn: Connection, *, policy_id: int, app_names: Iterable[str], as_of: dt.date, window_days: int
) -> list[MemberUsage]:
    """Every active member of the policy with last use, use within the window, last seen."""
    app_list = app_ids_for(conn, app_names)
    members = conn.execute(
        select(users.c.id, users.c.upn, memberships.c.granted_at, memberships.c.granted_source)
        .join(users, users.c.id == memberships.c.user_id)
        .where(memberships.c.policy_id == policy_id, memberships.c.active.is_(True))
        .order_by(users.c.upn)
    ).all()
    ids = [int(m.id) for m in members]
    hi = day_number(as_of)
    lo = hi - window_days + 1
    last: dict[int, int] = {}
    secs: dict[int, int] = {}
    if app_list and ids:
        for part in _chunks(ids):
            late: list[int] = []
            for uid, day in conn.execute(
                select(usage_latest.c.user_id, func.max(usage_latest.c.last_day))
                .where(usage_latest.c.app_id.in_(app_list), usage_latest.c.user_id.in_(part))
                .group_by(usage_latest.c.user_id)
            ):
                if day <= hi:
                    last[uid] = day
                else:
                    late.append(uid)  # used after as_of: find the last use on or before it
            if late:
                for uid, day in conn.execute(
                    select(usage_daily.c.user_id, func.max(usage_daily.c.day))
                    .where(
                        usage_daily.c.app_id.in_(app_list),
                        usage_daily.c.user_id.in_(late),
                        usage_daily.c.day <= hi,
                    )
                    .group_by(usage_daily.c.user_id)
                ):
                    last[uid] = day
            for uid, total in conn.execute(
                select(usage_daily.c.user_id, func.sum(usage_daily.c.seconds))
                .where(
                    usage_daily.c.day.between(lo, hi),
                    usage_daily.c.app_id.in_(app_list),
                    usage_daily.c.user_id.in_(part),
                )
                .group_by(usage_daily.c.user_id)
            ):
                secs[uid] = int(total)
    seen = last_observed(conn, ids, as_of)
    return [
        MemberUsage(
            user=m.upn,
            granted_at=m.granted_at,
            granted_source=m.granted_source,
            last_used=day_date(last[m.id]) if m.id in last else None,
            seconds_in_window=secs.get(m.id, 0),
            last_observed=seen.get(m.id),
        )
        for m in members
    ]
