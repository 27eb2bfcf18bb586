"""Benchmark: the admin web pages of a 500,000-person tenant on PostgreSQL (issue #9).

    .venv/bin/python -m bench.web_scale --pg-url postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
    .venv/bin/python -m bench.web_scale --users 50000 --policies 50 --pg-url …   # smaller

**Data.** The tenant of ``bench.scale`` (``--users`` people, ``--policies`` products
with a large tenant's group sizes, 90 days of roll-ups; ``org_chunks``/``load_org``:
generated 50,000 people at a time and loaded with COPY), then cases for a
``--case-share`` of its memberships, generated as columns: each case's end state is
drawn in ``bench.web``'s shares (``STATES``) and its history is the one the domain's
transitions leave on the way there (``bench.web.walk``, run once per state: every case
ending in a state has the same steps, shifted to its own opening time, spread over
540 days), with a question in the outbox for every case that was asked. Case ids follow
opening times. Everything is written with COPY.

**Measured** (in a child process, so that its peak RSS is the web's alone): the pages
of ``bench.web`` (``bench.web.measure``: the real app over ASGI, a signed-in admin, as
``reclaim serve`` runs it): first render, figures ready for the dashboard and the
policies page, the median of ``--runs``, and the peak RSS from a page's first request
until its figures were ready. Targets: ≤ 300 ms a page (median), ≤ 1 GB while the
dashboard's and the policies page's figures are computed.

``--keep`` leaves the database on the server of ``--pg-url`` (named after the sizes);
``--reuse`` measures such a database again instead of building it (and keeps it).
Prints a table; ``--write-readme`` replaces it in bench/README.md ("Web pages at
scale").
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.measure import private_postgres, write_readme_block
from bench.scale import NOW, copy_frame, load_org, org_chunks
from bench.web import STATES, TARGET_MS, PageTiming, measure, walk
from reclaim.domain import case as dc
from reclaim.domain.case import OPEN, Action, idempotency_key

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 1024  # peak RSS while the dashboard's or the policies page's figures compute
SPAN_S = 540 * 86_400  # cases opened over the 18 months before NOW
SETTLED_S = 300 * 3600  # ... and at least this long before it: every step lies in the past
COMPLETE = "bench.web_scale: complete"  # the database comment a finished build leaves
FIGURES = ("dashboard (/)", "policies (/policies)")  # the pages whose RSS is judged


# -- cases -------------------------------------------------------------------------------
def state_templates() -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per end state: the case's columns, times as offsets from its opening;
    one row per step of each state's history). Built by walking one case to each state
    with the domain's transitions (``bench.web.walk``)."""

    def off(at: dt.datetime | None) -> int | None:
        return None if at is None else int((at - NOW).total_seconds())

    rows, steps = [], []
    for kind, name in enumerate(STATES):
        opened = dc.open_case(
            policy="p", user="u@corp.example", cycle=1, at=NOW, data={"verdict": "unused"}
        )
        case = walk(opened, name, NOW)
        rows.append(
            {
                "kind": kind,
                "state": case.state.value,
                "status": case.status.value,
                "outcome": case.outcome.value if case.outcome else None,
                "is_open": case.state in OPEN,
                "asked_off": off(case.asked_at),
                "answered_off": off(case.answered_at),
                "reminders_sent": case.reminders_sent,
                "attempts": case.attempts,
                "version": len(case.history),
                "updated_off": off(case.updated_at),
            }
        )
        steps += [
            {
                "kind": kind,
                "seq": seq,
                "off": off(e.at),
                "from_state": e.from_state.value if e.from_state else None,
                "to_state": e.to_state.value,
                "cause": e.cause,
            }
            for seq, e in enumerate(case.history)
        ]
    schema = {"asked_off": pl.Int64, "answered_off": pl.Int64, "outcome": pl.String}
    return pl.DataFrame(rows, schema_overrides=schema), pl.DataFrame(steps)


def _memberships(cur: Any) -> pl.DataFrame:
    """Every active membership with its policy's name and the person's UPN."""
    buf = io.BytesIO()
    query = (
        "COPY (SELECT m.policy_id, p.name AS policy, m.user_id, u.upn FROM memberships m "
        "JOIN policies p ON p.id = m.policy_id JOIN users u ON u.id = m.user_id "
        "WHERE m.active ORDER BY m.policy_id, m.user_id) TO STDOUT (FORMAT csv, HEADER)"
    )
    with cur.copy(query) as copy:
        for data in copy:
            buf.write(data)
    buf.seek(0)
    return pl.read_csv(buf)


def _keys(frame: pl.DataFrame, action: Action) -> pl.Series:
    """Each case's idempotency key for ``action``: the domain's own (a SHA-256 of the
    policy, person, cycle and action), as the real writers store it."""
    return pl.Series(
        [
            idempotency_key(policy=p, user=u, cycle=1, action=action)
            for p, u in zip(frame["policy"], frame["upn"], strict=True)
        ]
    )


def load_cases(url: str, *, share: float, seed: int = 5) -> dict[str, int]:
    """Cases for ``share`` of the store's memberships (see the module docstring), with
    their histories and questions, loaded with COPY. Returns counts."""
    from reclaim.store.engine import make_engine

    rng = np.random.default_rng(seed)
    kinds, steps = state_templates()
    engine = make_engine(url)
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        members = _memberships(cur)
        n = int(members.height * share)
        weights = np.array(list(STATES.values()))
        now = int(NOW.timestamp())
        chosen = (
            members[rng.choice(members.height, n, replace=False)]
            .with_columns(
                kind=pl.Series(rng.choice(len(STATES), n, p=weights / weights.sum())),
                at=pl.Series(now - SETTLED_S - rng.integers(0, SPAN_S, n)),
            )
            .sort("at")  # ids in the order cases were opened, as a store numbers them
            .with_row_index("id", offset=1)
            .join(kinds, on="kind")
            .sort("id")
        )
        del members
        at, is_open = pl.col("at"), pl.col("is_open")
        cases = chosen.with_columns(remove_key=_keys(chosen, Action.REMOVE)).select(
            "id",
            "policy_id",
            "user_id",
            pl.lit(1).alias("cycle"),
            "state",
            "status",
            "outcome",
            "is_open",
            pl.lit("unused").alias("verdict"),
            pl.lit("no use in 45 days").alias("reason"),
            (at + pl.col("asked_off")).alias("asked_at"),
            (at + pl.col("answered_off")).alias("answered_at"),
            "reminders_sent",
            "attempts",
            pl.lit(0).alias("failures"),
            "remove_key",
            pl.when(is_open).then(at + SETTLED_S).alias("next_due_at"),
            "version",
            at.alias("opened_at"),
            (at + pl.col("updated_off")).alias("updated_at"),
            pl.when(~is_open).then(at + pl.col("updated_off")).alias("closed_at"),
        )
        copy_frame(cur, "cases", cases)
        events = (
            chosen.select(pl.col("id").alias("case_id"), "kind", "at")
            .join(steps, on="kind")
            .sort("case_id", "seq")
            .select(
                "case_id",
                "seq",
                (at + pl.col("off")).alias("at"),
                "from_state",
                "to_state",
                "cause",
                pl.lit("{}").alias("data"),
            )
        )
        copy_frame(cur, "case_events", events)
        asked = chosen.filter(pl.col("asked_off").is_not_null())
        asks = asked.select(
            _keys(asked, Action.ASK).alias("idempotency_key"),
            pl.col("id").alias("case_id"),
            pl.lit("ask").alias("kind"),
            pl.lit(0).alias("reminder"),
            (at + pl.col("asked_off")).alias("created_at"),
            pl.lit("sent").alias("status"),
            pl.lit("email").alias("channel"),
        )
        copy_frame(cur, "notifications", asks)
        cur.execute("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))")
        counts = {"cases": cases.height, "events": events.height, "asks": asks.height}
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE cases, case_events, notifications")
    engine.dispose()
    return counts


# -- the database ------------------------------------------------------------------------
def _admin(admin_url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(admin_url, isolation_level="AUTOCOMMIT")


def database_name(args: argparse.Namespace) -> str:
    """The kept database's name: the sizes it was built with."""
    share = round(args.case_share * 100)
    return f"bench_web_scale_{args.users}u_{args.policies}p_{share}c"


def prepare(admin_url: str, name: str, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The database to measure (its URL) and what was built: reused when ``--reuse``
    finds a finished build of these sizes, else made afresh."""
    from sqlalchemy import text

    url = admin_url.rsplit("/", 1)[0] + "/" + name
    admin = _admin(admin_url)
    with admin.connect() as conn:
        found = conn.execute(
            text(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = :name"
            ),
            {"name": name},
        ).first()
        if found is not None and args.reuse and found[0] == COMPLETE:
            admin.dispose()
            print(f"reusing {name} (built by an earlier run)", flush=True)
            return url, {"reused": True}
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    started = time.perf_counter()
    tenant = argparse.Namespace(users=args.users, policies=args.policies, days=90, groups="tenant")
    _, counts = load_org(url, org_chunks(tenant))
    loaded = time.perf_counter() - started
    print(f"tenant loaded in {loaded:.0f} s: {counts}", flush=True)
    started = time.perf_counter()
    made = load_cases(url, share=args.case_share)
    print(f"cases loaded in {time.perf_counter() - started:.0f} s: {made}", flush=True)
    with admin.connect() as conn:  # the mark --reuse looks for: the build finished
        conn.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{COMPLETE}'"))
    admin.dispose()
    return url, {"reused": False, "build_s": round(time.perf_counter() - started + loaded)}


def shape(url: str) -> dict[str, int]:
    """What the store holds (exact counts)."""
    from reclaim.store.engine import make_engine

    engine = make_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in ("users", "policies", "memberships", "usage_daily", "cases"):
            out[table] = int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
        out["case_events"] = int(
            conn.exec_driver_sql("SELECT count(*) FROM case_events").scalar_one()
        )
        out["asks"] = int(conn.exec_driver_sql("SELECT count(*) FROM notifications").scalar_one())
    engine.dispose()
    return out


# -- measuring (child process) -----------------------------------------------------------
def _child_measure(url: str, runs: int) -> list[PageTiming]:
    """Measure the pages of the store at ``url`` (in this fresh process)."""
    from reclaim.domain.policy import Policy
    from reclaim.store.engine import make_engine
    from reclaim.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)  # a kept store made before a newer migration
    with engine.connect() as conn:
        # The configuration is the store's policies as the load synced them.
        defs = conn.exec_driver_sql("SELECT definition FROM policies ORDER BY id").scalars()
        configured = [Policy.model_validate(json.loads(d)) for d in defs]
        restored, count = conn.exec_driver_sql(
            "SELECT (SELECT min(id) FROM cases WHERE state = 'restored'), max(id) FROM cases"
        ).one()
    # The filtered list: a policy of median size (most products are small ones).
    filtered = configured[len(configured) // 2].name
    picked = {"restored": int(restored), "_count": int(count)}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-web-scale-") as tmp:
            return asyncio.run(
                measure(
                    engine,
                    Path(tmp),
                    picked,
                    runs,
                    configured=configured,
                    now=NOW,
                    filtered=filtered,
                )
            )
    finally:
        engine.dispose()


def run_child(url: str, runs: int) -> list[PageTiming]:
    """:func:`_child_measure` in a child process: its RSS is the web's alone, not the
    generator's."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.web_scale", "--child", url, "--runs", str(runs)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"the measuring process failed (exit {done.returncode})")
    return [PageTiming(*row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


def table(results: list[PageTiming], runs: int) -> str:
    """The results as a Markdown table."""
    lines = [
        f"| page | first render ms | figures ready ms | median of {runs} ms "
        "| peak RSS MB (first request to figures) | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        judged = r.page in FIGURES
        met = r.median_ms <= TARGET_MS and (not judged or r.peak_rss_mb <= TARGET_MB)
        target = f"≤ {TARGET_MS} ms" + (f", ≤ {TARGET_MB:,} MB" if judged else "")
        ready = "–" if r.ready_ms is None else f"{r.ready_ms:,.0f}"
        cells = (
            r.page,
            f"{r.first_ms:,.0f}",
            ready,
            f"{r.median_ms:,.0f}",
            f"{r.peak_rss_mb:,.0f}",
        )
        lines.append(f"| {' | '.join(cells)} | {target}: {'met' if met else 'NOT met'} |")
    return "\n".join(lines)


def main() -> None:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=500_000, help="people in the tenant")
    ap.add_argument("--policies", type=int, default=200, help="licensed products")
    ap.add_argument(
        "--case-share", type=float, default=0.3, help="share of memberships with a case"
    )
    ap.add_argument("--runs", type=int, default=20, help="renders per page for the median")
    ap.add_argument("--pg-url", default=None, help="an admin URL (default: a private server)")
    ap.add_argument("--keep", action="store_true", help="leave the database for --reuse")
    ap.add_argument(
        "--reuse", action="store_true", help="measure a kept database again (and keep it)"
    )
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps([list(r) for r in _child_measure(args.child, args.runs)]))
        return
    if (args.keep or args.reuse) and not args.pg_url:
        ap.error("--keep and --reuse need --pg-url (a private server goes away with the run)")
    name = database_name(args)
    with tempfile.TemporaryDirectory(prefix="bench-web-scale-") as tmp:
        admin_url, pg_dir = (args.pg_url, None) if args.pg_url else private_postgres(Path(tmp))
        try:
            url, built = prepare(admin_url, name, args)
            held = shape(url)
            results = run_child(url, args.runs)
        finally:
            if not (args.keep or args.reuse):
                with _admin(admin_url).connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if pg_dir is not None:
                subprocess.run(
                    ["bash", "scripts/pg.sh", "stop", str(pg_dir)], cwd=ROOT, check=False
                )
    if args.keep or args.reuse:
        print(f"kept database {name} on {admin_url.rsplit('/', 1)[0]}", flush=True)
    how = "reused from an earlier run" if built["reused"] else f"built in {built['build_s']} s"
    data = (
        f"{held['users']:,} users, {held['policies']} policies, {held['memberships']:,} "
        f"memberships, {held['usage_daily']:,} daily roll-ups; {held['cases']:,} cases with "
        f"{held['case_events']:,} events and {held['asks']:,} questions ({how})"
    )
    body = f"{data}; {dt.date.today()}, {os.cpu_count()} cores:\n\n{table(results, args.runs)}"
    body += f"\n\nLoad average when done: {os.getloadavg()[0]:.1f}."
    print()
    print(body)
    if args.write_readme:
        _write_readme(body, argv=" ".join(sys.argv[1:]))


def _write_readme(body: str, *, argv: str) -> None:
    # The server's address says nothing about the figures; keep the command readable.
    cmd = " ".join(
        "--pg-url …" if part.startswith("--pg-url") else part
        for part in f"python -m bench.web_scale {argv}".replace("--pg-url ", "--pg-url=").split()
    )
    write_readme_block("web-scale", "Web pages at scale", f"`{cmd}` — {body}")


if __name__ == "__main__":
    main()
