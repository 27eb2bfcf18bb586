"""The two osquery readers give the same store, report and rejects on the same logs.

``import_osquery_file`` reads a large log with DuckDB (``osquery_bulk``: its NDJSON
reader, or line by line when the file has blank lines or garbage) and a small one, and
watch mode's increments, block by block with polars. Each log here is imported by both
into a fresh store of its own, then everything is compared: every roll-up table, the
apps' names, the report's counters and the rejects file, line for line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from reclaim.services import osquery_import
from reclaim.services.osquery_import import import_osquery_file
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.usage_sources.app_aliases import AppMatcher
from reclaim.usage_sources.identity import sid_of_entra_object_id
from reclaim.usage_sources.osquery_duckdb import ScanRefused
from tests.integration.usage_sources.helpers import (
    ALICE_SID,
    BOB_SID,
    CAROL_ENTRA,
    seed_identities,
)
from tests.unit.usage_sources.osquery_lines import batch, event, log, snapshot

NOW = dt.datetime(2026, 10, 8, 12, 0, tzinfo=dt.UTC)
OCT5 = int(dt.datetime(2026, 10, 5, tzinfo=dt.UTC).timestamp())
H = 3600
APPS = AppMatcher(
    [["Microsoft Visio", r"*\Office16\VISIO.EXE"], ["Tableau", "/Applications/Tableau*.app"]]
)
VISIO = r"C:\Program Files\Microsoft Office\root\Office16\VISIO.EXE"
STRANGER = "S-1-5-21-1004336348-1177238915-682003330-2001"
CAROL_SID = sid_of_entra_object_id(CAROL_ENTRA)


def ua(sid: str | None, at: object, path: str = VISIO) -> dict[str, object]:
    row: dict[str, object] = {"path": path, "last_execution_time": at, "count": 1}
    if sid is not None:
        row["sid"] = sid
    return row


def every_kind_of_line() -> list[str]:
    """Result lines of every format and every way a row is taken, skipped or refused."""
    return [
        event("reclaim_userassist", ua(ALICE_SID, OCT5 + 9 * H), at=OCT5 + 10 * H),
        event("reclaim_userassist", ua(ALICE_SID, OCT5 + 9 * H), action="removed"),
        event("reclaim_userassist", ua(ALICE_SID, OCT5 + 9 * H), at=OCT5 + 11 * H),  # repeat
        event("reclaim_userassist", ua(ALICE_SID.lower(), OCT5 + 30 * H, r"C:\A\EXCEL.EXE")),
        event("reclaim_userassist", ua(CAROL_SID, OCT5 + 2 * H), numerics=True),
        event("reclaim_userassist", ua(STRANGER, OCT5 + 3 * H)),
        event("reclaim_userassist", ua(STRANGER, OCT5 + 4 * H, r"C:\A\EXCEL.EXE")),
        event("reclaim_userassist", ua("S-1-5-18", OCT5 + 5 * H)),  # the machine itself
        event("reclaim_userassist", ua("not-a-sid", OCT5 + 5 * H)),
        event("reclaim_userassist", ua(None, OCT5 + 5 * H)),  # no user at all
        event("reclaim_userassist", ua(BOB_SID, 0)),  # never run
        event("reclaim_userassist", ua(BOB_SID, "soon")),  # not a time: never run
        event("reclaim_userassist", ua(BOB_SID, OCT5 + 9 * 86_400)),  # in the future
        event("reclaim_userassist", ua(BOB_SID, OCT5 + 6 * H, "   ")),  # no app
        event(
            "reclaim_prefetch",
            {"filename": "WINPROJ.EXE", "last_run_time": OCT5 + 11 * H, "sid": BOB_SID},
        ),
        event(
            "reclaim_prefetch",
            {
                "path": r"C:\Windows\Prefetch\VISIO.EXE-1A2B3C4D.pf",
                "last_run_time": OCT5 + 12 * H + 0.5,
                "sid": BOB_SID,
            },
        ),
        snapshot(
            "reclaim_userassist",
            [ua(ALICE_SID, OCT5 + 9 * H), ua(BOB_SID, OCT5 - 20 * 86_400, r"C:\X\EXCEL.EXE")],
            at=OCT5 + 13 * H,
        ),
        snapshot("reclaim_userassist", [], at=OCT5 + 14 * H),
        batch(
            "reclaim_userassist",
            [ua(ALICE_SID, OCT5 + 33 * H), ua(BOB_SID, OCT5 + 33 * H, r"C:\A\EXCEL.EXE")],
            [ua(ALICE_SID, OCT5 + 9 * H)],
        ),
        batch("reclaim_userassist", [], [ua(BOB_SID, OCT5 + 9 * H)]),
        snapshot(
            "reclaim_macos_apps",
            [
                {
                    "bundle_identifier": "com.tableausoftware.tableaudesktop",
                    "path": "/Applications/Tableau 2026.1.app",
                    "last_opened_time": OCT5 + 7 * H - 0.75,
                    "username": "carol",
                },
                {
                    "bundle_identifier": "com.microsoft.Excel",
                    "last_opened_time": OCT5 + 8 * H,
                    "username": "dave@corp.example",
                },
                {"bundle_identifier": "com.apple.Notes", "last_opened_time": OCT5, "user": "eve"},
                {"bundle_identifier": "com.apple.Safari", "last_opened_time": -1.0},
            ],
        ),
        snapshot(
            "reclaim_heartbeat_windows",
            [{"sid": BOB_SID, "user": "bob"}, {"sid": "S-1-5-19"}],
            at=OCT5 + 50 * H,
        ),
        snapshot("reclaim_heartbeat_macos", [{"username": "carol"}], at=OCT5 + 51 * H),
        event("reclaim_heartbeat_windows", {"sid": ALICE_SID}, action="snapshot", at=OCT5 + 9),
        event("processes", {"path": "/usr/bin/top"}),
        snapshot("osquery_info", [{"version": "5.12"}, {"version": "5.13"}]),
        event("pack/team-a/reclaim_userassist", ua(BOB_SID, OCT5 + 15 * H)),
        event("fleet:reclaim_prefetch", {"filename": "ACAD.EXE", "last_run_time": OCT5}),
    ]


GARBAGE = [
    "not json at all",
    "[1, 2]",
    '{"hostIdentifier": "x"}',
    '{"name": "", "columns": {"sid": "S-1-5-21-1"}}',
    '{"name": "pack_x_reclaim_userassist", "columns": {"sid": ',
    "   ",
    '{"name": nope}',
    '{"name": "pack_x_reclaim_userassist"} {"name": "x"}',
    "\x00\x00\x00",
]


@dataclasses.dataclass
class Outcome:
    report: dict[str, Any]
    rejects: list[str]
    tables: dict[str, list[tuple[Any, ...]]]


TABLES = {
    "daily": "SELECT u.upn, a.key, d.day, d.seconds, d.events, d.first_seen, d.last_seen "
    "FROM usage_daily d JOIN users u ON u.id = d.user_id JOIN apps a ON a.id = d.app_id",
    "latest": "SELECT u.upn, a.key, l.first_day, l.last_day, l.last_seen "
    "FROM usage_latest l JOIN users u ON u.id = l.user_id JOIN apps a ON a.id = l.app_id",
    "observed": "SELECT u.upn, o.month, o.days_mask, o.last_day "
    "FROM usage_observed o JOIN users u ON u.id = o.user_id",
    "apps": "SELECT key, name FROM apps",
    "users": "SELECT upn FROM users",
    "sources": "SELECT name, kind, rows_accepted, rows_rejected, last_received FROM sources",
}
FIGURES = (
    "lines",
    "events",
    "repeats",
    "observations",
    "rows_accepted",
    "rows_rejected",
    "machine_accounts",
    "never_used",
    "unknown_queries",
    "unknown_sids",
    "unknown_accounts",
)


def store(tmp_path: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / name}.db")
    upgrade(engine)
    seed_identities(engine, tmp_path)
    return engine


def imported(engine: Engine, path: Path, reader: str, reports: Path) -> Outcome:
    report = import_osquery_file(
        engine, path, now=NOW, apps=APPS, report_dir=reports, reader=reader
    )
    assert report.status == "imported"
    if reader == "duckdb":
        assert report.reader.startswith("duckdb-")
    rejects = Path(report.rejects_file).read_text().splitlines() if report.rejects_file else []
    figures = {k: getattr(report, k) for k in FIGURES} | {"reader": report.reader}
    with engine.connect() as conn:
        tables = {k: sorted(tuple(r) for r in conn.execute(text(q))) for k, q in TABLES.items()}
    return Outcome(report=figures, rejects=rejects, tables=tables)


def both(tmp_path: Path, *files: bytes) -> tuple[list[Outcome], list[Outcome]]:
    """Import ``files`` in order with each reader into its own store."""
    out: dict[str, list[Outcome]] = {}
    for reader in ("blocks", "duckdb"):
        engine = store(tmp_path, reader)
        runs = []
        for i, data in enumerate(files):
            path = tmp_path / f"osqueryd.results.{i}.log"  # same name for both readers
            path.write_bytes(data)
            runs.append(imported(engine, path, reader, tmp_path / f"reports-{reader}"))
        out[reader] = runs
        engine.dispose()
    return out["blocks"], out["duckdb"]


def assert_same(blocks: Outcome, duck: Outcome) -> None:
    reader = duck.report.pop("reader")
    blocks.report.pop("reader")
    assert duck.report == blocks.report, reader
    assert duck.rejects == blocks.rejects, reader
    for name in TABLES:
        assert duck.tables[name] == blocks.tables[name], (name, reader)


def test_every_kind_of_line_same_figures_and_rejects(tmp_path: Path) -> None:
    lines = every_kind_of_line()
    # No blank line and nothing unreadable but a cut-off last record: the NDJSON reader.
    data = log(*lines, lines[0][:50], final_newline=False).replace(b"\n", b"\r\n", 5)
    (blocks,), (duck,) = both(tmp_path, data)
    assert duck.report["reader"] == "duckdb-records"
    assert blocks.report["events"] > 5 and blocks.report["rows_rejected"] > 5
    assert blocks.rejects[-1].endswith("incomplete last line (the log ends mid-record)")
    assert_same(blocks, duck)


def test_blank_lines_and_garbage_same_figures_and_rejects(tmp_path: Path) -> None:
    lines = every_kind_of_line()
    mixed: list[str] = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i % 4 == 0:
            mixed.append(GARBAGE[i // 4 % len(GARBAGE)])
        if i % 7 == 3:
            mixed.append("")
    data = log(*mixed)
    (blocks,), (duck,) = both(tmp_path, data)
    assert duck.report["reader"] == "duckdb-lines"
    assert any("not a JSON object" in r for r in blocks.rejects)
    assert_same(blocks, duck)


@pytest.mark.parametrize("blank", [False, True])
def test_logs_overlapping_what_the_store_holds(tmp_path: Path, blank: bool) -> None:
    """A second log re-reads part of the first one and goes on: earlier times inside
    a recorded day's span are repeats, equal ones too, later ones are new."""
    first = [
        event("reclaim_userassist", ua(ALICE_SID, OCT5 + h * H), at=OCT5 + h * H + 60)
        for h in (8, 10, 12)
    ] + [event("reclaim_userassist", ua(BOB_SID, OCT5 + 26 * H, r"C:\A\EXCEL.EXE"))]
    second = [
        event("reclaim_userassist", ua(ALICE_SID, OCT5 + h * H), at=OCT5 + 30 * H)
        for h in (7, 9, 12, 13, -40)
    ] + [
        event("reclaim_userassist", ua(BOB_SID, OCT5 + 25 * H, r"C:\A\EXCEL.EXE")),
        snapshot("reclaim_heartbeat_windows", [{"sid": ALICE_SID}], at=OCT5 + 3 * 86_400),
    ]
    if blank:
        second.insert(2, "")
    blocks, duck = both(tmp_path, log(*first), log(*second))
    assert blocks[1].report["repeats"] == 2
    for b, d in zip(blocks, duck, strict=True):
        assert_same(b, d)


def test_blank_lines_with_crlf_go_to_the_block_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's line reader also ends lines at a carriage return, so a file its NDJSON
    reader cannot number (a blank line) that has CRLF line ends is read block by block."""
    data = log(*every_kind_of_line()[:6], "", *every_kind_of_line()[6:]).replace(b"\n", b"\r\n")
    path = tmp_path / "crlf.log"
    path.write_bytes(data)
    engine = store(tmp_path, "crlf")
    with pytest.raises(ScanRefused):
        import_osquery_file(
            engine, path, now=NOW, apps=APPS, report_dir=tmp_path / "r", reader="duckdb"
        )
    monkeypatch.setattr(osquery_import, "DUCKDB_MIN_BYTES", 0)  # "auto" tries DuckDB
    auto = imported(engine, path, "auto", tmp_path / "reports-auto")
    blocks = imported(store(tmp_path, "blocks"), path, "blocks", tmp_path / "reports-blocks")
    assert auto.report["reader"] == "blocks"
    assert_same(blocks, auto)
