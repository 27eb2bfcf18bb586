"""Web pages with 100,000 cases: the cases list, a case page and the dashboard.

`python -m bench.web [--cases N] [--runs N] [--db sqlite|postgresql|both] [--write-readme]`

Generates a store directly (seeded): policies, people, memberships, cases in every
state with a history a real run could leave (built with the domain's transitions),
questions in the outbox, plans. Then serves the real app in process (httpx over
ASGI, a signed-in admin session, the full middleware stack) and times each page
``--runs`` times after one warm-up, reporting the median. Target: ≤ 300 ms each.

The app runs as ``reclaim serve`` runs it: pages wait at most 100 ms
(``RECLAIM_WEB_RENDER_WAIT_MS``) for slow figures being recomputed. So the first
dashboard (and policies page) answers with a "recomputing…" state; the bench then
reloads it until the figures are there and reports that time too ("figures ready").

PostgreSQL: a fresh database on ``--pg-url`` (default ``$RECLAIM_TEST_PG_URL``), or a
private server started with ``scripts/pg.sh`` when neither is given.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote_plus, urlencode

from sqlalchemy import Engine, insert

from bench.measure import (
    fresh_pg_database,
    peak_rss_mb,
    private_postgres,
    reset_peak_rss,
    stamp,
    write_readme_block,
)
from reclaim.domain import case as dc
from reclaim.domain.case import OPEN, Action, Case
from reclaim.domain.policy import Campaign, GroupRef, NoResponse, Policy, SeatCost, Workflow

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
TARGET_MS = 300
EMAIL, PASSWORD = "bench@corp.example", "bench password 1234"
H = dt.timedelta(hours=1)
STATES = {  # share of cases ending in each state
    "removed": 0.33,
    "answered_keep": 0.14,
    "no_response": 0.10,
    "cancelled": 0.08,
    "asked": 0.08,
    "reminded": 0.05,
    "removal_pending": 0.05,
    "candidate": 0.05,
    "could_not_ask": 0.04,
    "failed": 0.03,
    "restored": 0.03,
    "answered_release": 0.02,
}
KEEP = Policy.model_construct(campaign=Campaign(on_no_response=NoResponse.KEEP))


def policies() -> tuple[Policy, ...]:
    names = ("Visio", "Project", "Acrobat Pro", "Miro", "Tableau")
    return tuple(
        Policy(
            name=n,
            apps=(n,),
            group=GroupRef(name=f"{n} users"),
            workflow=Workflow.MANUAL,
            seat_cost=SeatCost(amount=Decimal(10 + 5 * i), currency="USD" if i % 2 else "EUR"),
        )
        for i, n in enumerate(names)
    )


def walk(case: Case, to: str, at: dt.datetime) -> Case:
    """The legal moves from ``candidate`` to ``to``."""
    if to in ("candidate",):
        return case
    if to == "could_not_ask":
        return dc.mark_could_not_ask(case, at=at + H, detail="mailbox unknown")
    if to == "cancelled":
        return dc.cancel(case, at=at + H, cause=dc.CancelCause.USAGE_RESUMED)
    case = dc.mark_asked(case, at=at + H)
    if to == "asked":
        return case
    if to == "reminded":
        return dc.mark_reminded(case, at=at + 72 * H, reminder=1)
    if to == "no_response":
        return dc.apply_timeout(
            dc.mark_reminded(case, at=at + 72 * H, reminder=1), policy=KEEP, at=at + 240 * H
        )
    if to == "answered_keep":
        return dc.record_answer(case, at=at + 20 * H, keep=True, reason="I use it monthly")
    case = dc.record_answer(case, at=at + 20 * H, keep=False, reason="not needed")
    if to == "answered_release":
        return case
    case = dc.begin_removal(case, at=at + 24 * H)
    if to == "removal_pending":
        return case
    case = dc.removal_sent(case, at=at + 24 * H)
    if to == "failed":
        return dc.mark_failed(case, at=at + 25 * H, detail="Rejected: 400 Request_BadRequest")
    case = dc.mark_removed(case, at=at + 25 * H)
    if to == "removed":
        return case
    return dc.restore(case, at=at + 96 * H, by="helpdesk")


def ts(at: dt.datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def generate(engine: Engine, n_cases: int, *, seed: int = 7) -> dict[str, Any]:
    """Fill the store; returns a few ids to look at."""
    from reclaim.store.policies import sync_policies
    from reclaim.store.tables import case_events, cases, memberships, notifications, sources, users

    rng = random.Random(seed)
    pols = policies()
    n_users = max(1000, int(n_cases * 0.6))
    with engine.begin() as conn:
        ids = sync_policies(conn, pols, now=ts(NOW) or 0)
        conn.execute(
            insert(users),
            [{"upn": f"user{u:06d}@corp.example", "first_seen": 0} for u in range(n_users)],
        )
        conn.execute(
            insert(sources).values(
                name="laptops", kind="file", last_received=ts(NOW), rows_accepted=0, rows_rejected=0
            )
        )
        pairs = rng.sample(range(len(pols) * n_users), n_cases)
        # Every case's person is a member of its group (the savings report evaluates them).
        conn.execute(
            insert(memberships),
            [
                {
                    "policy_id": ids[pols[p % len(pols)].name],
                    "user_id": p // len(pols) + 1,
                    "granted_at": 0,
                    "granted_source": "file",
                    "first_seen": 0,
                    "last_seen": ts(NOW),
                    "active": True,
                    "left_at": None,
                }
                for p in pairs
            ],
        )
    names, weights = list(STATES), list(STATES.values())
    span = 540 * 86400
    picked: dict[str, int] = {}
    rows, events, asks = [], [], []
    for n, p in enumerate(sorted(pairs, key=lambda _: rng.random()), start=1):
        pol, uid = pols[p % len(pols)], p // len(pols) + 1
        to = rng.choices(names, weights)[0]
        at = NOW - dt.timedelta(seconds=rng.randrange(span)) - 300 * H
        case = walk(
            dc.open_case(
                policy=pol.name,
                user=f"user{uid - 1:06d}@corp.example",
                cycle=1,
                at=at,
                data={"verdict": "unused"},
            ),
            to,
            at,
        )
        picked.setdefault(to, n)
        rows.append(
            {
                "id": n,
                "policy_id": ids[pol.name],
                "user_id": uid,
                "cycle": 1,
                "state": case.state.value,
                "status": case.status.value,
                "outcome": case.outcome.value if case.outcome else None,
                "is_open": case.state in OPEN,
                "verdict": "unused",
                "reason": "no use in 45 days",
                "last_used": None,
                "asked_at": ts(case.asked_at),
                "answered_at": ts(case.answered_at),
                "reminders_sent": case.reminders_sent,
                "attempts": case.attempts,
                "retry_at": None,
                "failures": 0,
                "last_error": None,
                "remove_key": case.key(Action.REMOVE),
                "authorized_key": None,
                "plan_id": None,
                "next_due_at": ts(at + 300 * H) if case.state in OPEN else None,
                "lease_owner": None,
                "lease_until": None,
                "version": len(case.history),
                "opened_at": ts(case.opened_at),
                "updated_at": ts(case.updated_at),
                "closed_at": None if case.state in OPEN else ts(case.updated_at),
            }
        )
        events += [
            {
                "case_id": n,
                "seq": s,
                "at": ts(e.at),
                "from_state": e.from_state.value if e.from_state else None,
                "to_state": e.to_state.value,
                "cause": e.cause,
                "data": "{}",
            }
            for s, e in enumerate(case.history)
        ]
        if case.asked_at is not None:
            asks.append(
                {
                    "idempotency_key": case.key(Action.ASK),
                    "case_id": n,
                    "kind": "ask",
                    "reminder": 0,
                    "created_at": ts(case.asked_at),
                    "status": "sent",
                    "channel": "email",
                }
            )
        if len(rows) >= 10_000:
            _flush(engine, rows, events, asks, cases, case_events, notifications)
    _flush(engine, rows, events, asks, cases, case_events, notifications)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))")
            conn.exec_driver_sql("ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    picked["_count"] = n_cases
    return picked


def _flush(engine: Engine, rows: list, events: list, asks: list, *tables: Any) -> None:
    cases, case_events, notifications = tables
    with engine.begin() as conn:
        for table, data in ((cases, rows), (case_events, events), (notifications, asks)):
            if data:
                conn.execute(insert(table), data)
    for data in (rows, events, asks):
        data.clear()


RECOMPUTING = 'data-testid="recomputing"'


class PageTiming(NamedTuple):
    """One page's figures: first render, figures ready (None: no recomputation shown),
    median of the runs (ms), and the process's peak RSS from the first request until
    the figures were ready (MB)."""

    page: str
    first_ms: float
    ready_ms: float | None
    median_ms: float
    peak_rss_mb: float


async def measure(
    engine: Engine,
    data_dir: Path,
    picked: dict[str, int],
    runs: int,
    *,
    configured: Sequence[Policy] | None = None,
    now: dt.datetime = NOW,
    filtered: str = "Miro",
) -> list[PageTiming]:
    """Time each page: once cold, reloading until its figures are ready, then ``runs``
    times. ``picked``: a ``restored`` case id and ``_count`` (case ids run 1..count);
    ``configured``: the policies of the configuration (default: this bench's);
    ``filtered``: the policy of the filtered list. The admin account is made unless
    it exists (a store kept from an earlier run)."""
    import httpx

    from reclaim.bootstrap import Context
    from reclaim.config import Settings
    from reclaim.web.app import create_app
    from reclaim.web.audit import Actor
    from reclaim.web.auth.accounts import AccountError, create_account
    from reclaim.web.auth.roles import Role
    from reclaim.web.settings import WebSettings

    try:
        with engine.begin() as conn:
            create_account(
                conn,
                email=EMAIL,
                role=Role.ADMIN,
                password=PASSWORD,
                actor=Actor("bench", "system"),
                now=ts(now) or 0,
            )
    except AccountError:  # made by an earlier run on this store
        pass
    pols = policies() if configured is None else tuple(configured)
    ctx = Context(settings=Settings(data_dir=str(data_dir), policies=pols), engine=engine)
    settings = WebSettings(secret="b" * 40, render_wait_ms=100)  # as `reclaim serve` runs
    app = create_app(ctx, now=lambda: now, web_settings=settings)
    transport = httpx.ASGITransport(app=app)
    query = urlencode({"state": "failed", "policy": filtered})
    pages = {
        "dashboard (/)": "/",
        "policies (/policies)": "/policies",
        "cases list (/cases)": "/cases",
        f"cases list, filtered (/cases?{unquote_plus(query)})": f"/cases?{query}",
        "cases list, half-way down (keyset cursor)": "",
        "a case page (/cases/{id})": f"/cases/{picked['restored']}",
    }
    out = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
        form = await c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        r = await c.post(
            "/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1)}
        )
        assert r.status_code == 303, r.text
        from reclaim.web.paging import encode_cursor

        # Ids run 1..N: a cursor before N/2 is page N/100 of 50 rows, by keyset.
        pages["cases list, half-way down (keyset cursor)"] = (
            f"/cases?cursor={encode_cursor({'before': picked['_count'] // 2})}"
        )
        for label, path in pages.items():
            reset_peak_rss()  # the peak of this page's own work, its figures included
            t0 = time.perf_counter()
            r = await c.get(path)
            first = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            ready = None
            if RECOMPUTING in r.text:  # what a browser does: reload until the figures are in
                while RECOMPUTING in r.text:
                    await asyncio.sleep(0.1)
                    r = await c.get(path)
                ready = (time.perf_counter() - t0) * 1000
            rss = peak_rss_mb()
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                r = await c.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
                assert RECOMPUTING not in r.text, path
            out.append(PageTiming(label, first, ready, statistics.median(times), rss))
    return out


def run_one(url: str, work: Path, n_cases: int, runs: int) -> tuple[float, list[PageTiming]]:
    from reclaim.store.engine import make_engine
    from reclaim.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    picked = generate(engine, n_cases)
    gen = time.perf_counter() - t0
    try:
        return gen, asyncio.run(measure(engine, work / "data", picked, runs))
    finally:
        engine.dispose()


def main() -> None:
    """Run the benchmark and print (optionally write) its table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg-url", default=os.environ.get("RECLAIM_TEST_PG_URL"))
    ap.add_argument("--write-readme", action="store_true")
    args = ap.parse_args()
    lines = [
        f"| database | page | first render ms | figures ready ms | median of {args.runs} ms "
        "| target |",
        "|---|---|---:|---:|---:|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        work = Path(tmp)
        targets: list[tuple[str, str]] = []
        if args.db in ("sqlite", "both"):
            targets.append(("SQLite", f"sqlite:///{work / 'web.db'}"))
        pg_folder = None
        if args.db in ("postgresql", "both"):
            admin = args.pg_url
            if not admin:
                admin, pg_folder = private_postgres(work)
            targets.append(("PostgreSQL", fresh_pg_database(admin, "bench_web")))
        try:
            for label, url in targets:
                gen, results = run_one(url, work, args.cases, args.runs)
                print(f"{label}: generated {args.cases:,} cases in {gen:.1f} s", flush=True)
                for page, first, ready, median, _ in results:
                    verdict = "met" if median <= TARGET_MS else "NOT met"
                    shown = "–" if ready is None else f"{ready:,.0f}"
                    cells = (label, page, f"{first:,.0f}", shown, f"{median:,.0f}")
                    lines.append(f"| {' | '.join(cells)} | ≤ {TARGET_MS} ms: {verdict} |")
        finally:
            if pg_folder is not None:
                subprocess.run(
                    ["bash", "scripts/pg.sh", "stop", str(pg_folder)], cwd=ROOT, check=False
                )
    table = "\n".join(lines)
    print(table)
    if args.write_readme:
        _write_readme(table, cases=args.cases, runs=args.runs)


def _write_readme(table: str, *, cases: int, runs: int) -> None:
    block = (
        f"`python -m bench.web` — {cases:,} cases; median of {runs} renders; {stamp()}:\n\n{table}"
    )
    write_readme_block("web", "Web pages", block)


if __name__ == "__main__":
    main()
