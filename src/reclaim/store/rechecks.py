"""The last-moment usage re-check's read, for many users at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from reclaim.store.tables import usage_latest
from reclaim.store.usage_window import EPOCH


def last_uses(
    conn: Connection, *, app_ids: Sequence[int], user_ids: Sequence[int]
) -> dict[int, dt.date]:
    """User id → the latest day the store knows they used any of ``app_ids``; users
    with no recorded use are absent. :func:`reclaim.store.facts.last_use`, batched."""
    found: dict[int, dt.date] = {}
    if not app_ids or not user_ids:
        return found
    for i in range(0, len(user_ids), 900):
        chunk = list(user_ids[i : i + 900])
        rows = conn.execute(
            select(usage_latest.c.user_id, func.max(usage_latest.c.last_day))
            .where(usage_latest.c.user_id.in_(chunk), usage_latest.c.app_id.in_(list(app_ids)))
            .group_by(usage_latest.c.user_id)
        )
        for user_id, day in rows:
            if day is not None:
                found[int(user_id)] = EPOCH + dt.timedelta(days=int(day))
    return found
