"""Whole osquery result logs into roll-ups, on SQLite and PostgreSQL: exact figures."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from reclaim.services.osquery_import import import_osquery_file
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.tables import sources
from reclaim.usage_sources.app_aliases import AppMatcher
from reclaim.usage_sources.identity import sid_of_entra_object_id
from tests.integration.pg_waits import waiting_for_a_lock
from tests.integration.usage_sources.helpers import (
    ALICE_SID,
    BOB_SID,
    CAROL_ENTRA,
    app_keys,
    daily,
    observed,
    seed_identities,
)
from tests.unit.usage_sources.osquery_lines import batch, event, log, snapshot

NOW = dt.datetime(2026, 10, 8, 12, 0, tzinfo=dt.UTC)
OCT5 = int(dt.datetime(2026, 10, 5, tzinfo=dt.UTC).timestamp())
H = 3600
APPS = AppMatcher([["Microsoft Visio", r"*\Office16\VISIO.EXE"]])
VISIO = r"C:\Program Files\Microsoft Office\root\Office16\VISIO.EXE"


def ua(sid: str, at: int, path: str = VISIO) -> dict[str, object]:
    return {"path": path, "last_execution_time": at, "count": 1, "sid": sid}


@pytest.fixture(params=["blocks", "duckdb"])
def reader(request: pytest.FixtureRequest) -> str:
    """Both readers must give the same figures (the fixtures are far below the size
    from which ``auto`` picks DuckDB, so each is asked for by name)."""
    return str(request.param)


def run(engine: Engine, tmp_path: Path, reader: str, name: str, data: bytes, **kw):
    path = tmp_path / name
    path.write_bytes(data)
    return import_osquery_file(
        engine, path, now=NOW, apps=APPS, report_dir=tmp_path / "reports", reader=reader, **kw
    )


def test_differential_log_added_and_removed(engine: Engine, tmp_path: Path, reader: str) -> None:
    seed_identities(engine, tmp_path)
    first, second = OCT5 + 9 * H, OCT5 + 26 * H  # Oct 5 09:00, Oct 6 02:00
    report = run(
        engine,
        tmp_path,
        reader,
        "osqueryd.results.log",
        log(
            event("reclaim_userassist", ua(ALICE_SID, first), at=OCT5 + 10 * H),
            # Visio used again: osquery logs the old row removed and the new one added.
            event("reclaim_userassist", ua(ALICE_SID, first), action="removed", at=OCT5 + 27 * H),
            event("reclaim_userassist", ua(ALICE_SID, second), at=OCT5 + 27 * H),
            event(
                "reclaim_prefetch",
                {"filename": "WINPROJ.EXE", "last_run_time": OCT5 + 11 * H, "sid": BOB_SID},
            ),
            event(
                "reclaim_heartbeat_windows",
                {"sid": BOB_SID, "user": "bob"},
                action="snapshot",
                at=OCT5 + 50 * H,
            ),
        ),
    )
    assert (report.events, report.repeats, report.observations, report.rows_rejected) == (
        3,
        0,
        1,
        0,
    )
    assert daily(engine) == [
        ("alice@corp.example", "microsoft visio", "2026-10-05", 0, 1),
        ("alice@corp.example", "microsoft visio", "2026-10-06", 0, 1),
        ("bob@corp.example", "winproj.exe", "2026-10-05", 0, 1),
    ]
    assert observed(engine) == [
        ("alice@corp.example", "osquery", "2026-10-05"),
        ("alice@corp.example", "osquery", "2026-10-06"),
        ("bob@corp.example", "osquery", "2026-10-05"),
        ("bob@corp.example", "osquery", "2026-10-07"),  # the heartbeat: observed, no use
    ]
    assert "(observed)" not in app_keys(engine)
    with engine.connect() as conn:
        src = conn.execute(select(sources).where(sources.c.name == "osquery")).one()
    assert (src.kind, src.rows_accepted, src.rows_rejected) == ("osquery", 3, 0)
    assert src.last_received == int(NOW.timestamp())


def test_snapshots_repeated_every_hour_count_each_use_once(
    engine: Engine, tmp_path: Path, reader: str
) -> None:
    seed_identities(engine, tmp_path)
    used, again = OCT5 + 8 * H, OCT5 + 14 * H
    hours = [
        snapshot(
            "reclaim_userassist",
            [
                ua(ALICE_SID, used if h < 14 else again),
                ua(BOB_SID, OCT5 - 20 * 86_400, r"C:\X\EXCEL.EXE"),
            ],
            at=OCT5 + h * H,
        )
        for h in range(9, 24)
    ]
    report = run(engine, tmp_path, reader, "snapshots.log", log(*hours))
    assert (report.lines, report.events, report.repeats) == (15, 3, 27)
    expected = [
        ("alice@corp.example", "microsoft visio", "2026-10-05", 0, 2),
        ("bob@corp.example", "excel.exe", "2026-09-15", 0, 1),
    ]
    assert daily(engine) == expected
    # The next day's snapshots repeat the same last-used times: nothing new.
    next_day = [
        snapshot("reclaim_userassist", [ua(ALICE_SID, again)], at=OCT5 + (24 + h) * H)
        for h in range(5)
    ]
    report = run(engine, tmp_path, reader, "snapshots-2.log", log(*next_day))
    assert (report.events, report.repeats) == (0, 5)
    assert daily(engine) == expected


def test_event_batches(engine: Engine, tmp_path: Path, reader: str) -> None:
    seed_identities(engine, tmp_path)
    t1, t2 = OCT5 + 9 * H, OCT5 + 33 * H
    report = run(
        engine,
        tmp_path,
        reader,
        "batched.log",
        log(
            batch(
                "reclaim_userassist", [ua(ALICE_SID, t1), ua(BOB_SID, t1, r"C:\A\EXCEL.EXE")], []
            ),
            batch("reclaim_userassist", [ua(ALICE_SID, t2)], [ua(ALICE_SID, t1)]),
            batch("reclaim_userassist", [], [ua(BOB_SID, t1, r"C:\A\EXCEL.EXE")]),
        ),
    )
    assert (report.events, report.rows_rejected) == (3, 0)
    assert daily(engine) == [
        ("alice@corp.example", "microsoft visio", "2026-10-05", 0, 1),
        ("alice@corp.example", "microsoft visio", "2026-10-06", 0, 1),
        ("bob@corp.example", "excel.exe", "2026-10-05", 0, 1),
    ]


def test_truncated_last_line_unknown_query_and_unknown_sids(
    engine: Engine, tmp_path: Path, reader: str
) -> None:
    seed_identities(engine, tmp_path)
    stranger = "S-1-5-21-1004336348-1177238915-682003330-2001"
    other = "S-1-5-21-1004336348-1177238915-682003330-2002"
    good = event("reclaim_userassist", ua(ALICE_SID, OCT5 + 9 * H))
    data = log(
        good,
        event("processes", {"path": "/usr/bin/top"}),
        event("reclaim_userassist", ua(stranger, OCT5 + 9 * H)),
        event("reclaim_userassist", ua(stranger, OCT5 + 10 * H, r"C:\A\EXCEL.EXE")),
        event("reclaim_userassist", ua(other, OCT5 + 9 * H)),
        event("reclaim_userassist", ua(BOB_SID, OCT5 + 9 * H))[:70],
        final_newline=False,
    )
    report = run(engine, tmp_path, reader, "cut.log", data, chunk_bytes=300)  # many small blocks
    path = tmp_path / "cut.log"
    assert Path(report.rejects_file or "").read_text().splitlines() == [
        f"{path}:3: unknown SID {stranger}",
        f"{path}:4: unknown SID {stranger}",
        f"{path}:5: unknown SID {other}",
        f"{path}:6: incomplete last line (the log ends mid-record)",
    ]
    assert report.unknown_sids == {stranger: 2, other: 1}
    assert report.unknown_queries == {"pack_reclaim-usage_processes": 1}
    assert (report.lines, report.events, report.rows_rejected) == (6, 1, 4)
    assert daily(engine) == [("alice@corp.example", "microsoft visio", "2026-10-05", 0, 1)]
    summary = json.loads(Path(report.summary_file or "").read_text())
    assert summary["unknown_sids"] == {stranger: 2, other: 1}


def test_entra_joined_devices_map_through_the_object_id(
    engine: Engine, tmp_path: Path, reader: str
) -> None:
    seed_identities(engine, tmp_path)
    report = run(
        engine,
        tmp_path,
        reader,
        "aad.log",
        log(event("reclaim_userassist", ua(sid_of_entra_object_id(CAROL_ENTRA), OCT5))),
    )
    assert report.events == 1
    assert daily(engine) == [("carol@corp.example", "microsoft visio", "2026-10-05", 0, 1)]


def test_same_bytes_skipped_overlapping_file_adds_nothing(
    engine: Engine, tmp_path: Path, reader: str
) -> None:
    seed_identities(engine, tmp_path)
    lines = [
        event("reclaim_userassist", ua(ALICE_SID, OCT5 + h * H), at=OCT5 + h * H + 60)
        for h in (8, 9, 10)
    ]
    first = run(engine, tmp_path, reader, "a.log", log(*lines[:2]))
    assert first.events == 2
    again = run(engine, tmp_path, reader, "copy-of-a.log", log(*lines[:2]))
    assert again.status == "duplicate" and "#1" in (again.previous_import or "")
    grown = run(
        engine, tmp_path, reader, "a.log.grown", log(*lines)
    )  # the same log, one line longer
    assert (grown.status, grown.events, grown.repeats) == ("imported", 1, 2)
    assert daily(engine) == [("alice@corp.example", "microsoft visio", "2026-10-05", 0, 3)]


def test_other_devices_and_logs_out_of_order_still_count_their_days(
    engine: Engine, tmp_path: Path, reader: str
) -> None:
    seed_identities(engine, tmp_path)
    late = run(
        engine,
        tmp_path,
        reader,
        "ws2.log",
        log(event("reclaim_userassist", ua(ALICE_SID, OCT5 + 12 * H), host="WS-2")),
    )
    assert late.events == 1
    # An older log from another device: earlier days are new; inside the recorded
    # span of Oct 5 (12:00..12:00) nothing is; before it, the day's span grows.
    older = run(
        engine,
        tmp_path,
        reader,
        "ws1.log",
        log(
            event("reclaim_userassist", ua(ALICE_SID, OCT5 - 3 * 86_400), host="WS-1"),
            event("reclaim_userassist", ua(ALICE_SID, OCT5 + 7 * H), host="WS-1"),
            event("reclaim_userassist", ua(ALICE_SID, OCT5 + 12 * H), host="WS-1"),
        ),
    )
    assert (older.events, older.repeats) == (2, 1)
    assert daily(engine) == [
        ("alice@corp.example", "microsoft visio", "2026-10-02", 0, 1),
        ("alice@corp.example", "microsoft visio", "2026-10-05", 0, 2),
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("reader", ["blocks", "duckdb"])
def test_an_import_postgresql_rolls_back_to_break_a_deadlock_runs_again(
    pg_url: str, tmp_path: Path, reader: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two writers at once can deadlock on PostgreSQL (several uploaders): the import
    rolled back starts over by itself, and the roll-ups hold its events once."""
    engine = make_engine(pg_url)
    upgrade(engine)
    seed_identities(engine, tmp_path)
    other = engine.connect()
    other_tx = other.begin()
    # Another writer holds the new usage source's row (not committed yet) ...
    other.execute(
        text(
            "INSERT INTO sources (name, kind, rows_accepted, rows_rejected) "
            "VALUES ('osquery', 'osquery', 0, 0)"
        )
    )
    outcome: dict[str, object] = {}

    def upload() -> None:
        try:
            outcome["report"] = run(
                engine,
                tmp_path,
                reader,
                "osqueryd.results.log",
                log(event("reclaim_userassist", ua(ALICE_SID, OCT5 + 9 * H), at=OCT5 + 10 * H)),
            )
        except Exception as exc:  # the assertion below shows it
            outcome["error"] = exc

    worker = threading.Thread(target=upload)
    worker.start()
    try:
        # ... the import writes its app row, then waits for the source row ...
        deadline = time.monotonic() + 20
        while not waiting_for_a_lock(engine) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert waiting_for_a_lock(engine), "the import never waited for the source row"
        # ... and the other writer now waits for the import's app row: a cycle, which
        # PostgreSQL breaks (after deadlock_timeout, 1 s) by rolling one of them back.
        with contextlib.suppress(DBAPIError):  # if PostgreSQL picked the other writer
            other.execute(text("INSERT INTO apps (key, name) VALUES ('microsoft visio', 'Visio')"))
    finally:
        other_tx.rollback()  # the other writer gives up: the import's retry goes through
        other.close()
        worker.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert report.status == "imported" and report.events == 1  # type: ignore[attr-defined]
    assert [(u, a, n) for u, a, _d, _s, n in daily(engine)] == [
        ("alice@corp.example", "microsoft visio", 1)
    ]
    assert any("deadlock" in r.getMessage() for r in caplog.records)
    engine.dispose()
