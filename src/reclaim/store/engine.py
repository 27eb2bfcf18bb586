"""Building the database engine, the one place that knows SQLite from PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

#: Connection execution option marking a transaction that will write (see begin_write).
WRITE_OPTION = "reclaim_writes"


#: How long a SQLite writer waits for the write lock before "database is locked".
BUSY_TIMEOUT_MS = 30_000

#: SQLSTATEs of a transaction PostgreSQL rolled back to let another one through: a
#: deadlock, or a serialization failure. Running it again is safe and usually works.
_CONFLICT_STATES = frozenset({"40P01", "40001"})


def deadlocked(exc: BaseException) -> bool:
    """True when ``exc`` (a SQLAlchemy error) says the database rolled the transaction
    back to break a deadlock (or a serialization conflict) with another transaction."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _CONFLICT_STATES


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
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
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


class WriteBusy(Exception):
    """A write told not to wait found another writer at work (``wait=False``)."""


@contextmanager
def begin_write(engine: Engine, *, wait: bool = True) -> Iterator[Connection]:
    """A transaction that reads, then writes: like ``engine.begin()``, but on SQLite it
    takes the write lock at BEGIN (``BEGIN IMMEDIATE``).

    Why: a deferred transaction that read first cannot take the write lock once another
    writer has committed (SQLite answers "database is locked" at once; busy_timeout
    does not apply), whereas BEGIN IMMEDIATE waits its turn on busy_timeout. Other
    databases see a plain BEGIN.

    ``wait=False`` (SQLite): raise :class:`WriteBusy` at once, with nothing done, when
    another connection holds the write lock, instead of waiting up to busy_timeout;
    for callers that must not block (an event loop), which then wait elsewhere.
    """
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        raw = None if wait or not is_sqlite(engine) else conn.connection.driver_connection
        if raw is not None:
            raw.execute("PRAGMA busy_timeout=0")
        try:
            try:
                tx = conn.begin()
            except OperationalError as exc:
                if raw is not None and "locked" in str(exc.orig):
                    raise WriteBusy(str(exc.orig)) from None
                raise
            with tx:
                yield conn
        finally:
            if raw is not None:
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


# One lock per SQLite file for the threads of this process (see WritersTurn).
_TURNS: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


class WritersTurn:
    """On SQLite, the turn of one writer of a short write transaction; nothing on
    other databases. ``with writers_turn(engine):`` waits for it.

    Why: a writer that finds the SQLite lock taken sleeps in SQLite's busy handler for
    1, 2, 5 … up to 100 ms between polls, so under many concurrent short writers (the
    response page) a few wait far longer than the writes take. Here writers queue on
    locks that wake the next one the moment the turn is free: a thread lock within the
    process, then ``flock`` on ``<database>-writers.lock`` across processes (web
    workers of the same store). A holder only holds it around one transaction, which
    busy_timeout bounds, so a blocking wait cannot hang for good. The file is opened
    per turn: a descriptor inherited across ``fork`` would share its lock. The turn
    belongs to no thread: one thread may wait for it and another write and release
    (an event loop handing the wait to a worker thread).
    """

    def __init__(self, engine: Engine) -> None:
        self.database = (engine.url.database or "") if is_sqlite(engine) else None
        self._lock: threading.Lock | None = None
        self._fd: int | None = None

    def acquire(self, *, wait: bool = True) -> bool:
        """Take the turn; with ``wait=False`` return False at once if it is taken."""
        if self.database is None:
            return True
        lock = _TURNS[self.database]
        if not lock.acquire(blocking=wait):
            return False
        if not self.database or self.database == ":memory:":
            self._lock = lock
            return True
        fd = os.open(self.database + "-writers.lock", os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException as exc:
            os.close(fd)
            lock.release()
            if isinstance(exc, BlockingIOError):
                return False
            raise
        self._lock, self._fd = lock, fd
        return True

    def release(self) -> None:
        """Give the turn to the next writer."""
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> WritersTurn:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def writers_turn(engine: Engine) -> WritersTurn:
    """Wait for this writer's turn on SQLite (see :class:`WritersTurn`), as a context
    manager: ``with writers_turn(engine): ...``."""
    return WritersTurn(engine)
