"""Epoch-second timestamps (osquery's) take the fast path; other spellings still parse."""

from __future__ import annotations

import polars as pl

from reclaim.usage_sources.events import validate

NOW = 1_800_000_000


def test_epoch_seconds_and_mixed_spellings() -> None:
    raw = pl.DataFrame(
        {
            "user": ["a@x.test"] * 4,
            "app": ["X"] * 4,
            "timestamp": ["1791186000", " 1791186001 ", "2026-10-01T00:00:00Z", "soon"],
            "line": [1, 2, 3, 4],
        }
    )
    checked = validate(raw, now=NOW)
    assert checked.events["ts"].to_list() == [1_791_186_000, 1_791_186_001, 1_790_812_800]
    assert checked.rejects.rows() == [(4, "unparsable timestamp 'soon'")]


def test_dates_only_still_work() -> None:
    raw = pl.DataFrame({"user": ["a@x.test"], "app": ["X"], "date": ["2026-10-01"], "line": [1]})
    assert validate(raw, now=NOW).events["ts"].to_list() == [1_790_812_800]
