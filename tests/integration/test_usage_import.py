"""Usage import: roll-ups, rejects, idempotency, chunking, case and aliases — both databases."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from reclaim.services.usage_import import import_usage_file
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.tables import apps, imports, usage_daily, usage_latest, usage_observed, users
from reclaim.store.usage_queries import day_number
from reclaim.usage_sources.files import FileFormatError
from tests.integration.pg_waits import waiting_for_a_lock

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
D1 = day_number(dt.date(2026, 10, 1))

GOOD_AND_BAD_CSV = """\
user,app,timestamp,seconds,device
Alice@Corp.Example,VISIO.EXE,2026-10-01T09:00:00Z,600,PC1
alice@corp.example,visio.exe,2026-10-01T15:00:00+02:00,300,PC1
bob@corp.example,Microsoft Visio,2026-10-02T10:00:00Z,,PC2

,VISIO.EXE,2026-10-02T10:00:00Z,5,PC3
carol@corp.example,VISIO.EXE,yesterday,5,PC3
dave@corp.example,VISIO.EXE,2026-10-02T10:00:00Z,-5,PC3
erin@corp.example,,2026-10-02T10:00:00Z,5,PC3
frank@corp.example,VISIO.EXE,2027-06-01T10:00:00Z,5,PC3
gina@corp.example,VISIO.EXE,2026-10-03 08:30:00,lots,PC3
"""


def daily_rows(engine: Engine) -> list[tuple[str, str, int, int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                users.c.upn,
                apps.c.key,
                usage_daily.c.day,
                usage_daily.c.seconds,
                usage_daily.c.events,
            )
            .join(users, users.c.id == usage_daily.c.user_id)
            .join(apps, apps.c.id == usage_daily.c.app_id)
            .order_by(users.c.upn, apps.c.key, usage_daily.c.day)
        )
        return [tuple(r) for r in rows]


def run(engine: Engine, path: Path, tmp_path: Path, **kw):
    return import_usage_file(engine, path, now=NOW, report_dir=tmp_path / "reports", **kw)


def test_csv_good_rows_kept_bad_rows_reported(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(GOOD_AND_BAD_CSV)
    report = run(engine, path, tmp_path)
    assert (report.status, report.rows_accepted, report.rows_rejected) == ("imported", 3, 6)
    assert daily_rows(engine) == [
        ("alice@corp.example", "visio.exe", D1, 900, 2),
        ("bob@corp.example", "microsoft visio", D1 + 1, 0, 1),
    ]
    assert report.rejects_file is not None
    assert Path(report.rejects_file).read_text().splitlines() == [
        f"{path}:6: missing user",
        f"{path}:7: unparsable timestamp 'yesterday'",
        f"{path}:8: negative seconds '-5'",
        f"{path}:9: missing app",
        f"{path}:10: timestamp is in the future '2027-06-01T10:00:00Z'",
        f"{path}:11: seconds is not a number 'lots'",
    ]
    summary = json.loads(Path(report.summary_file or "").read_text())
    assert summary["rows_accepted"] == 3 and summary["rows_rejected"] == 6
    assert Path(report.rejects_file).parent == Path(report.summary_file or "").parent


def test_ndjson_with_bad_lines(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "usage.ndjson"
    path.write_text(
        '{"user":"a@x.test","app":"Tableau","date":"2026-10-05","seconds":120}\n'
        "this is not json\n"
        '{"user":"a@x.test","app":"tableau","timestamp":"2026-10-05T11:00:00Z","seconds":"60"}\n'
        "\n"
        '["a list"]\n'
        '{"user":"b@x.test","app":"Tableau","date":"05/10/2026"}\n'
    )
    report = run(engine, path, tmp_path)
    assert (report.rows_accepted, report.rows_rejected) == (2, 3)
    d = day_number(dt.date(2026, 10, 5))
    assert daily_rows(engine) == [("a@x.test", "tableau", d, 180, 2)]
    assert report.rejects[0].startswith(f"{path}:2: not a JSON object")
    assert report.rejects[1:] == [
        f"{path}:5: not a JSON object",
        f"{path}:6: unparsable date '05/10/2026' (expected YYYY-MM-DD)",
    ]


def test_same_file_twice_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(GOOD_AND_BAD_CSV)
    first = run(engine, path, tmp_path)
    before = daily_rows(engine)
    copy = tmp_path / "renamed-copy.csv"
    copy.write_bytes(path.read_bytes())
    again = run(engine, copy, tmp_path)
    assert again.status == "duplicate"
    assert again.previous_import is not None and again.previous_import.startswith("#")
    assert again.sha256 == first.sha256
    assert daily_rows(engine) == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(imports)).scalar() == 1


def test_wrong_format_fails_clearly_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text('{"user":"a@x.test","app":"Tableau","date":"2026-10-05"}\n')
    with pytest.raises(FileFormatError, match=r"usage\.csv:1: this looks like JSON, not CSV"):
        run(engine, path, tmp_path, fmt="csv")
    ndjson = tmp_path / "usage.ndjson"
    ndjson.write_text(GOOD_AND_BAD_CSV)
    with pytest.raises(FileFormatError, match=r"not NDJSON"):
        run(engine, ndjson, tmp_path, fmt="ndjson")
    header = tmp_path / "other.csv"
    header.write_text("name,when\nx,y\n")
    with pytest.raises(FileFormatError, match=r"lacks user, app, timestamp or date"):
        run(engine, header, tmp_path)
    with engine.connect() as conn:
        for table in (users, usage_daily, imports):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0
    assert not list((tmp_path / "reports").glob("*.rejects.txt"))


def test_chunked_import_equals_single_pass(db_url: str, tmp_path: Path) -> None:
    from reclaim.store.engine import make_engine
    from reclaim.store.migrate import upgrade

    rows = ["user,app,timestamp,seconds"]
    for i in range(600):
        day = 1 + i % 28
        # Several spellings of each user and app: one key each, whatever the block.
        user = f"User{i % 17}@X.test" if i % 5 else f" user{i % 17}@x.TEST "
        rows.append(
            f"{user},{'VISIO.EXE' if i % 3 else 'visio.exe '},"
            f"2026-10-{day:02d}T{8 + i % 9:02d}:00:00Z,{i % 50}"
        )
    # A bad row last: rejected in whichever block holds it, the rest still the same.
    rows.append("user1@x.test,VISIO.EXE,not-a-time,5")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(rows) + "\n")
    results = []
    for name, chunk in (("single", 1 << 20), ("chunked", 200)):
        url = db_url if name == "single" else db_url.replace("reclaim.db", "chunked.db")
        if "postgresql" in url and name == "chunked":
            url = db_url  # fresh database per test on PostgreSQL: reuse after clearing
        eng = make_engine(url)
        upgrade(eng)
        if name == "chunked" and "postgresql" in url:
            with eng.begin() as conn:
                for t in ("usage_daily", "usage_latest", "usage_observed", "imports"):
                    conn.exec_driver_sql(f"DELETE FROM {t}")
        report = run(eng, path, tmp_path, chunk_bytes=chunk)
        assert (report.rows_accepted, report.rows_rejected) == (600, 1)
        with eng.connect() as conn:
            results.append(
                (
                    daily_rows(eng),
                    sorted(
                        tuple(r)
                        for r in conn.execute(
                            select(
                                usage_latest.c.first_day,
                                usage_latest.c.last_day,
                                usage_latest.c.last_seen,
                            )
                        )
                    ),
                    sorted(
                        tuple(r)
                        for r in conn.execute(
                            select(
                                usage_observed.c.month,
                                usage_observed.c.days_mask,
                                usage_observed.c.last_day,
                            )
                        )
                    ),
                )
            )
        eng.dispose()
    assert results[0] == results[1]
    assert len(results[0][0]) > 17  # many (user, app, day) rows, merged across chunks


def test_users_case_insensitive_and_observed_days(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(
        "user,app,date\nMIXED.Case@Corp.test,Teams,2026-10-01\n"
        "mixed.case@corp.test,Teams,2026-10-03\n  Mixed.Case@corp.TEST ,Miro,2026-10-03\n"
    )
    run(engine, path, tmp_path)
    with engine.connect() as conn:
        assert conn.execute(select(users.c.upn)).scalars().all() == ["mixed.case@corp.test"]
        mask, last = conn.execute(
            select(usage_observed.c.days_mask, usage_observed.c.last_day)
        ).one()
    assert mask == 0b101  # observed on the 1st and the 3rd
    assert last == day_number(dt.date(2026, 10, 3))


def test_time_ordered_files_overlapping_days_merge(engine: Engine, tmp_path: Path) -> None:
    """Days held back between chunks and days shared by two imports add up exactly."""

    def write(name: str, days: range) -> Path:
        lines = ["user,app,timestamp,seconds"]
        for day in days:
            for hour in (8, 12, 16):
                for user in ("a@x.test", "b@x.test"):
                    lines.append(f"{user},Miro,2026-10-{day:02d}T{hour:02d}:00:00Z,60")
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path

    run(engine, write("first.csv", range(1, 11)), tmp_path, chunk_bytes=150)
    run(engine, write("second.csv", range(8, 16)), tmp_path, chunk_bytes=150)
    rows = daily_rows(engine)
    by_day = {(u, d): (s, e) for u, _, d, s, e in rows}
    first_day = day_number(dt.date(2026, 10, 1))
    for day in range(1, 16):
        expected = (360, 6) if 8 <= day <= 10 else (180, 3)
        assert by_day[("a@x.test", first_day + day - 1)] == expected, day
    assert len(rows) == 2 * 15


def test_spellings_checked_apart_from_rows_keep_names_and_reasons(
    engine: Engine, tmp_path: Path
) -> None:
    """Clean rows are matched by their user and app as written; rows that need
    trimming or are blank once trimmed take the full check. Names, keys and reasons
    come out as if every row had taken it."""
    path = tmp_path / "spellings.csv"
    path.write_text(
        "user,app,timestamp,seconds\n"
        # First spelling of the app is on a row the fast path leaves (seconds " 5").
        "Ann@X.test, Power BI ,2026-10-01T09:00:00Z, 5\n"
        "ann@x.test,POWER BI,2026-10-01T10:00:00Z,7\n"
        "   ,POWER BI,2026-10-01T11:00:00Z,1\n"  # blank once trimmed: rejected
        "ann@x.test,   ,2026-10-01T11:00:00Z,1\n"
        "  ANN@x.test,power bi,2026-10-02T09:00:00Z,11\n"
    )
    report = run(engine, path, tmp_path, chunk_bytes=80)  # a few rows a chunk
    assert (report.rows_accepted, report.rows_rejected) == (3, 2)
    assert [r.split(": ", 1)[1] for r in report.rejects] == ["missing user", "missing app"]
    assert [int(r.split(":")[-2]) for r in report.rejects] == [4, 5]
    with engine.connect() as conn:
        assert conn.execute(select(apps.c.key, apps.c.name)).all() == [("power bi", "Power BI")]
    assert daily_rows(engine) == [
        ("ann@x.test", "power bi", D1, 12, 2),
        ("ann@x.test", "power bi", D1 + 1, 11, 1),
    ]


@pytest.mark.postgres
def test_an_import_postgresql_rolls_back_to_break_a_deadlock_runs_again(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two uploads at once can deadlock on PostgreSQL: the one rolled back starts over
    by itself, and the roll-ups hold its events once."""
    engine = make_engine(pg_url)
    upgrade(engine)
    path = tmp_path / "u.csv"
    path.write_text(
        "user,app,timestamp,seconds\nalice@corp.example,VISIO.EXE,2026-10-01T09:00:00Z,600\n"
    )
    other = engine.connect()
    other_tx = other.begin()
    # Another writer holds alice's new user row (not committed yet) ...
    other.execute(text("INSERT INTO users (upn, first_seen) VALUES ('alice@corp.example', 0)"))
    outcome: dict[str, object] = {}

    def upload() -> None:
        try:
            outcome["report"] = run(engine, path, tmp_path, source="uploads")
        except Exception as exc:  # the assertion below shows it
            outcome["error"] = exc

    worker = threading.Thread(target=upload)
    worker.start()
    try:
        # ... the import creates its source row, then waits for alice's row ...
        deadline = time.monotonic() + 10
        while not waiting_for_a_lock(engine) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert waiting_for_a_lock(engine), "the import never waited for alice's row"
        # ... and the other writer now waits for the import's source row: a cycle, which
        # PostgreSQL breaks (after deadlock_timeout, 1 s) by rolling the import back.
        other.execute(
            text(
                "INSERT INTO sources (name, kind, rows_accepted, rows_rejected) "
                "VALUES ('uploads', 'file', 0, 0) ON CONFLICT DO NOTHING"
            )
        )
    finally:
        other_tx.rollback()  # the other writer gives up: the import's second try goes through
        other.close()
        worker.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert report.status == "imported" and report.rows_accepted == 1  # type: ignore[attr-defined]
    assert daily_rows(engine) == [("alice@corp.example", "visio.exe", D1, 600, 1)]
    assert any("deadlock" in r.getMessage() for r in caplog.records)
    engine.dispose()
