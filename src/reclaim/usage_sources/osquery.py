"""Reading osquery result logs: every format the filesystem logger writes, as flat rows.

One JSON object per line, in any mix of:

- **event** (differential, the default): ``{"name", "hostIdentifier", "unixTime",
  "action": "added" | "removed", "columns": {...}}``, one row per line;
- **snapshot**: ``{"action": "snapshot", "snapshot": [{...}, ...]}``, a whole result
  set per line (``logger_snapshot_event_type`` instead gives one ``columns`` row per
  line with ``"action": "snapshot"``; both are read);
- **batch** (``--logger_event_type=false``): ``{"diffResults": {"added": [...],
  "removed": [...]}}``.

``removed`` rows are the state that went away; what replaced it comes as ``added``, so
they are skipped without being parsed. Values may be strings (the default) or numbers
(``--logger_numerics``); both are read as text. Decorations are not read: the pack's
queries carry the user in their own columns. A line that is not JSON, or JSON that is
not a query result, is reported with its line number; a last line cut short mid-record
(the logger was writing) is reported as such.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import polars as pl

from reclaim.usage_sources.files import _line_numbers
from reclaim.usage_sources.osquery_pack import QUERIES, ROW_COLUMNS

Schema = dict[str, pl.DataType]
_HEAD: Schema = {"name": pl.String(), "unixTime": pl.String()}
# What :func:`parse_block` returns: where the row came from, then the row's columns.
# (``hostIdentifier`` is not read: nothing stores the device yet, and every field read
# costs parse time.)
ROW_SCHEMA = {
    "line": pl.Int64,
    "query": pl.String,
    "seen": pl.String,  # unixTime of the log line: when osquery produced the row
    **{c: pl.String for c in ROW_COLUMNS},
}
_OUT = [pl.col("line"), pl.col("name").alias("query"), pl.col("unixTime").alias("seen")]
_QUERY_COLUMNS = [
    (
        f'{name}"'.encode(),  # the end of a logged name: "pack_x_<name>"
        [c for c in ROW_COLUMNS if c in (q.time_column, *q.app_columns, *q.sid_columns)]
        + [c for c in q.account_columns if c in ROW_COLUMNS],
    )
    for name, q in QUERIES.items()
]


@dataclass(frozen=True)
class ParsedBlock:
    """The rows of a block of log lines, and the lines that could not be read."""

    rows: pl.DataFrame  # ROW_SCHEMA
    malformed: list[tuple[int, str]]  # (line, reason)
    lines: int  # non-blank lines in the block


def _row_type(block: bytes) -> pl.Struct:
    """The row struct for this block: the columns of the pack's queries found in it.

    The reader's time grows with every struct field asked for (measured ~2x between
    five and ten), and a Windows log never holds the macOS columns. A query name found
    in some value only adds fields; a query present is never left out.
    """
    present = [c for name, cols in _QUERY_COLUMNS if name in block for c in cols]
    return pl.Struct({c: pl.String for c in dict.fromkeys(present)} or {"sid": pl.String()})


def parse_block(block: bytes, first_line: int, *, incomplete_tail: bool = False) -> ParsedBlock:
    """Flatten one block of whole lines (``first_line`` is the block's first line number).

    Every line is read with the event schema (one ``columns`` row), which polars reads
    fast; lines of the list formats (``snapshot``, ``diffResults``) come out without
    ``columns`` and are decoded again from their text with the list schema: asking the
    block reader for list columns instead slows every line down (measured 2-4x).

    ``incomplete_tail``: the block's last line had no line end when the file ended,
    so if it does not parse it was cut short rather than malformed.
    """
    lines = _line_numbers(block, first_line)
    total, original = len(lines), block
    row = _row_type(block)
    schema: Schema = {**_HEAD, "action": pl.String(), "columns": row}
    try:
        frame = pl.read_ndjson(io.BytesIO(block), schema=schema)
        if frame.height != len(lines):
            raise ValueError("line count mismatch")
        malformed: list[tuple[int, str]] = []
    except (pl.exceptions.PolarsError, ValueError):
        block, good, malformed = _good_lines(block, first_line, incomplete_tail=incomplete_tail)
        lines = np.array(good, dtype=np.int64)
        frame = pl.read_ndjson(io.BytesIO(block), schema=schema)
    frame = frame.with_columns(pl.Series("line", lines, dtype=pl.Int64))
    named = pl.col("name").is_not_null() & (pl.col("name") != "")
    unnamed = frame.filter(~named)
    malformed += [(int(n), "not an osquery result (no query name)") for n in unnamed["line"]]
    frame = frame.filter(named)
    flat = frame.filter(
        pl.col("columns").is_not_null()
        & (pl.col("action").is_null() | (pl.col("action") != "removed"))
    ).select(*_OUT, pl.col("columns").alias("row"))
    if b'"snapshot"' in original or b'"diffResults"' in original:
        listed = frame.filter(pl.col("columns").is_null())
        flat = pl.concat([flat, _list_rows(original, first_line, listed, row)])
        flat = flat.sort("line", maintain_order=True)
    rows = flat.filter(pl.col("row").is_not_null()).unnest("row")
    missing = [pl.lit(None, dtype=pl.String).alias(c) for c in ROW_COLUMNS if c not in rows.columns]
    rows = rows.with_columns(missing).select(list(ROW_SCHEMA))
    return ParsedBlock(rows=rows, malformed=malformed, lines=total)


def _list_rows(block: bytes, first_line: int, listed: pl.DataFrame, row: pl.Struct) -> pl.DataFrame:
    """Rows of the snapshot and batch lines among ``listed`` (lines without "columns")."""
    numbers = listed.get_column("line").to_list()
    if not numbers:
        return listed.select(*_OUT, pl.lit(None, dtype=row).alias("row"))
    # Slice just those lines out of the block (splitting all of it costs more).
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    starts = np.concatenate(([0], ends + 1))
    ends = np.append(ends, len(block))
    picked = [block[starts[n - first_line] : ends[n - first_line]] for n in numbers]
    text = pl.Series(picked, dtype=pl.Binary).cast(pl.String)
    # Only the lists: name and time are known from the first pass (decoding them again
    # measured 2x slower).
    lists = {"snapshot": pl.List(row), "diffResults": pl.Struct({"added": pl.List(row)})}
    list_type = pl.Struct(lists)
    decoded = pl.concat(
        [listed.select(*_OUT), text.str.json_decode(list_type).to_frame("v").unnest("v")],
        how="horizontal",
    )
    snap = decoded.select("line", "query", "seen", pl.col("snapshot").alias("row")).explode("row")
    added = decoded.select(
        "line", "query", "seen", pl.col("diffResults").struct.field("added").alias("row")
    )
    return pl.concat([snap, added.explode("row")])


def _good_lines(
    block: bytes, first_line: int, *, incomplete_tail: bool
) -> tuple[bytes, list[int], list[tuple[int, str]]]:
    """The block without its unreadable lines (slow path: one line at a time)."""
    keep: list[bytes] = []
    numbers: list[int] = []
    bad: list[tuple[int, str]] = []
    raw_lines = block.split(b"\n")
    last = max((i for i, r in enumerate(raw_lines) if r.strip()), default=-1)
    for offset, raw in enumerate(raw_lines):
        if not raw.strip():
            continue
        line_no = first_line + offset
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            if incomplete_tail and offset == last:
                bad.append((line_no, "incomplete last line (the log ends mid-record)"))
            else:
                bad.append((line_no, f"not a JSON object ({str(exc)[:60]})"))
            continue
        if not isinstance(obj, dict):
            bad.append((line_no, "not a JSON object"))
            continue
        keep.append(raw)
        numbers.append(line_no)
    return b"\n".join(keep) + b"\n", numbers, bad


def empty_rows() -> pl.DataFrame:
    """A frame with no rows and :data:`ROW_SCHEMA`."""
    return pl.DataFrame(schema=ROW_SCHEMA)
