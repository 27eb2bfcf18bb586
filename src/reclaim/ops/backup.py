"""``reclaim db backup``: a consistent copy of the SQLite store while it is in use.

SQLite's online backup API copies page by page under the database's own locking, so
workers and the web app can keep running. PostgreSQL stores are backed up with the
database's own tools (``pg_dump``; see docs/operations.md), not by Reclaim.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

PAGES_PER_STEP = 1024  # ~4 MiB a step: other writers get the lock between steps


class BackupError(Exception):
    """The backup could not be made; the message says why and what to do."""


def sqlite_path(engine: Engine) -> Path:
    """The database file of a SQLite engine (BackupError for anything else)."""
    if engine.dialect.name != "sqlite":
        raise BackupError(
            f"'reclaim db backup' copies SQLite stores; this store is {engine.dialect.name}: "
            "use pg_dump (see docs/operations.md)"
        )
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("the SQLite store is in memory: there is no file to back up")
    return Path(database)


def backup_sqlite(
    engine: Engine, target: Path, *, progress: Callable[[int, int], None] | None = None
) -> int:
    """Copy the store to ``target`` (which must not exist); returns its size in bytes.

    The copy is written to ``target`` + ``.partial`` and renamed when complete, so a
    failed backup never leaves a file that looks whole. ``progress(done, total)``
    receives page counts.
    """
    source = sqlite_path(engine)
    if target.exists():
        raise BackupError(f"{target}: already exists; choose a new file name")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent}: no such directory")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source)  # not mode=ro: reading a WAL store may need its -shm
    dst = sqlite3.connect(partial)
    try:
        src.backup(
            dst,
            pages=PAGES_PER_STEP,
            progress=(lambda _status, remaining, total: progress(total - remaining, total))
            if progress
            else None,
        )
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{target}: the copy failed its integrity check ({check})")
    except sqlite3.Error as exc:
        raise BackupError(f"{target}: {exc}") from exc
    finally:
        dst.close()
        src.close()
    partial.replace(target)
    return target.stat().st_size
