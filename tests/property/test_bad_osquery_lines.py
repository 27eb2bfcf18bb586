"""Bad input, generated: whatever lines an osquery result log holds, every good line
becomes its rows and every other non-blank line is reported by number — no crash."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.usage_sources.osquery import parse_block
from tests.unit.usage_sources.osquery_lines import T0, event

UA = {"path": r"C:\Apps\VISIO.EXE", "last_execution_time": T0 - 600, "count": 3, "sid": "S-1"}
GOOD = event("reclaim_userassist", UA)

garbage = st.one_of(
    st.text(min_size=1, max_size=80).filter(
        lambda t: t.strip() and "\n" not in t and "\r" not in t
    ),
    st.just("[1, 2]"),
    st.just('{"hostIdentifier": "x"}'),
    st.just("\x00\x00\x00"),
    st.integers(1, 50_000).map(lambda n: '{"name": "' + "x" * n),  # huge, cut short
    st.recursive(st.just(1), lambda c: st.lists(c, max_size=2), max_leaves=40).map(json.dumps),
)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.one_of(st.just(GOOD), garbage), min_size=1, max_size=30),
    crlf=st.booleans(),
)
def test_good_lines_give_rows_and_every_other_line_is_named(lines: list[str], crlf: bool) -> None:
    eol = "\r\n" if crlf else "\n"
    block = (eol.join(lines) + eol).encode("utf-8", "surrogatepass")

    parsed = parse_block(block, 1)

    good = [n for n, line in enumerate(lines, start=1) if line == GOOD]
    assert sorted(set(parsed.rows["line"].to_list())) == good
    assert len(parsed.rows) == len(good)
    named = {line for line, _reason in parsed.malformed}
    bad = {n for n, line in enumerate(lines, start=1) if line != GOOD}
    assert named == bad
    assert all(reason for _line, reason in parsed.malformed)
