"""A whole osquery result log through DuckDB, written in the caller's transaction.

The fast path of ``osquery_import``: :class:`~reclaim.usage_sources.osquery_duckdb.OsqueryScan`
reads the file in one parallel scan; this module answers its distinct SIDs, accounts and
paths with the block reader's own functions, has DuckDB find the accepted moments of
use, de-duplicate them against what the store holds and roll them up, and writes the
roll-ups with the same writers as every other source (``store.usage_writer.write_table``,
the :class:`~reclaim.services.usage_writes.UsageWriter`'s pending aggregates and source
health).

The whole file is one batch, so the de-duplication rule of ``store.recorded_uses`` holds
exactly over the file: each distinct (user, app, last-used time) counts once; a time
later than the last use the store holds is new, an equal one a repeat, an earlier one
new only outside the span already recorded for its day.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import Connection, text

from reclaim.services.usage_writes import UsageWriter, WriteCounts
from reclaim.store.summaries import refresh_summaries
from reclaim.store.usage_writer import FreshDays, write_table
from reclaim.usage_sources.app_aliases import AppMatcher
from reclaim.usage_sources.events import FUTURE_SLACK_SECONDS
from reclaim.usage_sources.osquery_duckdb import BAD, MAX_LINE_BYTES, OsqueryScan, ScanRefused
from reclaim.usage_sources.osquery_mapping import INVALID, UNKNOWN, OsqueryMapper, blank_to_null
from reclaim.usage_sources.rollup import SECONDS_PER_DAY, observed_days

WRITE_ROWS = 250_000  # daily roll-ups fetched from DuckDB and written per call
_BATCH = 900  # ids per IN list: below SQLite's oldest 999-parameter limit


def _day(col: str) -> str:
    """SQL for the day number of epoch seconds ``col`` (floored, as polars does)."""
    return f"CAST(floor({col} / {SECONDS_PER_DAY}) AS INTEGER)"


OnReject = Callable[[int, str], None]


@dataclass
class BulkResult:
    """What the fast path did: write counts (``rejected`` included) and lines read."""

    counts: WriteCounts
    lines: int


def _users(values: pl.Series) -> pl.Series:
    # What events.validate makes of a user (trimmed, lower-case): the roll-ups' key.
    return values.str.strip_chars().str.to_lowercase()


def load_lookups(scan: OsqueryScan, mapper: OsqueryMapper, apps: AppMatcher) -> None:
    """Answer the scan's distinct SIDs, accounts and app values as the block reader
    does (``OsqueryMapper``), and hand the answers to DuckDB as tables."""
    raw = pl.Series("sid", [s for (s,) in scan.distinct("sids")], dtype=pl.String)
    norm = raw.to_frame().select(blank_to_null(pl.col("sid")).str.to_uppercase()).to_series()
    wanted = norm.drop_nulls().unique().to_list()
    answers = {k: (u, s) for k, u, s in mapper.sid_answers(wanted)} if wanted else {}
    sid_rows = []
    for r, n in zip(raw.to_list(), norm.to_list(), strict=True):
        upn, status = answers.get(n, (None, None)) if n is not None else (None, None)
        reason = None
        if status == INVALID:
            reason = f"not a SID '{n[:60]}'"
        elif status == UNKNOWN:
            reason = f"unknown SID {n}"
        sid_rows.append((r, n, upn, status, reason))
    _load_people(scan, "sids", {"raw": "VARCHAR", "norm": "VARCHAR"}, sid_rows)

    pairs = scan.distinct("accounts")
    frame = pl.DataFrame(pairs, schema={"username": pl.String, "user": pl.String}, orient="row")
    account = frame.select(
        blank_to_null(pl.coalesce(blank_to_null(pl.col("username")), pl.col("user")))
    ).to_series()
    wanted = account.drop_nulls().unique().to_list()
    answers = {k: (u, s) for k, u, s in mapper.account_answers(wanted)} if wanted else {}
    acct_rows = []
    for (uname, usr), a in zip(pairs, account.to_list(), strict=True):
        upn, status = answers.get(a, (None, None)) if a is not None else (None, None)
        reason = f"unknown account '{a[:60]}'" if status == UNKNOWN and a is not None else None
        acct_rows.append((uname, usr, a, upn, status, reason))
    _load_people(
        scan,
        "accts",
        {"uname": "VARCHAR", "usr": "VARCHAR", "account": "VARCHAR"},
        acct_rows,
    )

    values = [v for (v,) in scan.distinct("apps")]
    names = pl.Series([apps.name(*v.split("\x1f")) for v in values], dtype=pl.String)
    stripped = names.str.strip_chars()  # events.validate's app name and key
    app_rows = list(
        zip(
            values,
            stripped.to_list(),
            stripped.str.to_lowercase().to_list(),
            (stripped.is_not_null() & (stripped.str.len_bytes() == 0)).to_list(),
            [None] * len(values),
            strict=True,
        )
    )
    scan.load(
        "apps",
        {
            "raw": "VARCHAR",
            "app_name": "VARCHAR",
            "app_key": "VARCHAR",
            "blank": "BOOLEAN",
            "app_id": "BIGINT",
        },
        app_rows,
    )


def _load_people(
    scan: OsqueryScan, table: str, keys: dict[str, str], rows: Sequence[tuple[object, ...]]
) -> None:
    """A look-up table: its key columns, then the user (validated spelling), status and
    the reason a row with an unknown value is refused."""
    upns = _users(pl.Series([r[-3] for r in rows], dtype=pl.String)).to_list()
    full = [(*r[:-3], u, r[-2], r[-1], None) for r, u in zip(rows, upns, strict=True)]
    columns = {
        **keys,
        "upn": "VARCHAR",
        "status": "VARCHAR",
        "reason": "VARCHAR",
        "user_id": "BIGINT",
    }
    scan.load(table, columns, full)


def _bad_line_reasons(scan: OsqueryScan, *, tail_line: int | None) -> list[tuple[int, str]]:
    """Why each malformed or unnamed line was refused, in the block reader's words."""
    out = []
    for line, kind, raw in scan.bad_lines():
        if kind != BAD:
            out.append((line, "not an osquery result (no query name)"))
            continue
        try:
            obj = json.loads(raw or "")
        except ValueError as exc:
            if line == tail_line:  # cut short: the logger was still writing it
                out.append((line, "incomplete last line (the log ends mid-record)"))
            else:
                out.append((line, f"not a JSON object ({str(exc)[:60]})"))
            continue
        if isinstance(obj, dict):
            # Valid JSON that DuckDB still could not read as a result line.
            out.append((line, "not an osquery result (unreadable values)"))
        else:
            out.append((line, "not a JSON object"))
    return out


def _assign_ids(scan: OsqueryScan, conn: Connection, writer: UsageWriter) -> None:
    """Create (or find) the store ids of the accepted users and apps; put them into the
    look-up tables."""
    users = pl.Series("user", scan.accepted_users(), dtype=pl.String)
    if users.len():
        ids = writer.keys.add_users(conn, users, now=writer.now_s)
        ids = ids.join(users.to_frame(), on="user", how="semi")
        scan.load("uid", {"upn": "VARCHAR", "user_id": "BIGINT"}, ids.rows())
        for table in ("sids", "accts"):
            scan.run(
                f"UPDATE {table} SET user_id = uid.user_id FROM uid WHERE {table}.upn = uid.upn"
            )
    names = pl.DataFrame(
        scan.accepted_apps(), schema={"app_key": pl.String, "app_name": pl.String}, orient="row"
    )
    if names.height:
        ids = writer.keys.add_apps(conn, names).join(names, on="app_key", how="semi")
        scan.load("aid", {"app_key": "VARCHAR", "app_id": "BIGINT"}, ids.rows())
        scan.run("UPDATE apps SET app_id = aid.app_id FROM aid WHERE apps.app_key = aid.app_key")


def _store_rows(
    conn: Connection, sql: str, user_ids: list[int], params: dict[str, int] | None = None
) -> list[tuple[int, ...]]:
    rows: list[tuple[int, ...]] = []
    for i in range(0, len(user_ids), _BATCH):
        part = ",".join(str(int(u)) for u in user_ids[i : i + _BATCH])
        rows += [tuple(r) for r in conn.execute(text(sql.format(ids=part)), params or {})]
    return rows


def _new_uses(scan: OsqueryScan, conn: Connection) -> None:
    """View or table ``n``: the accepted moments of use (``e``) the store does not hold
    yet, with their day."""
    day = _day("e.ts")
    user_ids = [int(u) for u in scan.numbers("SELECT DISTINCT user_id FROM e")["user_id"]]
    latest = _store_rows(
        conn,
        "SELECT user_id, app_id, last_seen FROM usage_latest WHERE user_id IN ({ids})",
        user_ids,
    )
    if not latest:  # nothing of these users in the store yet: every distinct use is new
        scan.run(f"CREATE VIEW n AS SELECT e.user_id, e.app_id, e.ts, {day} AS day FROM e")
        return
    scan.load("lat", {"user_id": "BIGINT", "app_id": "BIGINT", "last_seen": "BIGINT"}, latest)
    earlier = (
        "SELECT e.user_id, e.app_id, e.ts FROM e JOIN lat USING (user_id, app_id) "
        "WHERE e.ts < lat.last_seen"
    )
    by_day: dict[int, list[int]] = {}
    found = scan.numbers(f"SELECT DISTINCT {day} AS day, e.user_id FROM ({earlier}) e")
    for d, user in zip(found["day"].tolist(), found["user_id"].tolist(), strict=True):
        by_day.setdefault(int(d), []).append(int(user))
    spans: list[tuple[int, ...]] = []
    for d, users in sorted(by_day.items()):
        spans += _store_rows(
            conn,
            "SELECT day, user_id, app_id, first_seen, last_seen FROM usage_daily "
            "WHERE day = :day AND user_id IN ({ids})",
            users,
            {"day": d},
        )
    cols = ("day", "user_id", "app_id", "first_seen", "last_seen")
    scan.load("spans", dict.fromkeys(cols, "BIGINT"), spans)
    # Later than the last use the store holds: new. Equal: a repeat. Earlier: new unless
    # inside the span already recorded for its day (store.recorded_uses).
    scan.run(
        f"CREATE TABLE n AS SELECT e.user_id, e.app_id, e.ts, {day} AS day "
        "FROM e LEFT JOIN lat USING (user_id, app_id) "
        "WHERE lat.last_seen IS NULL OR e.ts > lat.last_seen OR (e.ts < lat.last_seen AND NOT "
        f"EXISTS (SELECT 1 FROM spans s WHERE s.day = {day} "
        "AND s.user_id = e.user_id AND s.app_id = e.app_id "
        "AND e.ts BETWEEN s.first_seen AND s.last_seen))"
    )


def _frame(columns: Mapping[str, np.ndarray]) -> pl.DataFrame:
    return pl.DataFrame({k: pl.Series(k, v) for k, v in columns.items()})


def _write_rollups(scan: OsqueryScan, conn: Connection, writer: UsageWriter) -> int:
    """Roll the new uses up and write them; returns how many uses were new."""
    scan.run(
        "CREATE TABLE d AS SELECT day, user_id, app_id, 0::BIGINT AS seconds, "
        "count(*) AS events, min(ts) AS first_seen, max(ts) AS last_seen "
        "FROM n GROUP BY day, user_id, app_id"
    )
    per_day = scan.numbers("SELECT day, count(*) AS rows FROM d GROUP BY day ORDER BY day")
    days = [int(d) for d in per_day["day"]]
    fresh = FreshDays()
    start, size = 0, 0
    cuts = []
    for i, rows in enumerate(per_day["rows"].tolist()):
        size += int(rows)
        if size >= WRITE_ROWS or i == len(days) - 1:
            cuts.append((days[start], days[i]))
            start, size = i + 1, 0
    for first, last in cuts:
        chunk = _frame(
            scan.numbers(
                "SELECT day, user_id, app_id, seconds, events, first_seen, last_seen FROM d "
                "WHERE day BETWEEN ? AND ?",
                [first, last],
            )
        )
        chunk_days = [d for d in days if first <= d <= last]
        # Days no import has written yet take plain inserts (store.usage_writer).
        write_table(conn, "usage_daily", chunk, insert_only=fresh.all_fresh(conn, chunk_days))
        fresh.written(chunk_days)
    refresh_summaries(conn, days, defer=True)
    if days:
        latest = _frame(
            scan.numbers(
                "SELECT user_id, app_id, min(day) AS first_day, max(day) AS last_day, "
                "max(last_seen) AS last_seen FROM d GROUP BY user_id, app_id"
            )
        )
        writer.latest.add(latest)
    seen = _frame(scan.numbers("SELECT user_id, day FROM d UNION SELECT user_id, day FROM h"))
    if seen.height:
        writer.observed.add(observed_days(seen.cast({"day": pl.Int32}), user="user_id"))
    return int(scan.one_value("SELECT coalesce(sum(events), 0) FROM d"))


def import_scanned(
    scan: OsqueryScan,
    conn: Connection,
    *,
    writer: UsageWriter,
    mapper: OsqueryMapper,
    apps: AppMatcher,
    incomplete_tail: bool,
    on_reject: OnReject,
) -> BulkResult:
    """Map, check, de-duplicate and write a scanned log in ``conn``'s transaction.

    Every refused line and row goes to ``on_reject`` in line order; ``mapper.stats``
    gets the skipped and unknown tallies, as the block reader leaves them.
    """
    scan.group(now_limit=writer.now_s + FUTURE_SLACK_SECONDS)
    load_lookups(scan, mapper, apps)
    scan.classify()
    totals = scan.totals()
    stats = mapper.stats
    stats.never_used += totals.never_used
    stats.machine_accounts += totals.machine_accounts
    stats.unknown_queries.update(scan.unknown_queries())
    sids, accounts = scan.unknown_people()
    stats.unknown_sids.update(sids)
    stats.unknown_accounts.update(accounts)
    rejected = 0
    if totals.bad_lines or totals.rejected:
        scan.number_refused()
        tail = scan.last_line() if incomplete_tail and totals.bad_lines else None
        bad = _bad_line_reasons(scan, tail_line=tail)
        rows: Iterator[tuple[int, str]] = heapq.merge(bad, scan.rejects())
        for line, reason in rows:
            on_reject(line, reason)
            rejected += 1
    _assign_ids(scan, conn, writer)
    scan.accepted()
    _new_uses(scan, conn)
    new = _write_rollups(scan, conn, writer)
    counts = WriteCounts(
        events=new,
        repeats=totals.uses - new,
        observations=totals.observations,
        rejected=rejected,
    )
    return BulkResult(counts=counts, lines=totals.lines)


def scan_file(
    path: Path,
    workdir: Path,
    *,
    threads: int,
    memory_limit: str,
    facts: Callable[[], tuple[int, bool]],
) -> OsqueryScan:
    """Scan ``path`` into a DuckDB database under ``workdir`` (raises ``ScanRefused``).

    The fast records reader first; when its records are not the file's lines (blank
    lines, or garbage before the last line), the lines reader. ``facts`` gives, once
    known, the file's line count and whether it holds a carriage return anywhere
    (DuckDB's CSV reader ends lines there too: the lines reader cannot number them).
    """
    scan = OsqueryScan(workdir / "scan.duckdb", threads=threads, memory_limit=memory_limit)
    try:
        try:
            scan.scan(path, reader="records")
            fits = scan.records_are_lines(facts()[0], lambda: last_line(path))
        except ScanRefused:
            fits = False
        if not fits:
            if facts()[1]:
                raise ScanRefused("carriage returns, and lines the NDJSON reader cannot number")
            scan.scan(path, reader="lines")
    except BaseException:
        scan.close()
        raise
    return scan


def last_line(path: Path) -> bytes:
    """The file's last line (without its line end)."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - MAX_LINE_BYTES - 2))
        tail = fh.read()
    return tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
