"""Small JSON values a usage source keeps between runs (the ``source_state`` table).

Written in the same transaction as the usage they describe, so a watched log's offset
or a Graph pull's watermark can never run ahead of (or lag behind) what was stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.store.identity_tables import source_state

COUNTERS = "counters"  # per-source tallies the sources table has no column for


def get_state(conn: Connection, source_id: int, key: str) -> dict[str, Any] | None:
    """The value stored under ``key`` for this source, or None."""
    row = conn.execute(
        select(source_state.c.value).where(
            source_state.c.source_id == source_id, source_state.c.key == key
        )
    ).first()
    return None if row is None else dict(json.loads(row[0]))


def put_state(
    conn: Connection, source_id: int, key: str, value: Mapping[str, Any], *, now: int
) -> None:
    """Store ``value`` under ``key`` for this source (replacing what was there)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    text = json.dumps(dict(value), sort_keys=True)
    stmt = dialect.insert(source_state).values(
        source_id=source_id, key=key, value=text, updated=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["source_id", "key"], set_={"value": text, "updated": now}
        )
    )


def add_counters(conn: Connection, source_id: int, counts: Mapping[str, int], *, now: int) -> None:
    """Add ``counts`` to the source's running tallies (observations, repeats, …)."""
    current = get_state(conn, source_id, COUNTERS) or {}
    for name, n in counts.items():
        current[name] = int(current.get(name, 0)) + int(n)
    put_state(conn, source_id, COUNTERS, current, now=now)


def all_counters(conn: Connection) -> dict[int, dict[str, int]]:
    """source id → tallies, for every source that has any."""
    rows = conn.execute(
        select(source_state.c.source_id, source_state.c.value).where(source_state.c.key == COUNTERS)
    )
    return {int(sid): {k: int(v) for k, v in json.loads(value).items()} for sid, value in rows}
