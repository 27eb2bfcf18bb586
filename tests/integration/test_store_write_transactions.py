"""SQLite write transactions (``store.engine.begin_write``): writers queue, readers do not;
and the writers' turn (``store.engine.writers_turn``) across threads and processes.

A transaction that reads, then writes, began DEFERRED fails at once with "database is
locked" when another writer committed in between; ``begin_write`` begins IMMEDIATE so
the second writer waits its turn. Plain reads must stay deferred: they never wait for a
writer in WAL mode.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from reclaim.store.engine import WriteBusy, WritersTurn, begin_write, make_engine, writers_turn

from .turn_holder import turn_held


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


def test_a_writer_in_another_process_holds_the_turn_until_it_is_done(tmp_path: Path) -> None:
    engine = _counter(tmp_path)
    with turn_held(str(engine.url), 0.6):
        asked = time.monotonic()
        with writers_turn(engine):
            waited = time.monotonic() - asked
        assert waited > 0.3, f"took the turn after {waited:.2f} s while another process held it"


def test_threads_take_the_writers_turn_one_at_a_time(tmp_path: Path) -> None:
    engine = _counter(tmp_path)
    inside, most = 0, 0
    guard = threading.Lock()

    def turn() -> None:
        nonlocal inside, most
        with writers_turn(engine):
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=turn) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert most == 1
    assert (tmp_path / "w.db-writers.lock").exists()


def test_a_turn_that_must_not_wait_is_refused_while_another_process_holds_it(
    tmp_path: Path,
) -> None:
    engine = _counter(tmp_path)
    turn = WritersTurn(engine)
    with turn_held(str(engine.url), 0.5):
        asked = time.monotonic()
        assert turn.acquire(wait=False) is False
        assert time.monotonic() - asked < 0.2, "a no-wait turn waited"
    # Refused cleanly: nothing half-held, so the next writer (this thread) gets it.
    assert turn.acquire(wait=False) is True
    turn.release()
    with writers_turn(engine):
        pass


def test_a_turn_taken_in_one_thread_can_be_given_back_in_another(tmp_path: Path) -> None:
    engine = _counter(tmp_path)
    turn = WritersTurn(engine)
    waiter = threading.Thread(target=turn.acquire)  # as an event loop hands the wait over
    waiter.start()
    waiter.join(5)
    assert WritersTurn(engine).acquire(wait=False) is False
    turn.release()
    again = WritersTurn(engine)
    assert again.acquire(wait=False) is True
    again.release()


def test_a_write_that_must_not_wait_fails_at_once_and_leaves_the_wait_as_it_was(
    tmp_path: Path,
) -> None:
    engine = _counter(tmp_path)
    started = threading.Event()
    thread = threading.Thread(target=lambda: _increment(engine, hold=0.6, started=started))
    thread.start()
    assert started.wait(5)
    asked = time.monotonic()
    with pytest.raises(WriteBusy), begin_write(engine, wait=False) as conn:
        conn.execute(text("UPDATE counter SET n = 100"))
    assert time.monotonic() - asked < 0.3, "a no-wait write waited for the lock"
    # The only idle pooled connection is the one refused (the thread holds the other):
    # it waits as usual again, so this write queues behind the first.
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30_000
    _increment(engine, hold=0)
    thread.join(10)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 2
    engine.dispose()
