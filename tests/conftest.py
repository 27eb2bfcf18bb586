"""Shared fixtures: a migrated store on SQLite and on the private PostgreSQL.

scripts/test.sh starts PostgreSQL and exports RECLAIM_TEST_PG_URL. Without it the
PostgreSQL variants skip and say so — except under CI (or RECLAIM_REQUIRE_PEERS=1),
where a missing peer is a failure: a green run must not hide an untested database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade

PG_URL_ENV = "RECLAIM_TEST_PG_URL"


def peers_required() -> bool:
    """True when missing test peers must fail the run instead of skipping."""
    return os.environ.get("CI") == "true" or os.environ.get("RECLAIM_REQUIRE_PEERS") == "1"


def _pg_admin_url() -> str:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        message = f"PostgreSQL not started: {PG_URL_ENV} is unset (run bash scripts/test.sh)"
        if peers_required():
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    admin_url = _pg_admin_url()
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database of each kind Reclaim supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reclaim.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated store on each supported database."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()
