"""osquery rows → raw usage rows: users by SID or account, apps by alias, time rules."""

from __future__ import annotations

import polars as pl

from reclaim.usage_sources.app_aliases import AppMatcher
from reclaim.usage_sources.events import validate
from reclaim.usage_sources.identity import MappingDirectory
from reclaim.usage_sources.osquery import parse_block
from reclaim.usage_sources.osquery_mapping import OsqueryMapper
from reclaim.usage_sources.rollup import OBSERVED_ONLY_APP
from tests.unit.usage_sources.osquery_lines import T0, event, log, snapshot

ALICE_SID = "S-1-5-21-1004336348-1177238915-682003330-1105"
DIRECTORY = MappingDirectory({ALICE_SID: "Alice@Corp.Example"}, {"CORP\\bob": "bob@corp.example"})
VISIO = AppMatcher(
    [["Microsoft Visio", r"*\Office16\VISIO.EXE"], ["Tableau", "/Applications/Tableau*.app"]]
)


def mapped(*lines: str) -> tuple[pl.DataFrame, list[tuple[int, str]], OsqueryMapper]:
    mapper = OsqueryMapper(directory=DIRECTORY, apps=VISIO)
    out = mapper.map(parse_block(log(*lines), 1).rows)
    return out.raw, out.rejects, mapper


def test_userassist_row_by_sid_with_alias_pattern() -> None:
    row = {"path": r"C:\Program Files\Microsoft Office\root\Office16\VISIO.EXE", "sid": ALICE_SID}
    raw, rejects, _ = mapped(
        event("reclaim_userassist", {**row, "last_execution_time": T0 - 60, "count": 9})
    )
    assert raw.rows() == [("alice@corp.example", "Microsoft Visio", str(T0 - 60), None, 1)]
    assert rejects == []


def test_unmatched_paths_keep_the_executable_name_prefetch_files_too() -> None:
    raw, _, _ = mapped(
        event(
            "reclaim_userassist",
            {"path": r"D:\Tools\SnagIt32.exe", "last_execution_time": T0, "sid": ALICE_SID},
        ),
        event(
            "reclaim_prefetch",
            {
                "path": r"C:\Windows\Prefetch\WINPROJ.EXE-1A2B3C4D.pf",
                "last_run_time": T0,
                "run_count": 4,
                "sid": ALICE_SID,
            },
        ),
        event("reclaim_prefetch", {"filename": "VISIO.EXE", "last_run_time": T0, "sid": ALICE_SID}),
    )
    # A bare executable name matches "*\Office16\VISIO.EXE" only through a folder: no.
    assert raw["app"].to_list() == ["SnagIt32.exe", "WINPROJ.EXE", "VISIO.EXE"]


def test_macos_apps_by_account_name_bundle_id_and_fractional_time() -> None:
    raw, rejects, mapper = mapped(
        snapshot(
            "reclaim_macos_apps",
            [
                {
                    "bundle_identifier": "com.tableausoftware.tableaudesktop",
                    "path": "/Applications/Tableau 2026.1.app",
                    "last_opened_time": T0 - 0.75,
                    "username": "bob",
                },
                {
                    "bundle_identifier": "com.microsoft.Excel",
                    "path": "/Applications/Microsoft Excel.app",
                    "last_opened_time": T0 - 100.5,
                    "username": "carol@corp.example",
                },
                {
                    "bundle_identifier": "com.apple.Safari",
                    "last_opened_time": -1.0,
                    "username": "bob",
                },
                {
                    "bundle_identifier": "com.apple.Notes",
                    "last_opened_time": T0,
                    "username": "mallory",
                },
            ],
        )
    )
    assert raw.select("user", "app", "timestamp").rows() == [
        ("bob@corp.example", "Tableau", str(T0 - 1)),
        ("carol@corp.example", "com.microsoft.Excel", str(T0 - 101)),
    ]
    assert rejects == [(1, "unknown account 'mallory'")]
    assert mapper.stats.never_used == 1 and mapper.stats.unknown_accounts == {"mallory": 1}


def test_unknown_and_machine_sids_counted_never_dropped_silently() -> None:
    stranger = "S-1-5-21-1004336348-1177238915-682003330-2001"
    row = {"path": r"C:\A\X.EXE", "last_execution_time": T0}
    raw, rejects, mapper = mapped(
        event("reclaim_userassist", {**row, "sid": stranger}),
        event("reclaim_userassist", {**row, "sid": stranger.lower()}),
        event("reclaim_userassist", {**row, "sid": "S-1-5-18"}),
        event("reclaim_userassist", {**row, "sid": "not-a-sid"}),
        event("reclaim_userassist", row),
    )
    assert raw.height == 0
    assert rejects == [
        (1, f"unknown SID {stranger}"),
        (2, f"unknown SID {stranger}"),
        (4, "not a SID 'NOT-A-SID'"),
        (5, "no user in the row (sid or username)"),
    ]
    assert mapper.stats.unknown_sids == {stranger: 2}
    assert mapper.stats.machine_accounts == 1


def test_heartbeats_observe_at_log_time_unknown_queries_counted() -> None:
    raw, _, mapper = mapped(
        snapshot(
            "reclaim_heartbeat_windows",
            [{"user": "alice", "sid": ALICE_SID, "type": "active"}],
            at=T0 + 5,
        ),
        snapshot("reclaim_heartbeat_macos", [{"username": "bob", "tty": "console"}], at=T0 + 9),
        event("osquery_info", {"path": "x"}),
        event("processes", {"path": "y"}),
        event("processes", {"path": "z"}),
    )
    assert raw.select("user", "app", "timestamp").rows() == [
        ("alice@corp.example", OBSERVED_ONLY_APP, str(T0 + 5)),
        ("bob@corp.example", OBSERVED_ONLY_APP, str(T0 + 9)),
    ]
    assert mapper.stats.unknown_queries == {
        "pack_reclaim-usage_osquery_info": 1,
        "pack_reclaim-usage_processes": 2,
    }


def test_mapped_rows_pass_validation_without_seconds() -> None:
    raw, _, _ = mapped(
        event(
            "reclaim_userassist",
            {"path": r"C:\A\X.EXE", "last_execution_time": T0, "sid": ALICE_SID},
        )
    )
    checked = validate(raw, now=T0)
    assert checked.rejects.height == 0
    assert checked.events.select("user", "app_key", "ts", "seconds").rows() == [
        ("alice@corp.example", "x.exe", T0, 0)
    ]
