"""Writing moments of use from non-file sources (osquery, Microsoft Graph) into roll-ups.

File imports stream through ``import_pipeline``; sources that report *moments* (the
last time an app was used, the last activity date of a workload, a sign-in) write
through here instead, batch by batch inside the caller's transaction:

1. rows whose app is :data:`~reclaim.usage_sources.rollup.OBSERVED_ONLY_APP` only mark
   their user observed that day (``observed_days``): no ``usage_daily`` row;
2. the other rows are de-duplicated against what the store already holds
   (``store.recorded_uses``), so a snapshot repeated every hour counts once;
3. what is new is rolled up and merged with the same bulk writer as file imports
   (``store.usage_writer.write_table``): daily rows at once (later batches check spans
   against them), per-(user, app) and per-(user, month) aggregates merged in memory and
   written by :meth:`UsageWriter.finish` before commit.

``sources.rows_accepted`` counts usage events written, as for files (so it stays equal
to the events in ``usage_daily``); observations and repeats are tallied in
``source_state`` (``counters``). :func:`run_source` runs a whole
:class:`~reclaim.usage_sources.source.UsageSource`, one transaction per batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, update

from reclaim.store.keys import KeyCache, source_id
from reclaim.store.recorded_uses import RecordedUses
from reclaim.store.source_state import add_counters, get_state, put_state
from reclaim.store.summaries import refresh_summaries
from reclaim.store.tables import sources
from reclaim.store.usage_writer import write_table
from reclaim.usage_sources.events import validate
from reclaim.usage_sources.rollup import (
    OBSERVED_ONLY_APP,
    SECONDS_PER_DAY,
    Accumulator,
    app_names,
    merge_latest,
    merge_observed,
    observed_days,
    rollup,
)
from reclaim.usage_sources.source import RawBatch, UsageSource


@dataclass
class WriteCounts:
    """What writes did, summed over batches."""

    events: int = 0  # new moments of use, written to usage_daily
    repeats: int = 0  # moments already recorded (or repeated within the batch)
    observations: int = 0  # rows that only mark their user observed
    rejected: int = 0

    def add(self, other: WriteCounts) -> None:
        """Add ``other`` to these counts."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


class UsageWriter:
    """Writes validated events (``events.validate`` output) for one source.

    Keeps id and recorded-use caches between batches; call :meth:`forget` if a
    transaction it wrote in was rolled back.
    """

    def __init__(self, *, source: str, kind: str, now_s: int) -> None:
        self.source, self.kind, self.now_s = source, kind, now_s
        self.keys = KeyCache()
        self.recorded = RecordedUses()
        self._source_id: int | None = None
        self._pending()

    def _pending(self) -> None:
        # Per-(user, app) and per-(user, month) aggregates change with every batch but
        # are read by nothing until commit: merged in memory, written once by finish().
        self.latest = Accumulator(merge_latest)
        self.observed = Accumulator(merge_observed)

    def forget(self) -> None:
        """Drop cached ids, recorded uses and pending aggregates (after a rollback)."""
        self.keys = KeyCache()
        self.recorded.forget()
        self._source_id = None
        self._pending()

    def source_id(self, conn: Connection) -> int:
        """This source's row id (created on first use)."""
        if self._source_id is None:
            self._source_id = source_id(conn, self.source, self.kind)
        return self._source_id

    def write(self, conn: Connection, events: pl.DataFrame) -> WriteCounts:
        """Write one batch; returns its counts (``rejected`` is left to the caller)."""
        counts = WriteCounts()
        if events.height == 0:
            return counts
        seen_only = pl.col("app_name") == OBSERVED_ONLY_APP
        users = self.keys.add_users(conn, events.get_column("user").unique(), now=self.now_s)
        uses = events.filter(~seen_only)
        apps = self.keys.add_apps(conn, app_names(uses)) if uses.height else self.keys.apps
        seen = events.filter(seen_only)
        counts.observations = seen.height
        if seen.height:
            days = seen.join(users, on="user").select(
                "user_id", (pl.col("ts") // SECONDS_PER_DAY).cast(pl.Int32).alias("day")
            )
            self.observed.add(observed_days(days, user="user_id"))
        if uses.height:
            keyed = (
                uses.join(users, on="user")
                .join(apps, on="app_key")
                .select("user_id", "app_id", "ts", "seconds")
            )
            new = self.recorded.novel(conn, keyed)
            counts.events, counts.repeats = new.height, uses.height - new.height
            if new.height:
                r = rollup(new, user="user_id", app="app_id")
                # Daily rows are written now: later batches check spans against them.
                write_table(conn, "usage_daily", r.daily)
                refresh_summaries(conn, r.daily.get_column("day").unique(), defer=True)
                self.recorded.recorded(r.latest)
                self.latest.add(r.latest)
                self.observed.add(r.observed)
        return counts

    def finish(self, conn: Connection, counts: WriteCounts) -> None:
        """Before commit: write the pending aggregates, then the source's health figures
        (last received now, rows accepted/rejected, observation and repeat tallies)."""
        src = self.source_id(conn)
        if self.latest.pending or self.latest.total is not None:
            write_table(conn, "usage_latest", self.latest.result())
        if self.observed.pending or self.observed.total is not None:
            observed = self.observed.result().with_columns(source_id=pl.lit(src))
            write_table(conn, "usage_observed", observed)
        self._pending()
        self._record_received(conn, counts)

    def _record_received(self, conn: Connection, counts: WriteCounts) -> None:
        src = self.source_id(conn)
        conn.execute(
            update(sources)
            .where(sources.c.id == src)
            .values(
                last_received=self.now_s,
                rows_accepted=sources.c.rows_accepted + counts.events,
                rows_rejected=sources.c.rows_rejected + counts.rejected,
            )
        )
        add_counters(
            conn,
            src,
            {"observations": counts.observations, "repeats": counts.repeats},
            now=self.now_s,
        )


def write_batch(
    conn: Connection, writer: UsageWriter, batch: RawBatch
) -> tuple[WriteCounts, list[tuple[int, str]]]:
    """Check and write one source batch in ``conn``'s transaction (state not included).

    Returns the counts and every rejected row, the source's own refusals and the
    checks' (``events.validate``), sorted by line.
    """
    checked = validate(batch.raw, now=writer.now_s)
    rejects = sorted([*batch.rejects, *checked.rejects.iter_rows()])
    counts = writer.write(conn, checked.events)
    counts.rejected = len(rejects)
    return counts, rejects


@dataclass
class SourceRun:
    """What :func:`run_source` did: totals, and the first rejects as ``WHERE:LINE: why``."""

    counts: WriteCounts = field(default_factory=WriteCounts)
    rows: int = 0
    lines: int = 0
    batches: int = 0
    rejects: list[str] = field(default_factory=list)


def run_source(
    engine: Engine,
    source: UsageSource,
    *,
    name: str,
    now_s: int,
    rejects_shown: int = 20,
) -> SourceRun:
    """Write every batch of ``source`` into usage source ``name``: one transaction per
    batch, its state (watermark) included, so a failure keeps what came before."""
    writer = UsageWriter(source=name, kind=source.kind, now_s=now_s)
    run = SourceRun()

    def saved(key: str) -> dict[str, Any] | None:
        with engine.connect() as conn:
            return get_state(conn, writer.source_id(conn), key)

    with engine.begin() as conn:
        writer.source_id(conn)  # created before the first read of saved state
    for batch in source.batches(saved):
        try:
            with engine.begin() as conn:
                counts, rejects = write_batch(conn, writer, batch)
                writer.finish(conn, counts)
                if batch.state is not None:
                    put_state(conn, writer.source_id(conn), *batch.state, now=now_s)
        except BaseException:
            writer.forget()
            raise
        run.counts.add(counts)
        run.rows += batch.raw.height
        run.lines += batch.lines
        run.batches += 1
        room = rejects_shown - len(run.rejects)
        run.rejects += [f"{batch.where}:{n}: {why}" for n, why in rejects[: max(room, 0)]]
    return run
