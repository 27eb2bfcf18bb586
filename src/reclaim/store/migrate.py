"""Schema migrations with Alembic, driven from code (no alembic.ini to find)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from reclaim.store.engine import is_sqlite


class SchemaBehind(Exception):
    """The database schema is older than this version of Reclaim expects."""


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "reclaim.store:migrations")
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    assert head is not None  # at least one migration always exists
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the database to the newest schema; returns (before, after)."""
    before = current_revision(engine)
    command.upgrade(_alembic_config(engine), "head")
    return before, head_revision(engine)


def ensure_schema(engine: Engine, *, auto_upgrade: bool | None = None) -> None:
    """Make sure the schema is current before anything reads or writes.

    An embedded SQLite store is upgraded automatically (one process owns it). A
    PostgreSQL store shared by several processes is only upgraded on purpose,
    by ``reclaim db upgrade``: a worker must not migrate the schema under another.
    """
    current = current_revision(engine)
    head = head_revision(engine)
    if current == head:
        return
    if auto_upgrade is None:
        auto_upgrade = is_sqlite(engine)
    if auto_upgrade:
        upgrade(engine)
        return
    state = "empty" if current is None else f"at revision {current}"
    raise SchemaBehind(
        f"the database schema is {state}, this version of Reclaim needs {head}: "
        "run 'reclaim db upgrade' (back the database up first)"
    )
