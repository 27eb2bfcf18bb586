"""Which moments of use the store already holds, so a repeated "last used" counts once.

Endpoint and report sources do not send events; they send the *last* time an app was
used (osquery ``userassist``/``prefetch``/``apps``, Graph usage reports), and send it
again with every snapshot until the app is used again. Counting each report would
inflate event counts; ignoring all but the first would lose days. The rule, per
(user, app) and time ``t`` of a batch:

- ``t`` later than the last use the store holds for the pair (``usage_latest``): new;
- ``t`` equal to it: a repeat;
- ``t`` earlier: new only if it falls outside the first..last span already recorded
  for that user, app and day in ``usage_daily`` (another device, or logs imported out
  of order); inside the span it is taken for a repeat.

Last use and days of use are therefore always exact; only the event count of a day
can come out one low, when a second device reports a use inside a span already
recorded. No state beyond the roll-ups is needed, so it holds across files, watch
batches and Graph pulls, and a whole file imported twice changes nothing.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, text

from reclaim.usage_sources.rollup import SECONDS_PER_DAY

_BATCH = 900  # ids per IN list: below SQLite's oldest 999-parameter limit
_PAIR = ["user_id", "app_id"]
_LATEST = {"user_id": pl.Int64, "app_id": pl.Int64, "last_seen": pl.Int64}
_TIMES = {"user_id": pl.Int64, "app_id": pl.Int64, "ts": pl.Int64}


class RecordedUses:
    """Filters batches of moments of use down to the new ones (see module docstring).

    Keeps, per (user, app) seen, the last use the store holds (read once per user, then
    kept up to date from what the caller reports written) and the earlier times found
    to be repeats. :meth:`forget` after a rollback. The cache is two frames: ``base``,
    and ``recent`` updates folded into it once they pile up, so keeping it current
    costs no re-sort of everything per batch. ``max_rows`` bounds it: past that, the
    cache starts over and reloads lazily.
    """

    def __init__(self, *, max_rows: int = 2_000_000, fold_rows: int = 200_000) -> None:
        self.max_rows, self.fold_rows = max_rows, fold_rows
        self.forget()

    def forget(self) -> None:
        """Drop everything cached (after a rollback, or to bound memory)."""
        self.base = pl.DataFrame(schema=_LATEST)
        self.recent = pl.DataFrame(schema=_LATEST)
        self.loaded: set[int] = set()  # user ids whose usage_latest rows are cached
        self.repeats = pl.DataFrame(schema=_TIMES)  # earlier times found inside a span

    def novel(self, conn: Connection, events: pl.DataFrame) -> pl.DataFrame:
        """The events of ``events`` (``user_id``, ``app_id``, ``ts``, ``seconds``) not
        already recorded, one per (user, app, time)."""
        if events.height == 0:
            return events
        if self.base.height + self.repeats.height > self.max_rows:
            self.forget()
        ev = events.unique(["user_id", "app_id", "ts"], keep="first", maintain_order=True)
        self._load(conn, ev.get_column("user_id").unique().to_list())
        ev = ev.join(self.base, on=_PAIR, how="left")
        if self.recent.height:
            newer = self.recent.rename({"last_seen": "_recent"})
            ev = ev.join(newer, on=_PAIR, how="left").with_columns(
                pl.max_horizontal("last_seen", "_recent").alias("last_seen")
            )
        last = pl.col("last_seen")
        fresh = ev.filter(last.is_null() | (pl.col("ts") > last))
        earlier = ev.filter(pl.col("ts") < last)
        if earlier.height and self.repeats.height:
            earlier = earlier.join(self.repeats, on=list(_TIMES), how="anti")
        kept = [fresh.select(events.columns)]
        if earlier.height:
            inside = self._inside_spans(conn, earlier.select(events.columns))
            self.repeats = pl.concat([self.repeats, inside.select(list(_TIMES))])
            kept.append(earlier.select(events.columns).join(inside, on=list(_TIMES), how="anti"))
        return pl.concat(kept) if len(kept) > 1 else kept[0]

    def recorded(self, latest: pl.DataFrame) -> None:
        """Take note of ``usage_latest`` rows just written (``user_id``, ``app_id``,
        ``last_seen``), so later batches of this transaction see them."""
        self.recent = (
            pl.concat([self.recent, latest.select(list(_LATEST)).cast(_LATEST)])  # type: ignore[arg-type]
            .group_by(_PAIR)
            .agg(pl.col("last_seen").max())
        )
        if self.recent.height >= self.fold_rows:
            self.base = (
                pl.concat([self.base, self.recent]).group_by(_PAIR).agg(pl.col("last_seen").max())
            )
            self.recent = self.recent.clear()

    def _load(self, conn: Connection, user_ids: list[int]) -> None:
        missing = [u for u in user_ids if u not in self.loaded]
        rows: list[tuple[int, int, int]] = []
        for i in range(0, len(missing), _BATCH):
            part = ",".join(str(int(u)) for u in missing[i : i + _BATCH])
            rows += conn.execute(
                text(
                    f"SELECT user_id, app_id, last_seen FROM usage_latest WHERE user_id IN ({part})"
                )
            ).all()
        self.loaded.update(missing)
        if rows:
            found = pl.DataFrame(rows, schema=_LATEST, orient="row")
            self.base = pl.concat([self.base, found])

    def _inside_spans(self, conn: Connection, earlier: pl.DataFrame) -> pl.DataFrame:
        """The events of ``earlier`` inside a recorded first..last span of their day."""
        ev = earlier.with_columns((pl.col("ts") // SECONDS_PER_DAY).alias("day"))
        spans: list[tuple[int, int, int, int, int]] = []
        for (day,), group in ev.group_by(["day"]):
            users = group.get_column("user_id").unique().to_list()
            for i in range(0, len(users), _BATCH):
                ids = ",".join(str(int(u)) for u in users[i : i + _BATCH])
                spans += [
                    (int(day), int(u), int(a), int(f), int(last))
                    for u, a, f, last in conn.execute(
                        text(
                            "SELECT user_id, app_id, first_seen, last_seen FROM usage_daily "
                            f"WHERE day = :day AND user_id IN ({ids})"
                        ),
                        {"day": int(day)},
                    )
                ]
        if not spans:
            return ev.clear().select(list(_TIMES))
        frame = pl.DataFrame(
            spans,
            schema=dict.fromkeys(("day", "user_id", "app_id", "first", "last"), pl.Int64),
            orient="row",
        )
        return (
            ev.join(frame, on=["day", *_PAIR])
            .filter(pl.col("ts").is_between(pl.col("first"), pl.col("last")))
            .select(list(_TIMES))
        )
