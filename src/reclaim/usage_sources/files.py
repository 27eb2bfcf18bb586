"""Reading usage files (CSV, NDJSON) in bounded chunks, keeping each row's line number.

A file is read in blocks of about ``chunk_bytes`` cut at line ends, so memory stays
bounded however large the file is. Each block is parsed by polars with every column
as text; checking and converting happens in ``events.validate``. Records are one per
line (no line breaks inside quoted fields): that is what lets a block start anywhere
and still name the exact line of a bad row.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from reclaim.usage_sources.events import RAW_COLUMNS, USED_COLUMNS

FORMATS = ("csv", "ndjson")
_NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".json")


class Digest(Protocol):
    """What a hashlib object offers that we use."""

    def update(self, data: bytes, /) -> None: ...  # pragma: no cover


class FileFormatError(ValueError):
    """The file is not what its format says; nothing from it is imported."""


@dataclass(frozen=True)
class RawChunk:
    """One block of a file: rows as text columns plus ``line``, and rows unreadable as such."""

    frame: pl.DataFrame
    malformed: list[tuple[int, str]]  # (line, reason) for lines that are not records at all
    bytes_read: int


def guess_format(path: Path) -> str:
    """Pick a format from the file name: .ndjson/.jsonl/.json → ndjson, else csv."""
    return "ndjson" if path.suffix.lower() in _NDJSON_SUFFIXES else "csv"


def iter_blocks(
    path: Path, chunk_bytes: int, *, skip: int = 0, digest: Digest | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield (first line number, bytes) blocks that end at a line end.

    ``digest``, if given, is fed every byte of the file (the skipped header included),
    so the file's hash costs no second read.
    """
    line = 1
    with path.open("rb") as fh:
        if skip:
            head = fh.read(skip)
            if digest is not None:
                digest.update(head)
            line = 2
        while block := fh.read(chunk_bytes):
            if not block.endswith(b"\n"):
                # Finish the block's last line: one copy of the block, where cutting
                # it at its last line end and carrying the rest over took two
                # (memory copies that hold the GIL, ~10 ms a 12 MiB block).
                block += fh.readline()
            if digest is not None:
                digest.update(block)
            yield line, block
            line += _count_newlines(block)


def _count_newlines(block: bytes, piece: int = 1 << 20) -> int:
    """``block.count(b"\\n")``, ~2.5x faster and without holding the GIL (which
    bytes.count held ~10 ms a block while the import's other threads waited).
    By pieces: a whole-block comparison allocates, and faults in, a block-sized
    temporary."""
    arr = np.frombuffer(block, dtype=np.uint8)
    return sum(int(np.count_nonzero(arr[i : i + piece] == 10)) for i in range(0, len(arr), piece))


def _line_numbers(block: bytes, first_line: int) -> np.ndarray:
    """Line numbers of the non-blank lines of ``block``, in order."""
    arr = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(arr == 10)
    if len(ends) == 0 or ends[-1] != len(arr) - 1:
        ends = np.append(ends, len(arr))
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    # A line holding only "\r" (CRLF blank line) is blank too.
    blank = (lengths == 0) | ((lengths == 1) & (arr[np.minimum(starts, len(arr) - 1)] == 13))
    return np.flatnonzero(~blank) + first_line


def read_csv_header(path: Path) -> tuple[list[str], int]:
    """Return the header's column names and its length in bytes; refuse a non-usage CSV."""
    with path.open("rb") as fh:
        first = fh.readline(1 << 16)
    if not first:
        raise FileFormatError(f"{path}: the file is empty (expected a CSV header line)")
    try:
        text = first.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise FileFormatError(f"{path}:1: not UTF-8 text, so not a usage CSV") from None
    if text.startswith(("{", "[")):
        raise FileFormatError(f"{path}:1: this looks like JSON, not CSV (use --format ndjson)")
    names = [c.strip().strip('"').lower() for c in text.split(",")]
    unknown = [n for n in names if n not in RAW_COLUMNS]
    missing = [n for n in ("user", "app") if n not in names]
    if missing or not ({"timestamp", "date"} & set(names)):
        need = missing + ([] if {"timestamp", "date"} & set(names) else ["timestamp or date"])
        raise FileFormatError(
            f"{path}:1: not a usage CSV: the header lacks {', '.join(need)} "
            f"(found: {', '.join(names)}; expected user,app,timestamp|date[,seconds][,device])"
        )
    if unknown:
        raise FileFormatError(
            f"{path}:1: unknown column(s) {', '.join(unknown)} (known: {', '.join(RAW_COLUMNS)})"
        )
    return names, len(first)


def csv_chunks(path: Path, chunk_bytes: int, digest: Digest | None = None) -> Iterator[RawChunk]:
    """Parse a usage CSV block by block."""
    names, header_len = read_csv_header(path)
    # Only the columns roll-ups use are parsed ("device" is accepted, not stored yet):
    # skipping one string column saves a good share of the parse.
    wanted = [i for i, n in enumerate(names) if n in USED_COLUMNS]
    for first_line, block in iter_blocks(path, chunk_bytes, skip=header_len, digest=digest):
        try:
            frame = _read_csv_block(block, names, wanted)
        except pl.exceptions.PolarsError as exc:
            raise FileFormatError(f"{path}:{first_line}: cannot be read as CSV ({exc})") from None
        lines = np.arange(first_line, first_line + frame.height, dtype=np.int64)
        frame = frame.with_columns(pl.Series("line", lines))
        # Rows where every field is empty are blank lines: nothing to import or report.
        # Filtered only when there are some: a filter copies every column (measured
        # ~30 MB of peak memory on a 12 MiB block).
        blank = pl.all_horizontal(pl.col(n).is_null() for n in frame.columns if n != "line")
        if frame.select(blank.any()).item():
            frame = frame.filter(~blank)
        yield RawChunk(frame=frame, malformed=[], bytes_read=len(block))


def _read_csv_block(block: bytes, names: list[str], wanted: list[int]) -> pl.DataFrame:
    """The ``wanted`` columns of a block of CSV records (no header), all as text."""
    options: dict[str, Any] = {
        "has_header": False,
        "columns": wanted,
        "truncate_ragged_lines": True,
        "quote_char": '"',
        "encoding": "utf8-lossy",
    }
    try:
        return pl.read_csv(io.BytesIO(block), new_columns=names, infer_schema=False, **options)
    except pl.exceptions.PolarsError:
        # polars takes the column count from the block's first row: a short first row
        # ("only-one-field") fails the whole block. Read it again with the header's
        # schema, which pads short rows (that read measured ~15% slower, so only when
        # needed).
        return pl.read_csv(
            io.BytesIO(block),
            schema=dict.fromkeys(names, pl.String),
            missing_columns="insert",
            **options,
        )


def _ndjson_slow(block: bytes, first_line: int) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """Line by line, for a block polars refused: find the bad lines, keep the good ones."""
    rows: dict[str, list[object]] = {c: [] for c in (*RAW_COLUMNS, "line")}
    bad: list[tuple[int, str]] = []
    for offset, raw in enumerate(block.split(b"\n")):
        line_no = first_line + offset
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            bad.append((line_no, f"not a JSON object ({str(exc)[:60]})"))
            continue
        if not isinstance(obj, dict):
            bad.append((line_no, "not a JSON object"))
            continue
        for c in RAW_COLUMNS:
            v = obj.get(c)
            rows[c].append(None if v is None else str(v))
        rows["line"].append(line_no)
    frame = pl.DataFrame(rows, schema={**{c: pl.String for c in RAW_COLUMNS}, "line": pl.Int64})
    return frame, bad


def ndjson_chunks(path: Path, chunk_bytes: int, digest: Digest | None = None) -> Iterator[RawChunk]:
    """Parse NDJSON block by block; a block with a bad line is re-read line by line."""
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    if head and not head.startswith(b"{"):
        raise FileFormatError(
            f"{path}:1: not NDJSON: the first record does not start with '{{' "
            "(is it a CSV? use --format csv)"
        )
    schema = {c: pl.String for c in RAW_COLUMNS}
    for first_line, block in iter_blocks(path, chunk_bytes, digest=digest):
        if first_line == 1:
            block = block.removeprefix(b"\xef\xbb\xbf")
        malformed: list[tuple[int, str]] = []
        try:
            frame = pl.read_ndjson(io.BytesIO(block), schema=schema, ignore_errors=False)
            lines = _line_numbers(block, first_line)
            if len(lines) != frame.height:
                raise ValueError("line count mismatch")
            frame = frame.with_columns(pl.Series("line", lines))
        except (pl.exceptions.PolarsError, ValueError):
            frame, malformed = _ndjson_slow(block, first_line)
        yield RawChunk(frame=frame, malformed=malformed, bytes_read=len(block))


def read_chunks(
    path: Path, fmt: str, chunk_bytes: int, digest: Digest | None = None
) -> Iterator[RawChunk]:
    """Chunks of ``path`` read as ``fmt`` (csv or ndjson), feeding ``digest`` as it reads."""
    if fmt == "csv":
        return csv_chunks(path, chunk_bytes, digest)
    if fmt == "ndjson":
        return ndjson_chunks(path, chunk_bytes, digest)
    raise FileFormatError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
