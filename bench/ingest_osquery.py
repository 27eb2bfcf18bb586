"""The osquery mode of the ingest benchmark: ``python -m bench.ingest --format osquery``.

Generates (or reuses) an osquery results log with bench/datagen.py
(``write_osquery_log``: the filesystem logger's JSON lines, event, snapshot and batched
formats mixed, plus another query's lines that Reclaim skips) and the identities that
map its SIDs to users, then in a child process, so the peak RSS is the import's own:
imports the identities, and times ``import_osquery_file`` (what ``reclaim usage
import --format osquery`` calls) into a fresh SQLite file or PostgreSQL database.
Reports lines/s and peak RSS; ``--write-readme`` replaces the "Ingest (osquery)"
section of bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import cpu_seconds, peak_rss_mb, stamp, write_readme_block

ROOT = Path(__file__).resolve().parent.parent
LINES_TARGET = 300_000  # lines/s on the 2-core reference machine
RSS_TARGET_MB = 500
MARKER = "ingest-osquery"  # bench/README.md block: <!-- ingest-osquery:begin/end -->


def child_osquery(log: str, identities: str, url: str, workdir: str) -> dict[str, Any]:
    """One measured import (run in a child process)."""
    from reclaim.services.identities_import import import_identities
    from reclaim.services.osquery_import import import_osquery_file
    from reclaim.store.engine import make_engine
    from reclaim.store.migrate import upgrade
    from reclaim.usage_sources.app_aliases import AppMatcher

    engine = make_engine(url)
    upgrade(engine)
    now = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)  # the day after the generated month
    import_identities(engine, Path(identities), now=now)
    apps = AppMatcher([["Microsoft Visio", r"*\Office16\VISIO.EXE"]])
    cpu = cpu_seconds()
    start = time.perf_counter()
    report = import_osquery_file(
        engine, Path(log), now=now, apps=apps, report_dir=Path(workdir) / "reports"
    )
    seconds = time.perf_counter() - start
    own, kids = (b - a for a, b in zip(cpu, cpu_seconds(), strict=True))
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM usage_daily").scalar_one()
    return {
        "seconds": seconds,
        "cpu_s": own + kids,
        "reader": report.reader,
        "lines": report.lines,
        "events": report.events,
        "repeats": report.repeats,
        "observations": report.observations,
        "rejected": report.rows_rejected,
        "rollup_rows": rows,
        "rss_mb": peak_rss_mb(),
    }


def run(
    args: argparse.Namespace,
    *,
    run_child: Callable[..., dict[str, Any]],
    private_postgres: Callable[[Path], tuple[str, Path]],
    fresh_pg_database: Callable[[str], str],
    stop_postgres: Callable[[Path], object],
) -> None:
    """Generate, import into each database asked for, print (and maybe write) the table."""
    from bench.datagen import write_osquery_identities, write_osquery_log

    with tempfile.TemporaryDirectory(prefix="reclaim-bench-osquery-") as tmp:
        work = Path(tmp)
        log = args.file or work / "osqueryd.results.log"
        if not args.file:
            t = time.perf_counter()
            write_osquery_log(log, lines=args.lines, devices=args.devices)
            print(
                f"generated {log.stat().st_size / 1e6:,.0f} MB in {time.perf_counter() - t:.1f} s",
                flush=True,
            )
        ids = write_osquery_identities(work / "identities.csv", devices=args.devices)
        rows: list[tuple[str, dict[str, Any]]] = []
        pg_folder = None
        try:
            if args.db in ("sqlite", "both"):
                url = f"sqlite:///{work / 'bench.db'}"
                r = run_child("osquery", str(log), str(ids), url, str(work))
                rows.append(("Reclaim osquery import → SQLite", r))
            if args.db in ("postgresql", "both"):
                admin = args.pg_url
                if not admin:
                    admin, pg_folder = private_postgres(work)
                r = run_child("osquery", str(log), str(ids), fresh_pg_database(admin), str(work))
                rows.append(("Reclaim osquery import → PostgreSQL", r))
        finally:
            if pg_folder is not None:
                stop_postgres(pg_folder)
        table = _table(rows)
        print(table)
        if args.write_readme:
            _write_readme(table, lines=args.lines, devices=args.devices)


def _table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        "| run | reader | seconds | CPU s | lines/s | new uses | repeats | observations "
        "| roll-up rows | peak RSS MB | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in rows:
        rate = r["lines"] / r["seconds"]
        ok = rate >= LINES_TARGET and r["rss_mb"] <= RSS_TARGET_MB
        target = f"≥ {LINES_TARGET:,} lines/s, ≤ {RSS_TARGET_MB} MB: {'met' if ok else 'NOT met'}"
        lines.append(
            f"| {name} | {r['reader']} | {r['seconds']:.1f} | {r['cpu_s']:.1f} | {rate:,.0f} "
            f"| {int(r['events']):,} "
            f"| {int(r['repeats']):,} | {int(r['observations']):,} | {int(r['rollup_rows']):,} "
            f"| {r['rss_mb']:.0f} | {target} |"
        )
    lines.append(f"\nLoad average when done: {os.getloadavg()[0]:.1f}.")
    return "\n".join(lines)


def _write_readme(table: str, *, lines: int, devices: int) -> None:
    block = (
        f"`python -m bench.ingest --format osquery` — {lines:,} lines, {devices:,} devices, "
        f"{stamp()}:\n\n{table}"
    )
    write_readme_block(MARKER, "Ingest (osquery)", block)
