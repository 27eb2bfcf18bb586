"""Usage ingestion benchmark: events/s and peak RSS through the CLI's own import path.

    python -m bench.ingest                    # 10M events: SQLite, PostgreSQL, DuckDB reference
    python -m bench.ingest --events 1000000 --db sqlite
    python -m bench.ingest --format osquery   # 10M osquery result lines (bench/ingest_osquery.py)

Generates (or reuses) a usage CSV with bench/datagen.py, then in separate child
processes, so each peak RSS is that run's own:
- imports it with ``reclaim.services.usage_import.import_usage_file`` (what
  ``reclaim usage import`` calls) into a fresh SQLite file and a fresh PostgreSQL
  database (a private server is started with scripts/pg.sh unless --pg-url is given);
- computes the same daily roll-ups from the same file with DuckDB: the reference.
Prints a table and, with --write-readme, replaces the Ingest section of bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.measure import (
    cpu_seconds,
    fresh_pg_database,
    peak_rss_mb,
    private_postgres,
    stamp,
    write_readme_block,
)

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"sqlite": 1_000_000, "postgresql": 500_000}
RSS_TARGET_MB = 500


def _child_import(path: str, url: str, workdir: str) -> dict[str, float]:
    from reclaim.services.usage_import import import_usage_file
    from reclaim.store.engine import make_engine
    from reclaim.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    cpu = cpu_seconds()
    start = time.perf_counter()
    report = import_usage_file(
        engine, Path(path), now=dt.datetime.now(dt.UTC), report_dir=Path(workdir) / "reports"
    )
    seconds = time.perf_counter() - start
    own, kids = (b - a for a, b in zip(cpu, cpu_seconds(), strict=True))
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM usage_daily").scalar_one()
    return {
        "seconds": seconds,
        "cpu_s": own + kids,
        "events": report.rows_accepted,
        "rollup_rows": rows,
        "rss_mb": peak_rss_mb(),
    }


def _child_duckdb(path: str) -> dict[str, float]:
    import duckdb

    con = duckdb.connect()
    cpu = cpu_seconds()[0]
    start = time.perf_counter()
    rows = con.execute(
        """
        SELECT count(*) FROM (
          SELECT u, a, e // 86400 AS day, sum(seconds) AS seconds, count(*) AS events,
                 min(e) AS first_seen, max(e) AS last_seen
          FROM (
            SELECT lower(trim("user")) AS u, lower(trim(app)) AS a, seconds,
                   CAST(epoch(CAST("timestamp" AS TIMESTAMPTZ)) AS BIGINT) AS e
            FROM read_csv(?, header = true, columns = {
                'user': 'VARCHAR', 'app': 'VARCHAR', 'timestamp': 'VARCHAR',
                'seconds': 'BIGINT', 'device': 'VARCHAR'}))
          GROUP BY ALL)
        """,
        [path],
    ).fetchone()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "cpu_s": cpu_seconds()[0] - cpu,
        "rollup_rows": rows[0] if rows else 0,
        "rss_mb": peak_rss_mb(),
    }


def _run_child(kind: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--child", kind, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Run the benchmark (or, with --child, one measured part of it)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg-url", help="admin URL of a PostgreSQL to use (default: start one)")
    ap.add_argument("--file", type=Path, help="usage CSV to reuse (default: generate)")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    ap.add_argument("--format", choices=("csv", "osquery"), default="csv")
    ap.add_argument("--lines", type=int, default=10_000_000, help="osquery: result lines")
    ap.add_argument("--devices", type=int, default=10_000, help="osquery: devices (one user each)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        from bench.ingest_osquery import child_osquery

        kind, *rest = args.child
        children: dict[str, Callable[..., dict[str, float]]] = {
            "import": _child_import,
            "duckdb": _child_duckdb,
            "osquery": child_osquery,
        }
        print(json.dumps(children[kind](*rest)))
        return
    if args.format == "osquery":
        from bench.ingest_osquery import run as run_osquery

        run_osquery(
            args,
            run_child=_run_child,
            private_postgres=private_postgres,
            fresh_pg_database=fresh_pg_database,
            stop_postgres=lambda folder: subprocess.run(
                ["bash", "scripts/pg.sh", "stop", str(folder)], cwd=ROOT, check=False
            ),
        )
        return

    from bench.datagen import write_usage_file

    with tempfile.TemporaryDirectory(prefix="reclaim-bench-") as tmp:
        work = Path(tmp)
        path = args.file or work / "usage.csv"
        if not args.file:
            t = time.perf_counter()
            write_usage_file(path, events=args.events, users=args.users)
            print(
                f"generated {path.stat().st_size / 1e6:,.0f} MB in {time.perf_counter() - t:.1f} s",
                flush=True,
            )
        rows: list[tuple[str, dict[str, float], str | None]] = []
        duck = _run_child("duckdb", str(path))
        rows.append(("DuckDB roll-up (reference)", duck, None))
        pg_folder = None
        try:
            if args.db in ("sqlite", "both"):
                r = _run_child("import", str(path), f"sqlite:///{work / 'bench.db'}", str(work))
                rows.append(("Reclaim import → SQLite", r, "sqlite"))
            if args.db in ("postgresql", "both"):
                admin = args.pg_url
                if not admin:
                    admin, pg_folder = private_postgres(work)
                r = _run_child("import", str(path), fresh_pg_database(admin), str(work))
                rows.append(("Reclaim import → PostgreSQL", r, "postgresql"))
        finally:
            if pg_folder is not None:
                subprocess.run(
                    ["bash", "scripts/pg.sh", "stop", str(pg_folder)], cwd=ROOT, check=False
                )
        table = _table(rows, events=args.events, duck_seconds=duck["seconds"])
        print(table)
        if args.write_readme:
            _write_readme(table, events=args.events, users=args.users)


def _table(
    rows: list[tuple[str, dict[str, float], str | None]], *, events: int, duck_seconds: float
) -> str:
    lines = [
        "| run | seconds | CPU s | events/s | roll-up rows | peak RSS MB | vs DuckDB | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r, db in rows:
        rate = events / r["seconds"]
        ratio = r["seconds"] / duck_seconds
        if db is None:
            target = "reference"
        else:
            ok = rate >= TARGETS[db] and r["rss_mb"] <= RSS_TARGET_MB
            ok = ok and (db != "sqlite" or ratio <= 3.0)
            extra = ", ≤ 3× DuckDB" if db == "sqlite" else ""
            target = (
                f"≥ {TARGETS[db]:,} ev/s, ≤ {RSS_TARGET_MB} MB{extra}: {'met' if ok else 'NOT met'}"
            )
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {r['cpu_s']:.1f} | {rate:,.0f} "
            f"| {int(r['rollup_rows']):,} "
            f"| {r['rss_mb']:.0f} | {ratio:.2f}× | {target} |"
        )
    # Other work on the machine slows every run, the reference's included.
    lines.append(f"\nLoad average when done: {os.getloadavg()[0]:.1f}.")
    return "\n".join(lines)


def _write_readme(table: str, *, events: int, users: int) -> None:
    block = f"`python -m bench.ingest` — {events:,} events, {users:,} users, {stamp()}:\n\n{table}"
    write_readme_block("ingest", "Ingest", block)


if __name__ == "__main__":
    main()
