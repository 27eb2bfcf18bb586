"""Watching PostgreSQL sessions from a test (for tests that provoke lock waits)."""

from __future__ import annotations

from sqlalchemy import Engine, text


def waiting_for_a_lock(engine: Engine) -> bool:
    """Whether any session of this engine's database is waiting for a lock right now."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar()
        )
