"""Watch mode: a growing log, partial lines, restarts, rotation and truncation."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from reclaim.services.osquery_watch import OsqueryWatcher
from reclaim.usage_sources.app_aliases import AppMatcher
from tests.integration.usage_sources.helpers import ALICE_SID, BOB_SID, daily, seed_identities
from tests.unit.usage_sources.osquery_lines import event

OCT5 = 1_791_158_400  # 2026-10-05T00:00Z
H = 3600
NOW = OCT5 + 3 * 86_400


def line(sid: str, at: int, exe: str = "VISIO.EXE") -> bytes:
    row = {"path": rf"C:\Apps\{exe}", "last_execution_time": at, "sid": sid}
    return (event("reclaim_userassist", row) + "\n").encode()


def watcher(engine: Engine, path: Path, tmp_path: Path, **kw) -> OsqueryWatcher:
    return OsqueryWatcher(
        engine,
        path,
        source="osquery",
        apps=AppMatcher([]),
        rejects_file=tmp_path / "watch.rejects.txt",
        clock=lambda: float(NOW),
        **kw,
    )


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


def visio_days(engine: Engine) -> list[tuple[str, str, int]]:
    return [(u, d, e) for u, a, d, _, e in daily(engine) if a == "visio.exe"]


def test_growing_file_partial_line_waits_restart_resumes(engine: Engine, tmp_path: Path) -> None:
    seed_identities(engine, tmp_path)
    log = tmp_path / "osqueryd.results.log"
    full = line(ALICE_SID, OCT5 + 9 * H)
    log.write_bytes(line(BOB_SID, OCT5 + 8 * H) + full[:50])  # the logger is mid-line
    w = watcher(engine, log, tmp_path)
    first = w.poll()
    assert (first.lines, first.counts.events) == (1, 1)
    assert w.poll().lines == 0  # still incomplete: nothing read, nothing rejected
    append(log, full[50:] + line(ALICE_SID, OCT5 + 10 * H))
    assert w.poll().counts.events == 2
    # A new process (a restart) resumes from the stored position: nothing twice.
    again = watcher(engine, log, tmp_path)
    assert again.poll().lines == 0
    append(log, line(ALICE_SID, OCT5 + 11 * H))
    assert again.poll().counts.events == 1
    assert visio_days(engine) == [
        ("alice@corp.example", "2026-10-05", 3),
        ("bob@corp.example", "2026-10-05", 1),
    ]
    assert not (tmp_path / "watch.rejects.txt").exists()


def test_rotation_finishes_the_old_file_then_reads_the_new_one(
    engine: Engine, tmp_path: Path
) -> None:
    seed_identities(engine, tmp_path)
    log = tmp_path / "osqueryd.results.log"
    log.write_bytes(line(ALICE_SID, OCT5 + 8 * H))
    w = watcher(engine, log, tmp_path, batch_bytes=300)
    assert w.poll().counts.events == 1
    # The logger writes two more lines, then rotates: rename, and a new file.
    append(log, line(ALICE_SID, OCT5 + 9 * H) + line(ALICE_SID, OCT5 + 10 * H))
    log.rename(tmp_path / "osqueryd.results.log.1")
    log.write_bytes(line(BOB_SID, OCT5 + 12 * H))
    result = w.poll()
    assert result.counts.events == 3 and result.batches == 3
    assert any("rotated" in n for n in result.notes)
    append(log, line(BOB_SID, OCT5 + 13 * H))
    assert w.poll().counts.events == 1
    assert visio_days(engine) == [
        ("alice@corp.example", "2026-10-05", 3),
        ("bob@corp.example", "2026-10-05", 2),
    ]


def test_rotation_while_stopped_is_found_by_inode(engine: Engine, tmp_path: Path) -> None:
    seed_identities(engine, tmp_path)
    log = tmp_path / "osqueryd.results.log"
    log.write_bytes(line(ALICE_SID, OCT5 + 8 * H))
    assert watcher(engine, log, tmp_path).poll().counts.events == 1
    append(log, line(ALICE_SID, OCT5 + 9 * H))
    os.replace(log, tmp_path / "osqueryd.results.log.1")
    log.write_bytes(line(BOB_SID, OCT5 + 12 * H))
    result = watcher(engine, log, tmp_path).poll()  # a fresh process after the rotation
    assert result.counts.events == 2
    assert visio_days(engine) == [
        ("alice@corp.example", "2026-10-05", 2),
        ("bob@corp.example", "2026-10-05", 1),
    ]


def test_copytruncate_is_read_again_from_the_start(engine: Engine, tmp_path: Path) -> None:
    seed_identities(engine, tmp_path)
    log = tmp_path / "osqueryd.results.log"
    log.write_bytes(line(ALICE_SID, OCT5 + 8 * H) + line(ALICE_SID, OCT5 + 9 * H))
    w = watcher(engine, log, tmp_path)
    assert w.poll().counts.events == 2
    with log.open("r+b") as fh:  # logrotate copytruncate, then the logger goes on
        fh.truncate(0)
    append(log, line(BOB_SID, OCT5 + 10 * H))
    result = w.poll()
    assert result.counts.events == 1
    assert any("truncated" in n for n in result.notes)


def test_rejects_go_to_the_watch_rejects_file_and_run_stops_on_request(
    engine: Engine, tmp_path: Path
) -> None:
    seed_identities(engine, tmp_path)
    log = tmp_path / "osqueryd.results.log"
    stranger = "S-1-5-21-1004336348-1177238915-682003330-2001"
    log.write_bytes(line(stranger, OCT5) + b"garbage\n" + line(ALICE_SID, OCT5))
    w = watcher(engine, log, tmp_path)
    stop = threading.Event()
    thread = threading.Thread(target=w.run, args=(stop,), kwargs={"interval": 0.2})
    thread.start()
    deadline = time.monotonic() + 10
    while not visio_days(engine) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()  # what SIGINT / SIGTERM do in the CLI
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert (tmp_path / "watch.rejects.txt").read_text().splitlines() == [
        f"{log}:1: unknown SID {stranger}",
        f"{log}:2: not a JSON object (Expecting value: line 1 column 1 (char 0))",
    ]
    assert visio_days(engine) == [("alice@corp.example", "2026-10-05", 1)]
