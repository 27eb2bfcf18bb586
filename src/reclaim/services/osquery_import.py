"""Importing an osquery result log (filesystem logger JSON lines) as one transaction.

Same guarantees as a CSV/NDJSON import (``usage_import``): one transaction per file
(started over, up to ``DEADLOCK_TRIES`` times, when PostgreSQL rolls it back to break a
deadlock with another uploader), the same bytes twice are skipped (SHA-256), bad lines
are reported as ``FILE:LINE: reason`` in a rejects file beside a JSON summary, good
lines are kept.
Beyond that, a file that overlaps one imported before (the same log re-read after it
grew, or rotated copies) adds nothing twice: last-used times already recorded are
repeats (``store.recorded_uses``) and observed days OR together.

Two readers (``reader=``): files from :data:`DUCKDB_MIN_BYTES` up go through DuckDB
(``osquery_bulk``: one parallel scan, then set-based work; bench/README.md has the
figures), the rest block by block with polars
(:class:`OsqueryBatches`, shared with watch mode). Both give the same roll-ups, figures
and rejects; a file DuckDB cannot number the lines of is read block by block.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TextIO, TypeVar

import polars as pl
from sqlalchemy import Connection, Engine, select

from reclaim.services.osquery_bulk import import_scanned, scan_file
from reclaim.services.usage_import import (
    DEFAULT_CHUNK_BYTES,
    REJECTS_SHOWN,
    DuplicateFile,
    ImportReport,
    finish_report,
    run_with_retries,
)
from reclaim.services.usage_import import file_sha256 as _file_sha256
from reclaim.services.usage_writes import UsageWriter, WriteCounts, write_batch
from reclaim.store.identities import StoreDirectory
from reclaim.store.tables import imports
from reclaim.usage_sources.app_aliases import AppMatcher
from reclaim.usage_sources.files import Digest, FileFormatError, iter_blocks
from reclaim.usage_sources.osquery import ParsedBlock, parse_block
from reclaim.usage_sources.osquery_duckdb import ScanRefused
from reclaim.usage_sources.osquery_mapping import OsqueryMapper
from reclaim.usage_sources.osquery_source import KIND, OsqueryLogSource

BATCH_ROWS = 64_000  # rows mapped and written together (see _batched)
# The DuckDB reader pays a fixed start-up (its database, a query per look-up table) that
# only larger files win back; below this the block reader is as fast.
DUCKDB_MIN_BYTES = 16 << 20
DUCKDB_THREADS = 2  # the reference machine's cores
# DuckDB's own memory (it spills to its temporary folder beyond): with Python, polars and
# the roll-ups being written, the import stays within 500 MB peak RSS.
DUCKDB_MEMORY = "160MB"
READERS = ("auto", "duckdb", "blocks")
log = logging.getLogger("reclaim.usage.osquery")
TOP_UNKNOWN = 20  # unknown SIDs / query names listed in a report (all are counted)

Progress = Callable[[int, int], None]
T = TypeVar("T")


@dataclass
class OsqueryImportReport(ImportReport):
    """An import report with what osquery logs add: lines, repeats, skipped rows."""

    lines: int = 0
    events: int = 0  # new moments of use (rows_accepted also counts repeats, observations)
    repeats: int = 0
    observations: int = 0
    machine_accounts: int = 0
    never_used: int = 0
    unknown_queries: dict[str, int] = field(default_factory=dict)
    unknown_sids: dict[str, int] = field(default_factory=dict)
    unknown_accounts: dict[str, int] = field(default_factory=dict)
    # How the file was read: "blocks" (polars, a block at a time), or DuckDB's
    # "duckdb-records" (its NDJSON reader) or "duckdb-lines" (line by line as text).
    reader: str = ""


class OsqueryBatches:
    """Parse → map (SIDs, aliases) → check → write, a block of lines at a time, in the
    caller's transaction; keeps the mapper's and the writer's caches between blocks."""

    def __init__(self, *, source: str, apps: AppMatcher, now_s: int) -> None:
        self.writer = UsageWriter(source=source, kind=KIND, now_s=now_s)
        self.apps = apps
        self.mapper: OsqueryMapper | None = None

    def process(
        self,
        conn: Connection,
        block: bytes,
        first_line: int,
        *,
        where: str,
        incomplete_tail: bool = False,
    ) -> tuple[WriteCounts, list[tuple[int, str]], int]:
        """Write one block of lines: (counts, rejects, lines read)."""
        parsed = parse_block(block, first_line, incomplete_tail=incomplete_tail)
        return self.write(conn, parsed, where=where)

    def write(
        self, conn: Connection, parsed: ParsedBlock, *, where: str
    ) -> tuple[WriteCounts, list[tuple[int, str]], int]:
        """Write an already parsed block (see :meth:`process`)."""
        source = OsqueryLogSource([parsed], self.mapper_for(conn), where=where)
        (batch,) = source.batches(lambda key: None)
        counts, rejects = write_batch(conn, self.writer, batch)
        return counts, rejects, batch.lines

    def mapper_for(self, conn: Connection) -> OsqueryMapper:
        """The mapper, reading identities through ``conn``: what was known stays cached,
        SIDs unknown so far are asked again (they may have been imported since)."""
        if self.mapper is not None and self.mapper.directory_conn is conn:
            return self.mapper
        mapper = OsqueryMapper(directory=StoreDirectory(conn), apps=self.apps)
        if self.mapper is not None:
            mapper.stats = self.mapper.stats
            mapper.keep_known(self.mapper)
        mapper.directory_conn = conn
        self.mapper = mapper
        return mapper

    def at(self, now_s: int) -> None:
        """Move the clock on (watch mode runs for days)."""
        self.writer.now_s = now_s

    def forget(self) -> None:
        """After a rollback: cached ids and recorded uses may be gone."""
        self.writer.forget()
        self.mapper = None


def _parsed_blocks(
    path: Path, chunk_bytes: int, digest: Digest
) -> Iterator[tuple[int, ParsedBlock]]:
    """(bytes read, parsed block) for each block of the file, feeding ``digest``."""
    for first_line, block in iter_blocks(path, chunk_bytes, digest=digest):
        tail = not block.endswith(b"\n")  # the file ends mid-line
        yield len(block), parse_block(block, first_line, incomplete_tail=tail)


def _batched(
    blocks: Iterator[tuple[int, ParsedBlock]], *, min_rows: int
) -> Iterator[tuple[int, ParsedBlock]]:
    """Parsed blocks merged until they hold ``min_rows`` rows: mapping and writing cost
    a few milliseconds per call whatever the size, so fewer, larger batches are cheaper
    (measured ~1.6x at 70,000 rows against 17,000), while parsing stays in small blocks."""
    size, parts = 0, []
    for read, parsed in blocks:
        size += read
        parts.append(parsed)
        if sum(p.rows.height for p in parts) >= min_rows:
            yield size, _merge(parts)
            size, parts = 0, []
    if parts:
        yield size, _merge(parts)


def _merge(parts: list[ParsedBlock]) -> ParsedBlock:
    if len(parts) == 1:
        return parts[0]
    return ParsedBlock(
        rows=pl.concat([p.rows for p in parts]),
        malformed=[m for p in parts for m in p.malformed],
        lines=sum(p.lines for p in parts),
    )


def _ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, produced by a thread up to ``depth`` ahead of the consumer.

    Parsing is polars work that runs without the GIL, so on two cores it overlaps
    with the mapping and database writes of the block before (the file import's
    reader/writer split, in small).
    """
    out: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        out.put(("item", item), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            out.put(("error", exc))

    thread = threading.Thread(target=produce, name="osquery-parse", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = out.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                out.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)


def _prior_import(conn: Connection, sha: str) -> str | None:
    row = conn.execute(
        select(imports.c.id, imports.c.finished).where(imports.c.sha256 == sha)
    ).first()
    if row is None:
        return None
    return f"#{row.id} at {dt.datetime.fromtimestamp(row.finished, dt.UTC):%Y-%m-%d %H:%M} UTC"


def _check_format(path: Path) -> None:
    """Refuse a file that is not JSON lines at all (a CSV given --format osquery)."""
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    if head and not head.startswith(b"{"):
        raise FileFormatError(
            f"{path}:1: not an osquery results log: the first line is not a JSON object"
        )


def import_osquery_file(
    engine: Engine,
    path: Path,
    *,
    now: dt.datetime,
    apps: AppMatcher,
    source: str = "osquery",
    report_dir: Path,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
    reader: str = "auto",
) -> OsqueryImportReport:
    """Import one osquery result log; see the module docstring for the guarantees.

    ``reader``: ``duckdb`` (one parallel DuckDB scan of the whole file,
    ``osquery_bulk``), ``blocks`` (polars, a block of lines at a time; what watch mode
    uses) or ``auto``: DuckDB from :data:`DUCKDB_MIN_BYTES` up, and the block reader
    for smaller files or when DuckDB cannot split the file into lines.
    """
    if reader not in READERS:
        raise ValueError(f"reader must be one of {', '.join(READERS)}, not {reader!r}")
    _check_format(path)
    now_s = int(now.timestamp())
    started = time.perf_counter()
    report = OsqueryImportReport(file=str(path), format="osquery", source=source)
    size = path.stat().st_size
    with engine.connect() as conn:
        if conn.execute(select(imports.c.id).where(imports.c.size == size)).first():
            report.sha256 = _file_sha256(path)
            prior = _prior_import(conn, report.sha256)
            if prior is not None:
                report.status, report.previous_import = "duplicate", prior
                return report
    report_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    rejects_path = report_dir / f"{path.name}.{stamp}.rejects.txt"

    def once() -> None:
        job = _Job(engine, path, report, rejects_path, now_s=now_s, size=size, apps=apps)
        _run(job, reader=reader, chunk_bytes=chunk_bytes, progress=progress)

    def again() -> None:  # every count back to a fresh report's (the file's hash kept)
        fresh = OsqueryImportReport(
            file=str(path), format="osquery", source=source, sha256=report.sha256
        )
        for f in fields(fresh):
            setattr(report, f.name, getattr(fresh, f.name))

    if not run_with_retries(once, path=path, rejects_path=rejects_path, again=again):
        return report
    return finish_report(
        report,
        rejects_path=rejects_path,
        summary_path=report_dir / f"{path.name}.{stamp}.summary.json",
        started=started,
    )


def _run(job: _Job, *, reader: str, chunk_bytes: int, progress: Progress | None) -> None:
    """Read the file with the reader asked for (``auto``: DuckDB for large files, and
    block by block when DuckDB cannot split the file into lines)."""
    if reader == "duckdb" or (reader == "auto" and job.size >= DUCKDB_MIN_BYTES):
        try:
            job.run_duckdb(progress)
        except ScanRefused as exc:
            if reader == "duckdb":
                raise
            log.info("%s: read block by block (DuckDB: %s)", job.path, exc)
            job.run_blocks(chunk_bytes, progress)
    else:
        job.run_blocks(chunk_bytes, progress)


class _Job:
    """One file's import by either reader: same transaction, report and rejects file."""

    def __init__(
        self,
        engine: Engine,
        path: Path,
        report: OsqueryImportReport,
        rejects_path: Path,
        *,
        now_s: int,
        size: int,
        apps: AppMatcher,
    ) -> None:
        self.engine, self.path, self.report = engine, path, report
        self.rejects_path, self.size, self.apps = rejects_path, size, apps
        self.batches = OsqueryBatches(source=report.source, apps=apps, now_s=now_s)
        self.out: TextIO | None = None

    def reject(self, line: int, reason: str) -> None:
        """Record one refused line or row (rejects file, and the first few inline)."""
        text = f"{self.path}:{line}: {reason}"
        assert self.out is not None
        self.out.write(text + "\n")
        if len(self.report.rejects) < REJECTS_SHOWN:
            self.report.rejects.append(text)

    def run_blocks(self, chunk_bytes: int, progress: Progress | None) -> None:
        """The block reader: parse ahead in a thread, map and write 64k rows at a time."""
        digest = hashlib.sha256()
        totals = WriteCounts()
        self.report.reader = "blocks"
        with self.engine.begin() as conn, self.rejects_path.open("w", encoding="utf-8") as out:
            self.out = out
            done = 0
            blocks = _ahead(_parsed_blocks(self.path, chunk_bytes, digest))
            for size_read, parsed in _batched(blocks, min_rows=BATCH_ROWS):
                counts, rejects, lines = self.batches.write(conn, parsed, where=str(self.path))
                totals.add(counts)
                self.report.lines += lines
                for line, reason in rejects:
                    self.reject(line, reason)
                done += size_read
                if progress:
                    progress(done, self.size)
            self.report.sha256 = digest.hexdigest()
            self._record(conn, totals)

    def run_duckdb(self, progress: Progress | None) -> None:
        """The DuckDB reader (``osquery_bulk``); the file is hashed meanwhile."""
        with tempfile.TemporaryDirectory(prefix="reclaim-osquery-") as tmp:
            hashing = _Hashing(self.path)
            try:
                scan = scan_file(
                    self.path,
                    Path(tmp),
                    threads=DUCKDB_THREADS,
                    memory_limit=DUCKDB_MEMORY,
                    facts=lambda: hashing.result()[2:],
                )
            finally:
                sha, ends_with_newline, *_ = hashing.result()
            try:
                self.report.sha256, self.report.reader = sha, f"duckdb-{scan.reader}"
                with (
                    self.engine.begin() as conn,
                    self.rejects_path.open("w", encoding="utf-8") as out,
                ):
                    self.out = out
                    if _prior_import(conn, sha) is not None:
                        self._duplicate(conn)
                    result = import_scanned(
                        scan,
                        conn,
                        writer=self.batches.writer,
                        mapper=self.batches.mapper_for(conn),
                        apps=self.apps,
                        incomplete_tail=self.size > 0 and not ends_with_newline,
                        on_reject=self.reject,
                    )
                    self.report.lines = result.lines
                    if progress:
                        progress(self.size, self.size)
                    self._record(conn, result.counts)
            finally:
                scan.close()

    def _duplicate(self, conn: Connection) -> None:
        prior = _prior_import(conn, self.report.sha256)
        self.report.status, self.report.previous_import = "duplicate", prior
        raise DuplicateFile

    def _record(self, conn: Connection, totals: WriteCounts) -> None:
        """Before commit: refuse known bytes, then the report, pending aggregates,
        source health and the ``imports`` row."""
        if _prior_import(conn, self.report.sha256) is not None:
            # The same bytes under a name and size the pre-check missed.
            self._duplicate(conn)
        report, batches = self.report, self.batches
        _fill(report, totals, batches)
        batches.writer.finish(conn, totals)
        conn.execute(
            imports.insert().values(
                source_id=batches.writer.source_id(conn),
                sha256=report.sha256,
                size=self.size,
                file_name=report.file,
                format=report.format,
                started=batches.writer.now_s,
                finished=batches.writer.now_s,
                rows_accepted=report.rows_accepted,
                rows_rejected=report.rows_rejected,
            )
        )


class _Hashing:
    """SHA-256 of a file in a thread (hashlib works without the GIL), whether the file
    ends with a line end, its number of lines and whether it holds a carriage return."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sha = ""
        self._newline = True
        self._lines = 0
        self._cr = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="osquery-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            digest, last, ends = hashlib.sha256(), b"\n", 0
            with self.path.open("rb") as fh:
                while data := fh.read(8 << 20):
                    digest.update(data)
                    ends += data.count(b"\n")
                    self._cr = self._cr or b"\r" in data
                    last = data[-1:]
            self._sha, self._newline = digest.hexdigest(), last == b"\n"
            self._lines = ends + (0 if self._newline else 1)
        except BaseException as exc:  # re-raised by result()
            self._error = exc

    def result(self) -> tuple[str, bool, int, bool]:
        """(hex digest, ends with a line end, lines, holds a carriage return), once done."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._sha, self._newline, self._lines, self._cr


def _fill(report: OsqueryImportReport, totals: WriteCounts, batches: OsqueryBatches) -> None:
    """Copy the totals and the mapper's tallies into the report."""
    report.events, report.repeats = totals.events, totals.repeats
    report.observations = totals.observations
    report.rows_accepted = totals.events + totals.repeats + totals.observations
    report.rows_rejected = totals.rejected
    if batches.mapper is not None:
        stats = batches.mapper.stats
        report.machine_accounts, report.never_used = stats.machine_accounts, stats.never_used
        report.unknown_queries = dict(stats.unknown_queries.most_common(TOP_UNKNOWN))
        report.unknown_sids = dict(stats.unknown_sids.most_common(TOP_UNKNOWN))
        report.unknown_accounts = dict(stats.unknown_accounts.most_common(TOP_UNKNOWN))
