"""Building the database engine, the one place that knows SQLite from PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

#: Connection execution option marking a transaction that will write (see begin_write).
WRITE_OPTION = "reclaim_writes"


def is_sqlite(engine: Engine) -> bool:
    """True when the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for ``url``; for SQLite, create its folder and set WAL mode.

    SQLite settings, and why: WAL lets readers (the web app) run while the importer
    writes; ``synchronous=NORMAL`` is durable across application crashes in WAL mode;
    ``busy_timeout`` makes a second writer wait instead of failing at once.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is switched off so that SQLAlchemy's
            # BEGIN is the one that counts (see SQLAlchemy's "Serializable isolation /
            # Savepoints / Transactional DDL" notes for pysqlite).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # 16 MiB of page cache: merges into large roll-up tables thrash the 2 MiB
            # default; more bought no speed on time-ordered imports, only memory.
            cur.execute("PRAGMA cache_size=-16384")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE only when the caller said it will write: SQLAlchemy begins every
            # transaction, reads included, through here, and an IMMEDIATE read would
            # queue behind an import's long write.
            writes = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """A transaction that reads, then writes: like ``engine.begin()``, but on SQLite it
    takes the write lock at BEGIN (``BEGIN IMMEDIATE``).

    Why: a deferred transaction that read first cannot take the write lock once another
    writer has committed (SQLite answers "database is locked" at once; busy_timeout
    does not apply), whereas BEGIN IMMEDIATE waits its turn on busy_timeout. Other
    databases see a plain BEGIN.
    """
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn
