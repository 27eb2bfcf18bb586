"""When a message may be sent: not at night, and (optionally) not at the weekend.

An ask that lands at 23:00 on a Saturday is read on Monday under forty other mails, or
wakes someone's phone. :func:`next_allowed_send_time` is pure: the runner passes ``now``
and the person's time zone and gets back the first instant at or after ``now`` that is
outside quiet hours, so the send is simply scheduled for then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from zoneinfo import ZoneInfo

SATURDAY, SUNDAY = 5, 6
WEEKEND: frozenset[int] = frozenset({SATURDAY, SUNDAY})


def _quiet_at(
    local: dt.datetime, *, start: dt.time, end: dt.time, weekend: Collection[int]
) -> bool:
    if local.weekday() in weekend:
        return True
    t = local.time().replace(tzinfo=None)
    if start == end:  # an empty window: no quiet hours
        return False
    if start < end:  # e.g. 12:00-13:00 on the same day
        return start <= t < end
    return t >= start or t < end  # wraps midnight, e.g. 19:00-08:00


def _at_local(day: dt.date, time: dt.time, tz: ZoneInfo) -> dt.datetime:
    """``day`` at wall-clock ``time`` in ``tz``; a time skipped by a DST jump moves on."""
    naive = dt.datetime.combine(day, time.replace(tzinfo=None))
    aware = naive.replace(tzinfo=tz)
    # A wall time in the spring-forward gap does not exist: the round trip through UTC
    # lands on the first real instant after it.
    return aware.astimezone(dt.UTC).astimezone(tz)


def next_allowed_send_time(
    now: dt.datetime,
    tz: str | ZoneInfo,
    quiet_start: dt.time,
    quiet_end: dt.time,
    skip_weekends: bool,
    *,
    weekend: Collection[int] = WEEKEND,
) -> dt.datetime:
    """The first instant at or after ``now`` outside quiet hours in ``tz``.

    Quiet hours run from ``quiet_start`` to ``quiet_end`` in the person's local time and
    may wrap midnight (19:00-08:00). With ``skip_weekends``, the ``weekend`` days
    (Saturday and Sunday unless given: ``date.weekday()`` numbers) are quiet all day.
    Returns ``now`` itself (in ``tz``) when sending is allowed already. ``now`` must be
    timezone-aware.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    days_off = frozenset(weekend) if skip_weekends else frozenset()
    if len(days_off) >= 7:
        raise ValueError("every day of the week is a weekend day: nothing could ever be sent")
    local = now.astimezone(zone)
    if not _quiet_at(local, start=quiet_start, end=quiet_end, weekend=days_off):
        return local
    # Candidates are "quiet_end on some day" (the moment quiet hours end) and "midnight"
    # (a weekend ending when there are no night hours); the first one that is after now
    # and not quiet wins. Eight days always reach a working day.
    ends = [quiet_end] if quiet_start != quiet_end else []
    for offset in range(9):
        day = local.date() + dt.timedelta(days=offset)
        for wall in sorted({*ends, dt.time(0, 0)}):
            candidate = _at_local(day, wall, zone)
            if candidate > local and not _quiet_at(
                candidate, start=quiet_start, end=quiet_end, weekend=days_off
            ):
                return candidate
    raise AssertionError("unreachable: a non-quiet instant exists within nine days")
