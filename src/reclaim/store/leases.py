"""Named leases for scheduler ticks, and the shared controls (the kill switch).

A scheduler tick runs once whichever worker gets there first: a worker claims
``cycle:<policy>`` for a cron time with one atomic statement (an ``INSERT … ON
CONFLICT DO NOTHING`` the first time, then an ``UPDATE … WHERE`` the tick is not done
and no live lease holds it). Works the same on SQLite with several processes and on
PostgreSQL with several machines. A worker that dies mid-cycle leaves a lease that runs
out, and the next worker runs that tick again (a cycle is safe to repeat).
"""

from __future__ import annotations

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.store.tables import controls, leases

PAUSED = "paused"


def _dialect(conn: Connection) -> object:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


def claim_tick(conn: Connection, name: str, *, tick: int, owner: str, now: int, ttl: int) -> bool:
    """Claim cron time ``tick`` of lease ``name`` for ``owner``; True if this call won.

    Refused when that tick (or a later one) is done, or another owner's lease is live.
    """
    ins = _dialect(conn).insert(leases)  # type: ignore[attr-defined]
    inserted = conn.execute(
        ins.values(
            name=name, owner=owner, until=now + ttl, tick_claimed=tick, tick_done=-1
        ).on_conflict_do_nothing(index_elements=["name"])
    )
    if inserted.rowcount == 1:
        return True
    won = conn.execute(
        update(leases)
        .where(
            leases.c.name == name,
            leases.c.tick_done < tick,
            or_(leases.c.owner.is_(None), leases.c.until < now, leases.c.owner == owner),
        )
        .values(owner=owner, until=now + ttl, tick_claimed=tick)
    )
    return won.rowcount == 1


def finish_tick(conn: Connection, name: str, *, tick: int, owner: str) -> None:
    """Mark ``tick`` done and release the lease (only if ``owner`` still holds it)."""
    conn.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.owner == owner)
        .values(owner=None, tick_done=tick)
    )


def tick_done(conn: Connection, name: str) -> int | None:
    """The last cron time completed for ``name``, if any."""
    found = conn.execute(select(leases.c.tick_done).where(leases.c.name == name)).scalar()
    return None if found is None or found < 0 else int(found)


def set_control(conn: Connection, key: str, value: str, *, by: str, now: int) -> None:
    """Set a shared control value."""
    stmt = _dialect(conn).insert(controls)  # type: ignore[attr-defined]
    conn.execute(
        stmt.values(key=key, value=value, updated=now, updated_by=by).on_conflict_do_update(
            index_elements=["key"],
            set_={"value": value, "updated": now, "updated_by": by},
        )
    )


def get_control(conn: Connection, key: str) -> tuple[str, int, str] | None:
    """(value, updated, updated_by) of a shared control, or None when never set."""
    row = conn.execute(
        select(controls.c.value, controls.c.updated, controls.c.updated_by).where(
            controls.c.key == key
        )
    ).first()
    return None if row is None else (str(row[0]), int(row[1]), str(row[2]))


def paused_in_store(conn: Connection) -> bool:
    """Whether ``reclaim pause`` is in force (the config's ``safety.paused`` is separate)."""
    found = get_control(conn, PAUSED)
    return found is not None and found[0] == "1"
