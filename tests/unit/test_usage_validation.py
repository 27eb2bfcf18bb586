"""Row validation: every row ends up either imported or rejected with a reason — never lost."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.usage_sources.events import RAW_COLUMNS, validate

NOW = 1_800_000_000

cell = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "2026-10-01",
            "2026-10-01T09:00:00Z",
            "2026-10-01 09:00:00",
            "1790000000",
            "-5",
            "60",
            "1e9",
            "NaN",
            "x@y.test",
            "VISIO.EXE",
        ]
    ),
)
row = st.fixed_dictionaries({c: cell for c in RAW_COLUMNS})


@settings(max_examples=300, deadline=None)
@given(st.lists(row, min_size=1, max_size=30))
def test_every_row_is_kept_or_rejected_exactly_once(rows: list[dict[str, str | None]]) -> None:
    frame = pl.DataFrame(rows, schema={c: pl.String for c in RAW_COLUMNS}).with_row_index(
        "line", offset=2
    )
    checked = validate(frame, now=NOW)
    assert checked.events.height + checked.rejects.height == frame.height
    assert checked.rejects.get_column("reason").null_count() == 0
    assert all(r for r in checked.rejects.get_column("reason").to_list())
    if checked.events.height:
        assert checked.events.get_column("seconds").min() >= 0  # type: ignore[operator]
        assert checked.events.get_column("ts").max() <= NOW + 86_400  # type: ignore[operator]


def test_reasons_for_each_rule() -> None:
    frame = pl.DataFrame(
        {
            "user": ["a", None, "c", "d", "e", "f", "g", "h", "i"],
            "app": ["x", "x", None, "x", "x", "x", "x", "x", "x"],
            "timestamp": [
                "2026-10-01T00:00:00Z",
                "2026-10-01T00:00:00Z",
                "2026-10-01T00:00:00Z",
                None,
                "soon",
                None,
                "2030-01-01T00:00:00Z",
                "2026-10-01T00:00:00Z",
                "2026-10-01T00:00:00Z",
            ],
            "date": [None, None, None, None, None, "01/10/2026", None, None, None],
            "seconds": ["1", "1", "1", "1", "1", "1", "1", "-1", "90000"],
            "device": [None] * 9,
        }
    ).with_row_index("line", offset=2)
    reasons = dict(validate(frame, now=NOW).rejects.iter_rows())
    assert reasons == {
        3: "missing user",
        4: "missing app",
        5: "missing timestamp (or date)",
        6: "unparsable timestamp 'soon'",
        7: "unparsable date '01/10/2026' (expected YYYY-MM-DD)",
        8: "timestamp is in the future '2030-01-01T00:00:00Z'",
        9: "negative seconds '-1'",
        10: "seconds over one day '90000'",
    }
