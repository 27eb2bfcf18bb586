"""Benchmark: full verdict evaluation for every policy, SQLite store vs DuckDB.

    .venv/bin/python -m bench.decide                      # 50,000 users, 20 policies, 90 days
    .venv/bin/python -m bench.decide --users 5000 --runs 1
    .venv/bin/python -m bench.decide --keep /tmp/decide.db --reuse   # build once, then reuse

Builds a SQLite store from a generated organization (``bench/decide_data.py``),
bringing the monthly usage summary up to date the way the first decision after an
import does (``refresh_summaries``, timed separately: a backfill, then single days),
then measures Reclaim's own verdict evaluation (``services.decisions.evaluate``:
set-based fact queries + the domain Evaluator). For reference it computes the same
verdicts with DuckDB straight from the same daily roll-ups (one aggregate query, then
the same Evaluator), checks both agree on every member, and prints the times. Results
go in bench/README.md ("Decisions").

Building the store takes about a minute; ``--keep PATH --reuse`` builds it at PATH once
and later runs with the same ``--users/--policies/--days`` (and the same
``bench/decide_data.py``, recorded in ``PATH.json``) use it as it is: for iterating on
the evaluation. The summary upkeep is then not measured (a fresh build measures it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from bench.decide_data import BenchOrg, generate
from bench.measure import stamp, write_readme_block
from reclaim.domain.usage import Evaluator, MemberFacts, UsageFacts, Verdict, month_index
from reclaim.services.decisions import evaluate
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.policies import sync_policies
from reclaim.store.summaries import refresh_summaries

Key = tuple[str, str]  # (policy, user)
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def build_store(path: Path, org: BenchOrg) -> tuple[Any, Upkeep]:
    """A migrated SQLite store holding ``org``; returns (engine, timed summary upkeep)."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    now = int(dt.datetime.combine(org.end, dt.time(), tzinfo=dt.UTC).timestamp())
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cur.executemany(
            "INSERT INTO users (id, upn, first_seen) VALUES (?, ?, ?)",
            [(i + 1, u, now) for i, u in enumerate(org.upns)],
        )
        cur.executemany(
            "INSERT INTO apps (id, key, name) VALUES (?, ?, ?)",
            [(i + 1, k, k) for i, k in enumerate(org.app_keys)],
        )
        cur.execute(
            "INSERT INTO sources (id, name, kind, rows_accepted, rows_rejected) "
            "VALUES (1, 'bench', 'file', ?, 0)",
            (int(org.daily.get_column("events").sum()),),
        )
        for table, frame in (
            ("usage_daily", org.daily),
            ("usage_latest", org.latest.sort("user_id", "app_id")),
            ("usage_observed", org.observed.sort("user_id", "source_id", "month")),
        ):
            cols = frame.columns
            cur.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                frame.iter_rows(),
            )
        ids = sync_policies(conn, tuple(org.policies), now=now)
        pid = pl.DataFrame(
            {"policy": range(len(org.policies)), "policy_id": [ids[p.name] for p in org.policies]}
        )
        rows = org.memberships.join(pid, on="policy").select("policy_id", "user_id", "granted_at")
        cur.executemany(
            "INSERT INTO memberships (policy_id, user_id, granted_at, granted_source, "
            "first_seen, last_seen, active) VALUES (?, ?, ?, 'file', ?, ?, 1)",
            [(*r, now, now) for r in rows.iter_rows()],
        )
    # The summary's upkeep, as imports leave it to be paid (refresh_summaries): a
    # backfill of all days but the last DAILY_DAYS in one call (whole months in one
    # grouped pass), then each of the last days on its own, as after a daily import.
    days = sorted(set(org.daily.get_column("day").to_list()))
    backfill, daily_days = days[:-DAILY_DAYS], days[-DAILY_DAYS:]
    started = time.perf_counter()
    with engine.begin() as conn:
        refresh_summaries(conn, backfill, now=now)
    took = time.perf_counter() - started
    upkeep = Upkeep(backfill_s=took, backfill_rows=_rows(org, backfill))
    for day in daily_days:
        started = time.perf_counter()
        with engine.begin() as conn:
            refresh_summaries(conn, [day], now=now)
        upkeep.daily_s.append(time.perf_counter() - started)
    upkeep.daily_rows = _rows(org, daily_days) / len(daily_days)
    return engine, upkeep


DAILY_DAYS = 10


@dataclass
class Upkeep:
    """Timed summary upkeep: one backfill, then single days."""

    backfill_s: float
    backfill_rows: int
    daily_s: list[float] = field(default_factory=list)
    daily_rows: float = 0.0

    def line(self, days: int) -> str:
        """The upkeep sentence of the table's footer."""
        each = statistics.median(self.daily_s)
        return (
            f"Summary upkeep (`refresh_summaries`, paid by the first decision after an "
            f"import): a backfill of {days} days ({self.backfill_rows:,} roll-ups) in "
            f"{self.backfill_s:.1f} s ({self.backfill_rows / self.backfill_s / 1e3:,.0f} k "
            f"rows/s); one day (~{self.daily_rows:,.0f} roll-ups) in {each:.2f} s "
            f"(median of {len(self.daily_s)})"
        )


def _rows(org: BenchOrg, days: list[int]) -> int:
    return org.daily.filter(pl.col("day").is_in(days)).height


def sqlite_verdicts(
    engine: Any, org: BenchOrg, as_of: dt.date
) -> tuple[float, dict[Key, Verdict], float]:
    """Reclaim's own evaluation; returns (seconds, verdicts, CPU seconds of all threads)."""
    cpu = time.process_time()
    started = time.perf_counter()
    result = evaluate(engine, org.policies, as_of=as_of, now=NOW, configured=org.policies)
    took = time.perf_counter() - started
    cpu = time.process_time() - cpu
    return took, {(pv.policy.name, r.user): r.verdict for pv in result for r in pv.rows()}, cpu


_DUCK_FACTS = """
WITH u AS (
  SELECT pa.policy_id, d.user_id,
         max(d.day) AS last_day,
         sum(d.seconds) FILTER (WHERE d.day > $hi - pa.window_days) AS secs,
         count(*) FILTER (WHERE d.day > $hi - pa.window_days) AS n_win,
         bit_or(CAST(1 AS BIGINT) << CAST($top
                - (year(DATE '1970-01-01' + CAST(d.day AS INTEGER)) * 12
                   + month(DATE '1970-01-01' + CAST(d.day AS INTEGER)) - 1) AS INTEGER)) AS months
  FROM daily d JOIN policy_apps pa ON d.app_id = pa.app_id
  WHERE d.day <= $hi
  GROUP BY pa.policy_id, d.user_id
), o AS (
  SELECT user_id, m_start, CASE WHEN month = $top THEN mask & $bits ELSE mask END AS mask
  FROM (SELECT user_id, month, bit_or(days_mask) AS mask,
               make_date(CAST(month // 12 AS INTEGER), CAST(month % 12 + 1 AS INTEGER), 1)
               - DATE '1970-01-01' AS m_start
        FROM observed WHERE month <= $top GROUP BY user_id, month)
), obs AS (
  SELECT user_id,
         min(m_start + CAST(log2(mask & -mask) AS INTEGER)) AS first_day,
         max(m_start + CAST(floor(log2(mask)) AS INTEGER)) AS last_day
  FROM o WHERE mask != 0 GROUP BY user_id
)
SELECT m.policy_id, us.upn, m.granted_at // 86400 AS granted, u.last_day,
       CASE WHEN u.n_win > 0 AND u.secs > 0 THEN u.secs / 60.0
            WHEN u.n_win > 0 THEN NULL ELSE 0.0 END AS minutes,
       obs.first_day, obs.last_day AS seen, coalesce(u.months, 0) AS months
FROM members m
JOIN users us ON us.id = m.user_id
LEFT JOIN u ON u.policy_id = m.policy_id AND u.user_id = m.user_id
LEFT JOIN obs ON obs.user_id = m.user_id
"""


def duckdb_verdicts(org: BenchOrg, as_of: dt.date) -> tuple[float, dict[Key, Verdict]]:
    """The same verdicts from the same roll-ups with DuckDB; returns (seconds, verdicts)."""
    con = duckdb.connect()
    app_id = {k: i + 1 for i, k in enumerate(org.app_keys)}
    policy_apps = pl.DataFrame(
        [
            (k, app_id[a], (p.underuse.window_days if p.underuse else 90))
            for k, p in enumerate(org.policies)
            for a in p.app_keys()
        ],
        schema={"policy_id": pl.Int64, "app_id": pl.Int64, "window_days": pl.Int64},
        orient="row",
    )
    users = pl.DataFrame({"id": range(1, len(org.upns) + 1), "upn": org.upns})
    members = org.memberships.rename({"policy": "policy_id"})
    with tempfile.TemporaryDirectory(prefix="reclaim-duck-") as tmp:
        for name, frame in (
            ("daily", org.daily),
            ("observed", org.observed),
            ("policy_apps", policy_apps),
            ("users", users),
            ("members", members),
        ):
            # Parquet in between: DuckDB reads polars frames only through pyarrow.
            frame.write_parquet(Path(tmp) / f"{name}.parquet")
            con.execute(
                f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{Path(tmp) / name}.parquet')"
            )
    epoch = dt.date(1970, 1, 1)
    params = {
        "hi": (as_of - epoch).days,
        "top": month_index(as_of),
        "bits": (1 << as_of.day) - 1,
    }
    started = time.perf_counter()
    facts = con.execute(_DUCK_FACTS, params).fetchall()
    out: dict[Key, Verdict] = {}

    def day(n: int | None) -> dt.date | None:
        return None if n is None else epoch + dt.timedelta(days=n)

    judges = [Evaluator(p, as_of=as_of).evaluate for p in org.policies]
    for k, upn, granted, last, minutes, first, seen, months in facts:
        member = MemberFacts(upn, frozenset(), day(granted))
        usage = UsageFacts(day(last), minutes, day(first), day(seen), months)
        out[(org.policies[k].name, upn)] = judges[k](member, usage)
    return time.perf_counter() - started, out


def _same(verdicts: dict[Key, Verdict]) -> dict[Key, tuple[Any, ...]]:
    """Verdicts with minutes rounded: the two engines sum in different orders."""
    return {
        k: (
            v.kind,
            v.reason,
            v.last_used,
            None if v.minutes_in_window is None else round(v.minutes_in_window, 6),
        )
        for k, v in verdicts.items()
    }


def main() -> None:
    """Command line: generate, load, measure, compare; prints a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--policies", type=int, default=20)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each; the best counts")
    ap.add_argument("--keep", type=Path, default=None, help="keep the SQLite store here")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: use the kept store if built for the same data (upkeep not measured)",
    )
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    args = ap.parse_args()
    if args.reuse and args.keep is None:
        ap.error("--reuse needs --keep PATH")
    # The last day of data (a normal run), and a look back 15 days into the data.
    dates = [(dt.date(2026, 10, 31), "today"), (dt.date(2026, 10, 16), "look back 15 days")]

    t = time.perf_counter()
    org = generate(users=args.users, policies=args.policies, days=args.days)
    shape = (
        f"{len(org.upns):,} users, {len(org.policies)} policies, "
        f"{org.memberships.height:,} memberships, {org.daily.height:,} daily roll-ups"
    )
    print(f"generated {shape} ({time.perf_counter() - t:.1f} s)")
    lines = [
        "| as of | members judged | Reclaim on SQLite: best (median) | its CPU time (best) "
        "| DuckDB: best (median) | ratio | same verdicts |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="reclaim-bench-") as tmp:
        path = args.keep or Path(tmp) / "decide.db"
        stamp = _stamp(args)
        t = time.perf_counter()
        if args.reuse and _stamp_of(path) == stamp:
            engine = make_engine(f"sqlite:///{path}")
            upgrade(engine)
            upkeep_line = "Summary upkeep not measured (store reused: `--reuse`)"
            print(f"reusing the store at {path}")
        else:
            if path.exists():
                os.remove(path)
            _stamp_path(path).unlink(missing_ok=True)
            engine, upkeep = build_store(path, org)
            upkeep_line = upkeep.line(org.daily.get_column("day").n_unique() - DAILY_DAYS)
            if args.keep:
                _stamp_path(path).write_text(json.dumps(stamp))
            print(f"store built in {time.perf_counter() - t:.1f} s; {upkeep_line}")
        for as_of, label in dates:
            lite, duck = [], []
            for _ in range(args.runs):  # interleaved: load on the machine hits both alike
                lite.append(sqlite_verdicts(engine, org, as_of))
                duck.append(duckdb_verdicts(org, as_of))
            a, b = _same(lite[0][1]), _same(duck[0][1])
            diff = [k for k in a.keys() | b.keys() if a.get(k) != b.get(k)]
            for k in diff[:5]:
                print("DIFF", k, a.get(k), b.get(k))
            ls, ds = [x[0] for x in lite], [x[0] for x in duck]
            cpu = min(x[2] for x in lite)
            lines.append(
                f"| {as_of} ({label}) | {len(a):,} | {min(ls):.2f} s ({statistics.median(ls):.2f}) "
                f"| {cpu:.2f} s | {min(ds):.2f} s ({statistics.median(ds):.2f}) "
                f"| {min(ls) / min(ds):.2f} "
                f"| {'yes' if not diff else f'NO ({len(diff)} differ)'} |"
            )
            print(lines[-1])
        engine.dispose()
    load = os.getloadavg()[0]
    table = "\n".join(lines) + f"\n\n{upkeep_line}. Load average when done: {load:.1f}."
    print()
    print(table)
    if args.write_readme:
        _write_readme(table, shape=shape, runs=args.runs)


def _stamp(args: argparse.Namespace) -> dict[str, Any]:
    """What a kept store was built from: the shape asked for and the generator's source."""
    source = Path(__file__).with_name("decide_data.py").read_bytes()
    return {
        "users": args.users,
        "policies": args.policies,
        "days": args.days,
        "decide_data": hashlib.sha256(source).hexdigest(),
    }


def _stamp_path(store: Path) -> Path:
    return store.with_name(store.name + ".json")


def _stamp_of(store: Path) -> dict[str, Any] | None:
    """The stamp of a kept store, or None when there is no store or no stamp."""
    stamp = _stamp_path(store)
    if not store.exists() or not stamp.exists():
        return None
    found: dict[str, Any] = json.loads(stamp.read_text())
    return found


def _write_readme(table: str, *, shape: str, runs: int) -> None:
    block = f"`python -m bench.decide` — {shape}; best of {runs}; {stamp()}:\n\n{table}"
    write_readme_block("decide", "Decisions", block)


if __name__ == "__main__":
    main()
