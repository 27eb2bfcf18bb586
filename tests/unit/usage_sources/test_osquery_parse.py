"""osquery result lines in every logger format become the same flat rows."""

from __future__ import annotations

from reclaim.usage_sources.osquery import parse_block
from tests.unit.usage_sources.osquery_lines import T0, batch, event, log, snapshot

UA = {
    "path": r"C:\Apps\VISIO.EXE",
    "last_execution_time": T0 - 600,
    "count": 3,
    "sid": "S-1-5-21-1",
}


def rows(data: bytes, **kw):
    parsed = parse_block(data, 1, **kw)
    return parsed, parsed.rows.select("line", "query", "seen", "path").rows()


def test_event_format_added_kept_removed_skipped() -> None:
    old = {**UA, "last_execution_time": T0 - 9000}
    parsed, got = rows(
        log(
            event("reclaim_userassist", old, action="removed"),
            event("reclaim_userassist", UA, action="added"),
        )
    )
    assert got == [(2, "pack_reclaim-usage_reclaim_userassist", str(T0), UA["path"])]
    assert parsed.rows["last_execution_time"].to_list() == [str(T0 - 600)]
    assert parsed.malformed == [] and parsed.lines == 2


def test_numerics_are_read_as_text() -> None:
    parsed, _ = rows(log(event("reclaim_userassist", UA, numerics=True)))
    assert parsed.rows.row(0, named=True)["last_execution_time"] == str(T0 - 600)
    assert parsed.rows.row(0, named=True)["seen"] == str(T0)


def test_snapshot_lines_explode_into_rows_with_their_line_number() -> None:
    second = {**UA, "path": r"C:\Apps\EXCEL.EXE"}
    parsed, got = rows(
        log(event("reclaim_userassist", UA), snapshot("reclaim_userassist", [UA, second]))
    )
    assert [(r[0], r[3]) for r in got] == [(1, UA["path"]), (2, UA["path"]), (2, second["path"])]
    assert parsed.lines == 2


def test_batched_diff_results_keep_added_only() -> None:
    old = {**UA, "last_execution_time": T0 - 9000}
    _, got = rows(
        log(batch("reclaim_userassist", [UA], [old]), batch("reclaim_userassist", [], [old]))
    )
    assert [(r[0], r[3]) for r in got] == [(1, UA["path"])]


def test_snapshot_event_type_rows_are_kept() -> None:
    # --logger_snapshot_event_type: one "columns" row per line with action "snapshot".
    _, got = rows(log(event("reclaim_heartbeat_windows", {"sid": "S-1-5-21-1"}, action="snapshot")))
    assert len(got) == 1


def test_bad_lines_are_reported_good_ones_kept() -> None:
    parsed, got = rows(
        log(
            event("reclaim_userassist", UA),
            "not json at all",
            "[1, 2]",
            '{"hostIdentifier": "x"}',
            "",
            event("reclaim_userassist", UA),
        )
    )
    assert [r[0] for r in got] == [1, 6]
    assert sorted(parsed.malformed) == [
        (2, "not a JSON object (Expecting value: line 1 column 1 (char 0))"),
        (3, "not a JSON object"),
        (4, "not an osquery result (no query name)"),
    ]
    assert parsed.lines == 5


def test_a_record_cut_short_at_the_end_is_named_as_such() -> None:
    data = log(
        event("reclaim_userassist", UA), event("reclaim_userassist", UA)[:40], final_newline=False
    )
    parsed, got = rows(data, incomplete_tail=True)
    assert [r[0] for r in got] == [1]
    assert parsed.malformed == [(2, "incomplete last line (the log ends mid-record)")]
