"""Building what the CLI and the web app need, in one place, only when asked.

Nothing here runs at import time: no engine, no settings, no network (ARCHITECTURE.md
convention 9).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from reclaim.config import Settings, load_settings
from reclaim.store.engine import make_engine
from reclaim.store.migrate import ensure_schema
from reclaim.store.policies import sync_policies


@dataclass
class Context:
    """Settings and the store, ready to use."""

    settings: Settings
    engine: Engine

    def imports_dir(self) -> Path:
        """Where import summaries and rejects files are written."""
        return self.settings.resolved_data_dir() / "imports"


def open_context(
    config: Path | None = None, *, settings: Settings | None = None, now: dt.datetime
) -> Context:
    """Load settings (unless given), open the store, bring the schema and policies up to date."""
    settings = settings or load_settings(config, check_secrets=False)
    engine = make_engine(settings.database_url(), echo=settings.database.echo)
    ensure_schema(engine)
    with engine.begin() as conn:
        sync_policies(conn, settings.policies, now=int(now.timestamp()))
    return Context(settings=settings, engine=engine)
