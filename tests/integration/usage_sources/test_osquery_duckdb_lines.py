"""Line numbers from DuckDB's parallel scan of a log tens of megabytes long.

DuckDB reads a large file in pieces on several threads; the rejects file must still name
the right line for every refused row. The reference is the block reader, which counts
lines itself: both read the same generated log (the benchmark's generator, with some
devices' users missing from the directory, so their rows are refused all through the
file), with and without blank and garbage lines, and must write the same rejects.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from bench.datagen import OSQUERY_DOMAIN_SID, write_osquery_log
from sqlalchemy import Engine

from reclaim.services.identities_import import import_identities
from reclaim.services.osquery_import import import_osquery_file
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.usage_sources.app_aliases import AppMatcher

LINES, DEVICES = 100_000, 500  # ~47 MB
NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)  # the day after the generated month
APPS = AppMatcher([["Microsoft Visio", r"*\Office16\VISIO.EXE"]])


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("osquery-lines")
    plain = write_osquery_log(work / "plain.log", lines=LINES, devices=DEVICES)
    # Every 997th line gets a blank line before it, every 1999th a garbage line after.
    out = []
    for n, line in enumerate(plain.read_bytes().splitlines(keepends=True), start=1):
        out.append(b"\n" if n % 997 == 0 else b"")
        out.append(line)
        out.append(b'{"name": "cut short\n' if n % 1999 == 0 else b"")
    mixed = work / "mixed.log"
    mixed.write_bytes(b"".join(out))
    ids = work / "identities.csv"
    # One device in 25 has a user the directory does not know.
    rows = [f"user{i}@corp.example.test,{OSQUERY_DOMAIN_SID}-{i + 1000}" for i in range(DEVICES)]
    ids.write_text("upn,sid\n" + "\n".join(r for i, r in enumerate(rows) if i % 25) + "\n")
    return {"plain": plain, "mixed": mixed, "identities": ids}


def _store(tmp_path: Path, name: str, identities: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / name}.db")
    upgrade(engine)
    import_identities(engine, identities, now=NOW)
    return engine


@pytest.mark.parametrize(("log", "duckdb_reader"), [("plain", "records"), ("mixed", "lines")])
def test_rejects_name_the_same_lines_as_the_block_reader(
    tmp_path: Path, logs: dict[str, Path], log: str, duckdb_reader: str
) -> None:
    results = {}
    for reader in ("blocks", "duckdb"):
        report = import_osquery_file(
            _store(tmp_path, reader, logs["identities"]),
            logs[log],
            now=NOW,
            apps=APPS,
            report_dir=tmp_path / reader,
            reader=reader,
        )
        rejects = Path(report.rejects_file or "").read_text().splitlines()
        results[reader] = (report, rejects)
    (blocks, block_rejects), (duck, duck_rejects) = results["blocks"], results["duckdb"]
    assert duck.reader == f"duckdb-{duckdb_reader}"
    assert len(block_rejects) > 2_000  # refused rows all through the file
    assert duck_rejects == block_rejects
    assert (duck.lines, duck.rows_rejected, duck.unknown_sids) == (
        blocks.lines,
        blocks.rows_rejected,
        blocks.unknown_sids,
    )
    # Small batches of the block reader may count a re-logged time once more than one
    # batch over the whole file (store.recorded_uses); days and last uses are the same.
    assert duck.events + duck.repeats == blocks.events + blocks.repeats
