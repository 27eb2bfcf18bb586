"""Migrations build the schema from empty on SQLite and PostgreSQL, matching the tables."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reclaim.store.engine import make_engine
from reclaim.store.migrate import (
    SchemaBehind,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from reclaim.store.tables import metadata


def test_upgrade_from_empty_matches_table_definitions(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    before, after = upgrade(engine)
    assert (before, after) == (None, head_revision(engine))
    with engine.connect() as conn:
        drift = compare_metadata(MigrationContext.configure(conn), metadata)
    assert drift == []
    assert upgrade(engine) == (after, after)  # a second upgrade is a no-op


def test_sqlite_store_upgrades_itself(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'reclaim.db'}")
    ensure_schema(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.postgres
def test_postgres_store_behind_is_refused_with_instructions(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with pytest.raises(SchemaBehind, match=r"schema is empty.*run 'reclaim db upgrade'"):
        ensure_schema(engine)
    upgrade(engine)
    ensure_schema(engine)  # now current: no error
