"""Generated logs, good lines and garbage mixed: the DuckDB reader and the block reader
give the same roll-ups, figures and rejects (line numbers included) — or DuckDB
declines the file, for a reason it names, and the importer reads it block by block."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reclaim.usage_sources.osquery_duckdb import ScanRefused
from tests.integration.usage_sources.test_osquery_readers_agree import (
    GARBAGE,
    assert_same,
    every_kind_of_line,
    imported,
    store,
)

GOOD = every_kind_of_line()

lines = st.one_of(
    st.sampled_from(GOOD),
    st.sampled_from(GARBAGE),
    st.just(""),
    st.text(min_size=1, max_size=40).filter(lambda t: "\n" not in t and "\r" not in t),
    st.sampled_from(GOOD).map(lambda line: line[: len(line) // 2]),  # cut short
)


def _duckdb_may_decline(data: bytes) -> bool:
    """What DuckDB's line reader cannot split into lines it can number."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return b"\r" in data or b"\x01" in data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.sampled_from(GOOD),  # a log that does not start with an object is refused
    body=st.lists(lines, max_size=25),
    crlf=st.booleans(),
    final_newline=st.booleans(),
)
def test_duckdb_and_block_readers_agree(
    first: str, body: list[str], crlf: bool, final_newline: bool
) -> None:
    eol = "\r\n" if crlf else "\n"
    text = eol.join([first, *body]) + (eol if final_newline else "")
    data = text.encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "osqueryd.results.log"
        path.write_bytes(data)
        blocks = imported(store(work, "blocks"), path, "blocks", work / "reports-blocks")
        try:
            duck = imported(store(work, "duckdb"), path, "duckdb", work / "reports-duckdb")
        except ScanRefused:
            assert _duckdb_may_decline(data), data
            return
        assert_same(blocks, duck)
