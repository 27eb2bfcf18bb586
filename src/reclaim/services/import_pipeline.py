"""The import's three threads: a parser, a reader that does the rest of the data
work, and the database writer that owns the connection.

The parser reads and parses blocks of the file (and hashes them) one block ahead.
The reader checks rows, attaches user and app ids, rolls up each chunk and keeps
the per-(user, app) and per-(user, month) totals; the writer only writes. They
meet through queues holding one item each, which bounds memory. When the reader
meets user or app keys it has no id for, it asks the writer (which alone may
touch the database inside the import's transaction) and waits for the answer:
after the first chunks nearly every key is known and questions are rare and small.

Clean rows, nearly all of a file, are matched to ids by their user and app as
written (one join per column); only spellings not seen before are trimmed and
lower-cased, and only rows that fail the quick check go through the full
``validate`` (see ``events.quick_events``).

Keeping all polars work off the writer matters on small machines: polars runs every
call on one shared thread pool, so joins on the writer's side would queue behind
the reader's parsing instead of overlapping with SQLite's work.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from reclaim.usage_sources.events import quick_events, validate
from reclaim.usage_sources.files import Digest, RawChunk, read_chunks
from reclaim.usage_sources.rollup import KeyedTotals, app_names, daily_rollup, month_and_bit

_USERS = {"user": pl.String, "user_id": pl.Int64}
_APPS = {"app_key": pl.String, "app_id": pl.Int64}
_USER_SPELLINGS = {"user": pl.String, "user_id": pl.Int64}
_APP_SPELLINGS = {"app": pl.String, "app_id": pl.Int64}
_BLANK = -1  # the id of a spelling that is blank once trimmed: validate rejects its rows


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
        # Normalized key → id, as frames (to join a chunk's rows) and as dicts (to
        # look up a few keys at once).
        self.users = pl.DataFrame(schema=_USERS)
        self.apps = pl.DataFrame(schema=_APPS)
        self.user_ids: dict[str, int] = {}
        self.app_ids: dict[str, int] = {}
        # The same keys as written in the file (untrimmed, any case): most files spell
        # each key one way, so these stay about as small as the maps above.
        self.user_spellings = pl.DataFrame(schema=_USER_SPELLINGS)
        self.app_spellings = pl.DataFrame(schema=_APP_SPELLINGS)

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
            latest = KeyedTotals(
                ("user_id", "app_id"),
                {
                    "first_day": ("day", "min"),
                    "last_day": ("day", "max"),
                    "last_seen": ("last_seen", "max"),
                },
            )
            observed = KeyedTotals(
                ("user_id", "month"), {"days_mask": ("bit", "or"), "last_day": ("day", "max")}
            )
            held: pl.DataFrame | None = None  # the last day's events, held for the next chunk
            chunks = read_chunks(self.path, self.fmt, self.chunk_bytes, self.digest)
            with closing(_prefetched(chunks)) as prefetched:
                for raw in prefetched:
                    checked = self._keyed(raw)
                    if checked is None:
                        return
                    events, bad = checked
                    if held is not None:
                        events = pl.concat([held, events])
                    events, held = self._hold_last_day(events)
                    if not self._emit(events, bad, raw.bytes_read, latest, observed):
                        return
            if held is not None and not self._emit(held, [], 0, latest, observed):
                return
            totals = Totals(
                latest=None if latest.empty() else latest.result(),
                observed=None if observed.empty() else observed.result(),
            )
            if self._put(totals):
                self._put(None)
        except BaseException as exc:  # handed to the writer, which re-raises it
            self._put(exc)

    def _keyed(self, raw: RawChunk) -> tuple[pl.DataFrame, list[tuple[int, str]]] | None:
        """A chunk's accepted events as (user_id, app_id, ts, seconds), and its bad rows.

        Clean rows (nearly all) are matched to ids by their user and app *as
        written*: one join per column, where trimming and lower-casing every row
        first cost more than the rest of the check. Only spellings not met before
        are normalized, and only normalized keys not met before are asked for.
        Every other row goes through ``validate``, which accepts it or says why not.
        None when asked to stop.
        """
        frame = raw.frame
        quick = quick_events(frame, now=self.now_s)
        joined = self._join_spellings(quick.events)
        new_users = joined.filter(pl.col("user_id").is_null()).get_column("user").unique()
        new_apps = joined.filter(pl.col("app_id").is_null()).get_column("app").unique()
        if new_users.len() or new_apps.len():
            if not self._learn_spellings(new_users, new_apps, frame):
                return None
            # Only the rows that missed are joined again: later chunks of a file
            # still meet a few new users each, and the rows they miss are few.
            missed = pl.col("user_id").is_null() | pl.col("app_id").is_null()
            again = joined.filter(missed).drop("user_id", "app_id")
            joined = pl.concat([joined.filter(~missed), self._join_spellings(again)])
        rest = quick.rest
        good = (pl.col("user_id") > 0) & (pl.col("app_id") > 0)
        blank = joined.filter(~good)
        if blank.height:  # spelled with only spaces: validate gives the reason
            rest = rest | frame.get_column("line").is_in(blank.get_column("line").implode())
            joined = joined.filter(good)
        parts = [joined.select("user_id", "app_id", "ts", "seconds")]
        bad = list(raw.malformed)
        if rest.any():
            checked = validate(frame.filter(rest), now=self.now_s)
            bad += list(checked.rejects.iter_rows())
            if checked.events.height:
                keyed = self._with_ids(checked.events)
                if keyed is None:
                    return None
                parts.append(keyed)
        return pl.concat(parts) if len(parts) > 1 else parts[0], bad

    def _join_spellings(self, events: pl.DataFrame) -> pl.DataFrame:
        return events.join(self.user_spellings, on="user", how="left").join(
            self.app_spellings, on="app", how="left"
        )

    def _learn_spellings(self, users: pl.Series, apps: pl.Series, frame: pl.DataFrame) -> bool:
        """Map new spellings to ids (``_BLANK`` for blank ones); False when asked to stop.

        The spellings are normalized by polars, as ``validate`` does it; the few of
        each chunk are then looked up in dicts (joins against every known key
        measured ~20 ms a chunk, and most chunks of a file meet a few new users).
        """
        user_keys = users.str.strip_chars().str.to_lowercase().to_list()
        app_keys = apps.str.strip_chars().str.to_lowercase().to_list()
        unknown_users = sorted({k for k in user_keys if k and k not in self.user_ids})
        unknown_apps = {k for k in app_keys if k and k not in self.app_ids}
        if unknown_users or unknown_apps:
            names: dict[str, str] = {}
            if unknown_apps:
                # A new app is named by its first spelling among the chunk's accepted
                # rows, as validate and app_names would: only new apps pay for this.
                found = app_names(validate(frame, now=self.now_s).events)
                names = {k: n for k, n in found.iter_rows() if k in unknown_apps}
            if not self._request(unknown_users, names):
                return False
        self.user_spellings = pl.concat(
            [
                self.user_spellings,
                pl.DataFrame(
                    {"user": users, "user_id": [self.user_ids.get(k, _BLANK) for k in user_keys]},
                    schema=_USER_SPELLINGS,
                ),
            ]
        )
        self.app_spellings = pl.concat(
            [
                self.app_spellings,
                pl.DataFrame(
                    {"app": apps, "app_id": [self.app_ids.get(k, _BLANK) for k in app_keys]},
                    schema=_APP_SPELLINGS,
                ),
            ]
        )
        return True

    def _request(self, users: list[str], apps: dict[str, str]) -> bool:
        """Ask the writer for these keys' ids (creating rows); False when asked to stop."""
        reply: queue.Queue[tuple[list[tuple[str, int]], list[tuple[str, int]]]]
        reply = queue.Queue(maxsize=1)
        if not self._put(KeyRequest(users=users, apps=apps, reply=reply)):
            return False
        found_users, found_apps = reply.get()
        self.user_ids.update(found_users)
        self.app_ids.update(found_apps)
        self.users = pl.concat([self.users, pl.DataFrame(found_users, schema=_USERS, orient="row")])
        self.apps = pl.concat([self.apps, pl.DataFrame(found_apps, schema=_APPS, orient="row")])
        return True

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
        latest: KeyedTotals,
        observed: KeyedTotals,
    ) -> bool:
        """Roll up and hand one chunk to the writer; False when asked to stop."""
        daily = None
        if events.height:
            daily = daily_rollup(events, user="user_id", app="app_id")
            # ``latest`` and ``observed`` fold the daily rows in directly: per chunk
            # they would hardly be fewer (most pairs are used one day per chunk).
            latest.add(daily)
            month, bit = month_and_bit(daily.get_column("day").to_numpy())
            observed.add(daily.select("user_id", "day").with_columns(month=month, bit=bit))
        return self._put(Chunk(daily=daily, bad=bad, bytes_read=bytes_read, events=events.height))

    def _with_ids(self, events: pl.DataFrame) -> pl.DataFrame | None:
        """Validated events with user_id and app_id instead of their (normalized) keys;
        None when asked to stop."""
        keyed = self._join_ids(events)
        missing_users = keyed.filter(pl.col("user_id").is_null()).select("user").unique()
        missing_apps = app_names(events).join(self.apps, on="app_key", how="anti")
        if missing_users.height or missing_apps.height:
            request_users = missing_users.get_column("user").to_list()
            if not self._request(request_users, dict(missing_apps.iter_rows())):
                return None
            keyed = self._join_ids(events)
        # Ids group and join much faster than the text keys they stand for.
        return keyed.select("user_id", "app_id", "ts", "seconds")

    def _join_ids(self, events: pl.DataFrame) -> pl.DataFrame:
        return (
            events.select("user", "app_key", "ts", "seconds")
            .join(self.users, on="user", how="left")
            .join(self.apps, on="app_key", how="left")
        )


_DONE = object()


def _prefetched(items: Iterator[RawChunk]) -> Generator[RawChunk, None, None]:
    """``items``, produced one ahead by a thread of their own.

    Parsing a block (polars, and SHA-256 of its bytes) lets go of the GIL, so the
    next block is parsed while this one is keyed and rolled up: measured the
    reader's two biggest costs, which otherwise take turns.
    """
    out: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()  # set when the consumer is done, early or not

    def produce() -> None:
        try:
            for item in items:
                if not _put_until(out, item, stop):
                    return
            _put_until(out, _DONE, stop)
        except BaseException as exc:  # raised again on the consuming side
            _put_until(out, exc, stop)

    thread = threading.Thread(target=produce, name="usage-parser", daemon=True)
    thread.start()
    try:
        while (item := out.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def _put_until(q: queue.Queue[Any], item: object, stop: threading.Event) -> bool:
    """Put ``item`` on ``q``, giving up (False) once ``stop`` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.5)
            return True
        except queue.Full:
            continue
    return False


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
