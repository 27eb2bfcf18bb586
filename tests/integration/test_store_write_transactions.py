"""SQLite write transactions (``store.engine.begin_write``): writers queue, readers do not.

A transaction that reads, then writes, began DEFERRED fails at once with "database is
locked" when another writer committed in between; ``begin_write`` begins IMMEDIATE so
the second writer waits its turn. Plain reads must stay deferred: they never wait for a
writer in WAL mode.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import Engine, text

from reclaim.store.engine import begin_write, make_engine


def _counter(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    return engine


def _increment(engine: Engine, *, hold: float, started: threading.Event | None = None) -> None:
    """Read the counter, wait ``hold`` seconds, write it back plus one."""
    with begin_write(engine) as conn:
        n = conn.execute(text("SELECT n FROM counter")).scalar_one()
        if started is not None:
            started.set()
        time.sleep(hold)
        conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})


def test_two_read_then_write_transactions_queue_and_lose_no_update(tmp_path: Path) -> None:
    engine = _counter(tmp_path)
    started = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            _increment(engine, hold=0.3, started=started)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(5)
    _increment(engine, hold=0)  # begins while the first holds the write lock: waits
    thread.join(10)
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 2
    engine.dispose()


def test_a_read_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    engine = _counter(tmp_path)
    started = threading.Event()
    thread = threading.Thread(target=lambda: _increment(engine, hold=1.0, started=started))
    thread.start()
    assert started.wait(5)
    t0 = time.monotonic()
    with engine.connect() as conn:
        seen = conn.execute(text("SELECT n FROM counter")).scalar_one()
    waited = time.monotonic() - t0
    thread.join(10)
    assert seen == 0  # the writer's snapshot is not visible until it commits
    assert waited < 0.5, f"a plain read waited {waited:.2f} s for the writer"
    engine.dispose()
