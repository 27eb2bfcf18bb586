"""Bad input, generated: whatever bytes a usage file holds, the import either refuses
the file with a message naming it, or keeps every good row and rejects every bad one
by FILE:LINE — it never crashes and never loses a good row."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from reclaim.services.usage_import import import_usage_file
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.tables import usage_daily
from reclaim.usage_sources.files import FileFormatError

SERIAL = itertools.count()
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
HEADER = "user,app,timestamp,seconds"

good_csv = st.builds(
    lambda u, a, day, secs: f"u{u}@corp.example,{a},2026-11-{day:02d}T09:00:00Z,{secs}",
    st.integers(0, 5),
    st.sampled_from(["VISIO.EXE", "Miro", "Tableau"]),
    st.integers(1, 27),
    st.integers(1, 3600),
)
# Rows that must be rejected: each breaks one rule the validator states.
bad_csv = st.one_of(
    st.just("only-one-field"),
    st.builds(lambda s: f"u@corp.example,VISIO.EXE,not-a-date-{s},60", st.integers(0, 9)),
    st.just("u@corp.example,VISIO.EXE,2026-11-01T09:00:00Z,-5"),
    st.just(",VISIO.EXE,2026-11-01T09:00:00Z,60"),
    st.just("u@corp.example,VISIO.EXE,2031-01-01T00:00:00Z,60"),  # years in the future
    st.just("u@corp.example,VISIO.EXE,2026-11-01T09:00:00Z,99999999"),
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-files")


@pytest.fixture(scope="module")
def engine(workdir: Path) -> Engine:
    """One store for all examples (migrating one per example would dominate the run);
    each example compares roll-up totals before and after its own import."""
    eng = make_engine(f"sqlite:///{workdir / 'store.db'}")
    upgrade(eng)
    return eng


def total_seconds(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.coalesce(func.sum(usage_daily.c.seconds), 0))).scalar_one()
        )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(st.booleans(), st.data()), min_size=1, max_size=25),
    crlf=st.booleans(),
    bom=st.booleans(),
)
def test_mixed_rows_keep_the_good_and_name_the_bad(
    workdir: Path, engine: Engine, rows: list[tuple[bool, st.DataObject]], crlf: bool, bom: bool
) -> None:
    lines: list[str] = []
    bad_lines: list[int] = []
    good_seconds = 0
    for good, data in rows:
        lines.append(data.draw(good_csv if good else bad_csv))
        if good:
            good_seconds += int(lines[-1].rsplit(",", 1)[1])
        else:
            bad_lines.append(len(lines) + 1)  # +1: the header is line 1
    eol = "\r\n" if crlf else "\n"
    # One more good row, unique to this example, so no file is skipped as a re-import.
    serial = next(SERIAL)
    lines.append(f"serial{serial}@corp.example,Miro,2026-11-01T09:00:00Z,1")
    good_seconds += 1
    text = HEADER + eol + eol.join(lines) + eol
    path = workdir / f"f{serial}.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    before = total_seconds(engine)

    report = import_usage_file(engine, path, now=NOW, report_dir=workdir)

    assert report.rows_accepted == len(lines) - len(bad_lines)
    assert report.rows_rejected == len(bad_lines)
    if bad_lines:
        assert report.rejects_file is not None
        rejected = Path(report.rejects_file).read_text()
        found = [int(m) for m in re.findall(rf"{re.escape(str(path))}:(\d+):", rejected)]
        assert sorted(found) == bad_lines
    assert report.status == "imported"
    assert total_seconds(engine) - before == good_seconds


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    blob=st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=40).map(lambda b: HEADER.encode() + b"\n" + b + b"\x00\xff\n"),
        st.text(max_size=300).map(str.encode),
        st.integers(1, 300_000).map(lambda n: HEADER.encode() + b"\n" + b"x" * n + b"\n"),
        st.recursive(st.just(1), lambda c: st.lists(c, max_size=2), max_leaves=30).map(
            lambda v: json.dumps({"user": v}).encode() + b"\n"
        ),
    ),
    fmt=st.sampled_from(["csv", "ndjson"]),
)
def test_arbitrary_bytes_never_crash_the_import(
    workdir: Path, engine: Engine, blob: bytes, fmt: str
) -> None:
    path = workdir / f"b{next(SERIAL)}.{fmt}"
    path.write_bytes(blob)
    before = total_seconds(engine)
    refused: FileFormatError | None = None
    try:
        report = import_usage_file(engine, path, now=NOW, report_dir=workdir, fmt=fmt)
    except FileFormatError as exc:
        refused = exc
    added = total_seconds(engine) - before
    if refused is not None:
        assert str(path) in str(refused)  # the message names the file
        assert added == 0  # and a refused file wrote nothing
    else:
        assert (added > 0) <= (report.rows_accepted > 0)  # nothing from rejected rows
