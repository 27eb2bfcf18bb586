"""Importing a usage file: chunked parse → validate → roll up → merge, in one transaction.

The whole file is one transaction, so a crash or a bad file leaves nothing half
applied. A file is identified by its SHA-256: importing the same bytes again is
reported and skipped. Bad rows are reported as ``FILE:LINE: reason`` in a rejects
file beside a JSON summary; good rows are kept.

Parsing (polars, which releases the GIL) runs in a reader thread one chunk ahead of
the database writes, so the two cores work at once; the queue between them holds at
most two chunks, which keeps memory bounded whatever the file's size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine, select, update

from reclaim.store.keys import KeyCache, source_id
from reclaim.store.tables import imports, sources
from reclaim.store.usage_writer import write_table
from reclaim.usage_sources.events import validate
from reclaim.usage_sources.files import guess_format, read_chunks
from reclaim.usage_sources.rollup import (
    Accumulator,
    Rollup,
    merge_latest,
    merge_observed,
    rollup,
)

DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024
REJECTS_SHOWN = 20  # how many bad rows a report carries inline; all go to the rejects file

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class DuplicateFile(Exception):
    """Raised inside the transaction when the file's hash turns out to be known already."""


@dataclass
class ImportReport:
    """What an import did. ``status`` is ``imported`` or ``duplicate``."""

    file: str
    format: str
    source: str
    status: str = "imported"
    sha256: str = ""
    rows_accepted: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    previous_import: str | None = None
    rejects_file: str | None = None
    summary_file: str | None = None
    rejects: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """A JSON-able copy (the summary file's content)."""
        return asdict(self)


@dataclass(frozen=True)
class _Parsed:
    rollup: Rollup | None
    bad: list[tuple[int, str]]
    bytes_read: int


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def _prior_import(conn: Connection, sha: str) -> str | None:
    row = conn.execute(
        select(imports.c.id, imports.c.finished).where(imports.c.sha256 == sha)
    ).first()
    if row is None:
        return None
    return f"#{row.id} at {dt.datetime.fromtimestamp(row.finished, dt.UTC):%Y-%m-%d %H:%M} UTC"


def _parse_ahead(
    path: Path, fmt: str, chunk_bytes: int, digest: hashlib._Hash, now_s: int
) -> Iterator[_Parsed]:
    """Parse chunks in a reader thread, one ahead of the consumer."""
    out: queue.Queue[_Parsed | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def work() -> None:
        try:
            for chunk in read_chunks(path, fmt, chunk_bytes, digest):
                checked = validate(chunk.frame, now=now_s)
                bad = list(chunk.malformed) + list(checked.rejects.iter_rows())
                r = rollup(checked.events) if checked.events.height else None
                item = _Parsed(rollup=r, bad=bad, bytes_read=chunk.bytes_read)
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            out.put(exc)

    thread = threading.Thread(target=work, name="usage-reader", daemon=True)
    thread.start()
    try:
        while (item := out.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def import_usage_file(
    engine: Engine,
    path: Path,
    *,
    now: dt.datetime,
    fmt: str | None = None,
    source: str = "file",
    report_dir: Path,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one CSV or NDJSON usage file; see the module docstring for the guarantees."""
    fmt = fmt or guess_format(path)
    now_s = int(now.timestamp())
    started = time.perf_counter()
    report = ImportReport(file=str(path), format=fmt, source=source)
    size = path.stat().st_size
    digest = hashlib.sha256()

    # Hashing costs a full read; only pay it up front when a same-sized file was
    # imported before (the only way this one can be a repeat). Otherwise the hash is
    # computed while parsing and checked before commit.
    with engine.connect() as conn:
        same_size = conn.execute(select(imports.c.id).where(imports.c.size == size)).first()
        if same_size is not None:
            report.sha256 = file_sha256(path)
            prior = _prior_import(conn, report.sha256)
            if prior is not None:
                report.status, report.previous_import = "duplicate", prior
                return report

    stamp = now.strftime("%Y%m%dT%H%M%S")
    report_dir.mkdir(parents=True, exist_ok=True)
    rejects_path = report_dir / f"{path.name}.{stamp}.rejects.txt"
    try:
        with engine.begin() as conn, rejects_path.open("w", encoding="utf-8") as rejects_out:
            src_id = source_id(conn, source, "file")
            keys = KeyCache()
            latest = Accumulator(merge_latest)
            observed = Accumulator(merge_observed)
            done = 0
            for parsed in _parse_ahead(path, fmt, chunk_bytes, digest, now_s):
                for line, reason in sorted(parsed.bad):
                    text = f"{path}:{line}: {reason}"
                    rejects_out.write(text + "\n")
                    if len(report.rejects) < REJECTS_SHOWN:
                        report.rejects.append(text)
                report.rows_rejected += len(parsed.bad)
                if parsed.rollup is not None:
                    r = _with_ids(conn, parsed.rollup, keys, now_s)
                    write_table(conn, "usage_daily", r.daily)
                    # Per-(user, app) and per-(user, month) aggregates are merged in
                    # memory across chunks and written once: they repeat in every chunk.
                    latest.add(r.latest)
                    observed.add(r.observed)
                    report.rows_accepted += r.events
                done += parsed.bytes_read
                if progress:
                    progress(done, size)
            if report.rows_accepted:
                write_table(conn, "usage_latest", latest.result())
                write_table(
                    conn,
                    "usage_observed",
                    observed.result().with_columns(source_id=pl.lit(src_id)),
                )
            report.sha256 = digest.hexdigest()
            prior = _prior_import(conn, report.sha256)
            if prior is not None:  # same bytes, different name and size check raced
                report.status, report.previous_import = "duplicate", prior
                raise DuplicateFile
            _record(conn, report, src_id=src_id, size=size, now_s=now_s)
    except DuplicateFile:
        rejects_path.unlink(missing_ok=True)
        return report
    except BaseException:
        rejects_path.unlink(missing_ok=True)
        raise

    if report.rows_rejected:
        report.rejects_file = str(rejects_path)
    else:
        rejects_path.unlink(missing_ok=True)
    report.seconds = round(time.perf_counter() - started, 3)
    summary_path = report_dir / f"{path.name}.{stamp}.summary.json"
    report.summary_file = str(summary_path)
    summary_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return report


def _with_ids(conn: Connection, r: Rollup, keys: KeyCache, now_s: int) -> Rollup:
    """Replace user and app text keys by row ids (creating users and apps as needed)."""
    umap = keys.add_users(conn, r.observed.get_column("user"), now=now_s)
    amap = keys.add_apps(conn, r.app_names)
    return Rollup(
        daily=r.daily.join(umap, on="user").join(amap, on="app_key"),
        observed=r.observed.join(umap, on="user").drop("user"),
        latest=r.latest.join(umap, on="user").join(amap, on="app_key").drop("user", "app_key"),
        app_names=r.app_names,
        events=r.events,
    )


def _record(conn: Connection, report: ImportReport, *, src_id: int, size: int, now_s: int) -> None:
    conn.execute(
        imports.insert().values(
            source_id=src_id,
            sha256=report.sha256,
            size=size,
            file_name=report.file,
            format=report.format,
            started=now_s,
            finished=now_s,
            rows_accepted=report.rows_accepted,
            rows_rejected=report.rows_rejected,
        )
    )
    conn.execute(
        update(sources)
        .where(sources.c.id == src_id)
        .values(
            last_received=now_s,
            rows_accepted=sources.c.rows_accepted + report.rows_accepted,
            rows_rejected=sources.c.rows_rejected + report.rows_rejected,
        )
    )
