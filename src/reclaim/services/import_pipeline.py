"""The import's two halves: a reader thread that does all the data work, and the
database writer that owns the connection.

The reader parses, validates, rolls up, attaches user and app ids and merges the
per-(user, app) and per-(user, month) aggregates; the writer only writes. The two
meet through a queue holding one chunk, which bounds memory. When the reader meets
user or app keys it has no id for, it asks the writer (which alone may touch the
database inside the import's transaction) and waits for the answer: after the
first chunks every key is known and no more questions are asked.

Keeping all polars work on one side matters on small machines: polars runs every
call on one shared thread pool, so joins on the writer's side would queue behind
the reader's parsing instead of overlapping with SQLite's work.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from reclaim.usage_sources.events import validate
from reclaim.usage_sources.files import Digest, read_chunks
from reclaim.usage_sources.rollup import (
    Accumulator,
    app_names,
    merge_latest,
    merge_observed,
    rollup,
)

_USERS = {"user": pl.String, "user_id": pl.Int64}
_APPS = {"app_key": pl.String, "app_id": pl.Int64}


@dataclass(frozen=True)
class Chunk:
    """One parsed chunk, ready to write: daily rows with ids, and rejected lines."""

    daily: pl.DataFrame | None
    bad: list[tuple[int, str]]
    bytes_read: int
    events: int


@dataclass(frozen=True)
class Totals:
    """What is written once, after the last chunk."""

    latest: pl.DataFrame | None
    observed: pl.DataFrame | None


@dataclass
class KeyRequest:
    """The reader asking the writer for ids; the writer answers on ``reply``."""

    users: list[str]
    apps: dict[str, str]  # key → display name
    reply: queue.Queue[tuple[list[tuple[str, int]], list[tuple[str, int]]]]


Item = Chunk | Totals | KeyRequest


class Reader(threading.Thread):
    """Produces Chunk items, then one Totals, asking KeyRequests as needed."""

    def __init__(
        self, *, path: Path, fmt: str, chunk_bytes: int, digest: Digest, now_s: int
    ) -> None:
        super().__init__(name="usage-reader", daemon=True)
        self.path, self.fmt, self.chunk_bytes = path, fmt, chunk_bytes
        self.digest, self.now_s = digest, now_s
        self.out: queue.Queue[Item | BaseException | None] = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        self.users = pl.DataFrame(schema=_USERS)
        self.apps = pl.DataFrame(schema=_APPS)

    def _put(self, item: Item | BaseException | None) -> bool:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            latest = Accumulator(merge_latest)
            observed = Accumulator(merge_observed)
            held: pl.DataFrame | None = None  # the last day's events, held for the next chunk
            for raw in read_chunks(self.path, self.fmt, self.chunk_bytes, self.digest):
                checked = validate(raw.frame, now=self.now_s)
                bad = list(raw.malformed) + list(checked.rejects.iter_rows())
                events = checked.events
                if held is not None:
                    events = pl.concat([held, events])
                events, held = self._hold_last_day(events)
                if not self._emit(events, bad, raw.bytes_read, latest, observed):
                    return
            if held is not None and not self._emit(held, [], 0, latest, observed):
                return
            totals = Totals(
                latest=latest.result() if latest.total is not None or latest.pending else None,
                observed=observed.result()
                if observed.total is not None or observed.pending
                else None,
            )
            if self._put(totals):
                self._put(None)
        except BaseException as exc:  # handed to the writer, which re-raises it
            self._put(exc)

    def _hold_last_day(self, events: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """Split off the events of the chunk's last day, unless they are most of it.

        Exports come in time order, so the last day of a chunk usually goes on in
        the next one; rolling it up there writes each day once (see FreshDays). A
        chunk that is mostly one day is emitted whole, so what is held stays small.
        """
        if events.height == 0:
            return events, None
        last_day_start = (int(events.get_column("ts").max()) // 86_400) * 86_400  # type: ignore[arg-type]
        tail = events.get_column("ts") >= last_day_start
        if int(tail.sum()) * 2 > events.height:
            return events, None
        return events.filter(~tail), events.filter(tail)

    def _emit(
        self,
        events: pl.DataFrame,
        bad: list[tuple[int, str]],
        bytes_read: int,
        latest: Accumulator,
        observed: Accumulator,
    ) -> bool:
        """Roll up and hand one chunk to the writer; False when asked to stop."""
        daily = None
        if events.height:
            keyed = self._with_ids(events)
            if keyed is None:
                return False
            r = rollup(keyed, user="user_id", app="app_id")
            daily = r.daily
            latest.add(r.latest)
            observed.add(r.observed)
        return self._put(Chunk(daily=daily, bad=bad, bytes_read=bytes_read, events=events.height))

    def _with_ids(self, events: pl.DataFrame) -> pl.DataFrame | None:
        """Events with user_id and app_id instead of text keys; None when asked to stop."""
        keyed = self._join_ids(events)
        missing_users = keyed.filter(pl.col("user_id").is_null()).select("user").unique()
        missing_apps = app_names(events).join(self.apps, on="app_key", how="anti")
        if missing_users.height or missing_apps.height:
            # Only the first chunks meet new keys; later ones skip this round trip.
            reply: queue.Queue[tuple[list[tuple[str, int]], list[tuple[str, int]]]]
            reply = queue.Queue(maxsize=1)
            request = KeyRequest(
                users=missing_users.get_column("user").to_list(),
                apps=dict(missing_apps.iter_rows()),
                reply=reply,
            )
            if not self._put(request):
                return None
            found_users, found_apps = reply.get()
            self.users = pl.concat(
                [self.users, pl.DataFrame(found_users, schema=_USERS, orient="row")]
            )
            self.apps = pl.concat([self.apps, pl.DataFrame(found_apps, schema=_APPS, orient="row")])
            keyed = self._join_ids(events)
        # Ids group and join much faster than the text keys they stand for.
        return keyed.select("user_id", "app_id", "ts", "seconds")

    def _join_ids(self, events: pl.DataFrame) -> pl.DataFrame:
        return (
            events.select("user", "app_key", "ts", "seconds")
            .join(self.users, on="user", how="left")
            .join(self.apps, on="app_key", how="left")
        )


def run_reader(
    reader: Reader,
    resolve: Callable[
        [list[str], dict[str, str]], tuple[list[tuple[str, int]], list[tuple[str, int]]]
    ],
) -> Iterator[Chunk | Totals]:
    """Start ``reader`` and yield its chunks and totals, answering its key requests."""
    reader.start()
    try:
        while (item := reader.out.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, KeyRequest):
                try:
                    answer = resolve(item.users, item.apps)
                except BaseException:
                    item.reply.put(([], []))  # the reader must not wait forever
                    raise
                item.reply.put(answer)
                continue
            yield item
    finally:
        reader.stop.set()
        # Unblock a reader waiting for an answer that will never come.
        _drain(reader.out)
        reader.join()


def _drain(q: queue.Queue[Any]) -> None:
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return
        if isinstance(item, KeyRequest):
            item.reply.put(([], []))
