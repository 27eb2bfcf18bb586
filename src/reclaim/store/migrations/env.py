"""Alembic environment: the engine comes from Reclaim's own code, never from a URL here."""

from __future__ import annotations

from alembic import context

from reclaim.store.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=engine.dialect.name == "sqlite",  # SQLite can't ALTER most things
    )
    context.run_migrations()
