"""Importing a usage file: chunked parse → validate → roll up → merge, in one transaction.

The whole file is one transaction, so a crash or a bad file leaves nothing half
applied; one that PostgreSQL rolls back to break a deadlock with a concurrent
upload is run again (``DEADLOCK_TRIES``). A file is identified by its SHA-256:
importing the same bytes again is reported and skipped. Bad rows are reported as
``FILE:LINE: reason`` in a rejects file beside a JSON summary; good rows are kept.

All data work runs in a parser and a reader thread, a chunk or two ahead of the
database writes (see ``import_pipeline``), so two cores work at once, and the
queues between them bound memory whatever the file's size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import OperationalError

from reclaim.services.import_pipeline import Reader, Totals, run_reader
from reclaim.store.engine import deadlocked
from reclaim.store.keys import resolve_keys, source_id
from reclaim.store.summaries import refresh_summaries
from reclaim.store.tables import imports, sources
from reclaim.store.usage_writer import FreshDays, write_table
from reclaim.usage_sources.files import guess_format

DEFAULT_CHUNK_BYTES = 12 * 1024 * 1024  # measured: ~1M events/s within 500 MB peak
REJECTS_SHOWN = 20  # how many bad rows a report carries inline; all go to the rejects file
# Attempts at an import that PostgreSQL rolls back to break a deadlock with another
# writer (several uploaders at once): the import is one transaction, so it starts over.
DEADLOCK_TRIES = 3

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


R = TypeVar("R", bound="ImportReport")


class DuplicateFile(Exception):
    """Raised inside the transaction when the file's hash turns out to be known already."""


def run_with_retries(
    once: Callable[[], None], *, path: Path, rejects_path: Path, again: Callable[[], None]
) -> bool:
    """Run one file's import transaction ``once``; False when it raised
    :class:`DuplicateFile`. When PostgreSQL rolled it back to break a deadlock with
    another writer (concurrent uploads), nothing of it was kept: ``again`` resets what
    the caller counted and it runs once more, up to :data:`DEADLOCK_TRIES` times. The
    rejects file is removed whenever the import does not go through."""
    for attempt in range(1, DEADLOCK_TRIES + 1):
        try:
            once()
        except DuplicateFile:
            rejects_path.unlink(missing_ok=True)
            return False
        except OperationalError as exc:
            rejects_path.unlink(missing_ok=True)
            if not deadlocked(exc) or attempt == DEADLOCK_TRIES:
                raise
            log.warning(
                "%s: deadlock with another writer, rolled back; importing again (%d of %d)",
                path,
                attempt + 1,
                DEADLOCK_TRIES,
            )
            again()
            continue
        except BaseException:
            rejects_path.unlink(missing_ok=True)
            raise
        return True
    raise AssertionError("unreachable: the last try returns or raises")


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

    def again() -> None:
        report.rows_accepted = report.rows_rejected = 0
        report.rejects.clear()

    imported = run_with_retries(
        lambda: _import_once(
            engine,
            path,
            report,
            rejects_path=rejects_path,
            chunk_bytes=chunk_bytes,
            now_s=now_s,
            size=size,
            progress=progress,
        ),
        path=path,
        rejects_path=rejects_path,
        again=again,
    )
    if not imported:
        return report
    return finish_report(
        report,
        rejects_path=rejects_path,
        summary_path=report_dir / f"{path.name}.{stamp}.summary.json",
        started=started,
    )


def finish_report(report: R, *, rejects_path: Path, summary_path: Path, started: float) -> R:
    """Close an import's report: keep the rejects file only when rows were rejected,
    record the elapsed time, and write the JSON summary beside the rejects file."""
    if report.rows_rejected:
        report.rejects_file = str(rejects_path)
    else:
        rejects_path.unlink(missing_ok=True)
    report.seconds = round(time.perf_counter() - started, 3)
    report.summary_file = str(summary_path)
    summary_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return report


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


def _import_once(
    engine: Engine,
    path: Path,
    report: ImportReport,
    *,
    rejects_path: Path,
    chunk_bytes: int,
    now_s: int,
    size: int,
    progress: Progress | None,
) -> None:
    """One attempt at the import, in one transaction (all of it kept, or none)."""
    digest = hashlib.sha256()
    fmt, source = report.format, report.source
    with engine.begin() as conn, rejects_path.open("w", encoding="utf-8") as rejects_out:
        src_id = source_id(conn, source, "file")
        reader = Reader(path=path, fmt=fmt, chunk_bytes=chunk_bytes, digest=digest, now_s=now_s)

        def resolve(users: list[str], apps: dict[str, str]) -> Any:
            return resolve_keys(conn, users=users, apps=apps, now=now_s)

        done = 0
        fresh_days = FreshDays()
        for item in run_reader(reader, resolve):
            if isinstance(item, Totals):
                if item.latest is not None:
                    write_table(conn, "usage_latest", item.latest)
                if item.observed is not None:
                    write_table(
                        conn,
                        "usage_observed",
                        item.observed.with_columns(source_id=pl.lit(src_id)),
                    )
                continue
            for line, reason in sorted(item.bad):
                text = f"{path}:{line}: {reason}"
                rejects_out.write(text + "\n")
                if len(report.rejects) < REJECTS_SHOWN:
                    report.rejects.append(text)
            report.rows_rejected += len(item.bad)
            if item.daily is not None:
                days = item.daily.get_column("day").unique().to_list()
                write_table(
                    conn,
                    "usage_daily",
                    item.daily,
                    insert_only=fresh_days.all_fresh(conn, days),
                    presorted=True,  # the reader sorts (see daily_rollup)
                )
                fresh_days.written(days)
            report.rows_accepted += item.events
            done += item.bytes_read
            if progress:
                progress(done, size)
        refresh_summaries(conn, fresh_days.touched, defer=True)  # the next decision refreshes
        report.sha256 = digest.hexdigest()
        prior = _prior_import(conn, report.sha256)
        if prior is not None:  # same bytes, different name and size check raced
            report.status, report.previous_import = "duplicate", prior
            raise DuplicateFile
        _record(conn, report, src_id=src_id, size=size, now_s=now_s)
