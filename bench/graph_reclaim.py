"""Benchmark: reclaiming consented seats through Graph, bulk vs the reference pack's flow.

    .venv/bin/python -m bench.graph_reclaim                  # 1,000 seats, 100-seat baseline
    .venv/bin/python -m bench.graph_reclaim --seats 300 --baseline 30 --write-readme
    .venv/bin/python -m bench.graph_reclaim --only runner --concurrency 16

Runs the Graph test server (``reclaim.testing.graph``) over HTTPS on loopback with its
documented throttling on (3,000 writes per 150 s per app + tenant, i.e. a 20/s
sustained ceiling) and 50 ms added to every response, then:

1. **bulk**: ``EntraDirectory.remove_many`` (UPNs resolved by ``$batch`` reads, then
   ``GraphClient.remove_members``: ``$batch`` DELETEs of 20, paced by the client's write
   budget). The budget starts *empty*, so the figure is the sustained rate a long run
   holds, not the burst a full bucket allows;
2. the same with every limit raised 10× (server and client): where pacing stops being
   the bottleneck and latency and concurrency take over;
3. **runner**: the same seats as cases in a SQLite store — members synced from the
   server, usage imported, one cycle planned and authorized the removals
   (``ask_permission: false``) — executed by the production worker
   (``reclaim.runner.worker.Worker``, ``--concurrency`` units at once: groups of 20
   removals, services/group_removal.py), every step recorded as in production, the
   write budget starting empty as in (1); at limits ×1 and ×10;
4. **baseline**: the reference pack's per-user flow on a sample of users, one at a time:
   ``GET /users/{upn}``, check membership, ``DELETE .../$ref``; its time is extrapolated
   to the bulk seat count.

Reported: write rate during the write phase (first to last DELETE seen by the server)
as a fraction of the ceiling (target ≥ 0.9), failures and 429s (target 0), resource
units per seat (as the server accounts them), and the speed-up over the baseline.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from reclaim.bootstrap import open_context
from reclaim.config import Settings, parse_settings
from reclaim.connectors.graph import (
    BudgetLimits,
    ClientSecret,
    GraphClient,
    GraphSettings,
    TokenBucketBudget,
    settings_from_config,
)
from reclaim.domain.policy import GroupRef, Policy, SeatCost, Workflow
from reclaim.runner import DEFAULT_CONCURRENCY
from reclaim.runner.worker import Worker
from reclaim.services.cycle import run_cycle
from reclaim.services.entra_sync import sync_policy
from reclaim.services.usage_import import import_usage_file
from reclaim.testing.graph import GraphServer, Tenant
from reclaim.workflows.directory import Directories
from reclaim.workflows.entra_id import EntraDirectory, entra_directory_factory

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
CLIENT_SECRET = "fake-bench-secret"  # obviously fake: the test server's own app
TENANT_ID = "2f3a4b5c-6d7e-4f80-9a1b-c2d3e4f5a6b7"
DOMAIN = "bench.example"
GROUP = "e3000000-0000-0000-0000-0000000000e3"
CEILING = 3000 / 150  # writes/s per app + tenant (Graph identity and access limits)
LATENCY = 0.05
SECRET_ENV = "RECLAIM_BENCH_GRAPH_SECRET"
DAY = dt.timedelta(days=1)
BEGIN, END = "<!-- graph-reclaim:begin -->", "<!-- graph-reclaim:end -->"


def build_tenant(seats: int, *, busy: int = 0) -> Tenant:
    """One license group with ``seats`` members (consented releases, all removable),
    and ``busy`` more who use the app (the runner's cycle keeps them)."""
    t = Tenant(TENANT_ID, "Bench", DOMAIN)
    t.add_client(CLIENT_ID, CLIENT_SECRET)
    t.add_sku("SPE_E3", seats + busy + 10)
    t.add_group("E3 Users", id=GROUP, assigned_licenses=["SPE_E3"])
    for n in range(seats + busy):
        user = t.add_user(f"user{n:05d}@{DOMAIN}")
        t.add_member(GROUP, user.id, journal=False)
    return t


def _client(server: GraphServer, *, scale: float) -> GraphClient:
    settings = GraphSettings(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        credential=ClientSecret(CLIENT_SECRET),
        authority_host=server.base_url,
        graph_url=server.base_url,
        ca_file=str(server.ca_file),
        tenant_size="L",
    )
    return GraphClient(
        settings, budget=TokenBucketBudget(BudgetLimits.for_tenant("L", scale=scale))
    )


def _prepare(server: GraphServer, seats: int, *, scale: float) -> None:
    server.reset(build_tenant(seats))  # also clears faults and throttling state
    server.throttle.configure(scale=scale)
    server.faults.add_latency(LATENCY)


def _units(server: GraphServer) -> int:
    return sum(r.resource_units for r in server.requests.all())


def run_bulk(server: GraphServer, seats: int, *, scale: float) -> dict[str, Any]:
    """Remove every member through EntraDirectory.remove_many from an empty budget."""
    _prepare(server, seats, scale=scale)
    users = [f"user{n:05d}@{DOMAIN}" for n in range(seats)]
    policy = _policy()
    with _client(server, scale=scale) as client:
        directory = EntraDirectory(client)
        client.auth.token()  # sign in first: not part of the reclaim
        server.requests.clear()
        started = time.perf_counter()
        directory.resolve(users)  # UPN → object id, $batch reads (a run caches these)
        resolve_s = time.perf_counter() - started
        # An empty write budget from here: the sustained rate, not the burst that a full
        # bucket (or one refilled while resolving) would allow.
        client.transport.budget = TokenBucketBudget(
            BudgetLimits.for_tenant("L", scale=scale), initial_fill=0.0
        )
        start = time.perf_counter()
        results = directory.remove_many(policy=policy, users=users)
        elapsed = time.perf_counter() - start
    deletes = sorted(r.time for r in server.requests.removals())
    # The write phase: first to last DELETE the server saw. Batches of 20 land together,
    # so the span covers all but the first batch's writes.
    span = deletes[-1] - deletes[0] if len(deletes) > 1 else float("nan")
    rate = (len(deletes) - 20) / span if span and span > 0 else float("nan")
    failures = sum(not r.succeeded for r in results.values())
    return {
        "scenario": f"bulk, limits ×{scale:g}",
        "seats": seats,
        "seconds": elapsed + resolve_s,
        "resolve_s": resolve_s,
        "writes_per_s": rate,
        "ceiling": CEILING * scale,
        "fraction": rate / (CEILING * scale),
        "failures": failures,
        "throttled": server.requests.count(status=429),
        "units_per_seat": _units(server) / seats,  # resolving and removing
        "requests": len(server.requests),
    }


def _runner_config(server: GraphServer, data_dir: Path, seats: int, *, scale: float) -> str:
    """reclaim.yaml for the runner scenario: SQLite, the server, one E3 policy removing
    without asking (as if every member had consented), capped at ``seats``."""
    return (
        f"data_dir: {data_dir}\n"
        "entra:\n"
        f"  tenant_id: {TENANT_ID}\n"
        f"  client_id: {CLIENT_ID}\n"
        f"  client_secret: env:{SECRET_ENV}\n"
        f"  authority_host: {server.base_url}\n"
        f"  graph_url: {server.base_url}\n"
        "  tenant_size: L\n"
        f"  rate_limit_scale: {scale:g}\n"
        "policies:\n"
        "  - name: E3\n"
        "    apps: [EXCEL.EXE]\n"
        f"    group: {{entra_id: {GROUP}}}\n"
        "    workflow: entra_id\n"
        '    seat_cost: {amount: "20", currency: USD}\n'
        "    unused_days: 30\n"
        "    ask_permission: false\n"
        "    require_approval: false\n"
        f"    caps: {{max_per_run: {seats}, max_percent_of_group: 100}}\n"
    )


def _runner_store(server: GraphServer, data_dir: Path, seats: int, *, scale: float) -> Settings:
    """A store as production fills it: the group synced over Graph, usage from a CSV
    (everyone in Outlook; the busy half also in Excel), then one cycle."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for user in server.tenant.users.values():  # seats granted long ago
        for state in user.license_states:
            state.last_updated = now - 300 * DAY
    for membership in server.tenant.groups[GROUP].members.values():
        membership.since = now - 300 * DAY
    text = _runner_config(server, data_dir, seats, scale=scale)
    settings = parse_settings(text, source=str(data_dir / "reclaim.yaml"))
    ctx = open_context(settings=settings, now=now)
    assert settings.entra is not None
    sync = GraphClient(settings_from_config(settings.entra, ca_file=str(server.ca_file)))
    with sync:
        sync_policy(
            ctx.engine,
            sync,
            settings.policies[0],
            configured=settings.policies,
            now=now - 300 * DAY,
        )
    usage = data_dir / "usage.csv"
    with usage.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("user", "app", "date", "seconds"))
        for n in range(2 * seats):
            for day in (now.date() - 200 * DAY, now.date() - DAY):
                w.writerow((f"user{n:05d}@{DOMAIN}", "OUTLOOK.EXE", day.isoformat(), 600))
            if n >= seats:
                w.writerow((f"user{n:05d}@{DOMAIN}", "EXCEL.EXE", now.date() - DAY, 1800))
    import_usage_file(ctx.engine, usage, now=now, source="bench", report_dir=data_dir)
    outcome = run_cycle(ctx.engine, settings=settings, policy=settings.policies[0], now=now)
    if outcome.authorized != seats:
        raise SystemExit(f"runner set-up: {outcome.authorized} removals authorized, not {seats}")
    ctx.engine.dispose()
    return settings


def run_runner(
    server: GraphServer, seats: int, *, scale: float, concurrency: int
) -> dict[str, Any]:
    """Remove ``seats`` consented members through the production worker."""
    # Twice the seats in the group: the busy half keeps the policy clear of the
    # mass-removal guard (more than half of a group at once).
    _prepare(server, 2 * seats, scale=scale)
    os.environ[SECRET_ENV] = CLIENT_SECRET
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        settings = _runner_store(server, Path(tmp), seats, scale=scale)
        ctx = open_context(settings=settings, now=dt.datetime.now(dt.UTC))
        assert settings.entra is not None
        entra = settings.entra
        # The production factory and client; only the write budget starts empty, as in
        # the bulk scenario (the sustained rate, not a full bucket's burst).
        limits = BudgetLimits.for_tenant("L", scale=scale)

        def build(d: Directories) -> Any:
            client = GraphClient(
                settings_from_config(entra, ca_file=str(server.ca_file), tenant_size="L"),
                writes_allowed=d.writes_allowed,
                budget=TokenBucketBudget(limits, initial_fill=0.0),
            )
            return entra_directory_factory(
                d.settings, writes_allowed=d.writes_allowed, on_step=d.on_step, client=client
            )

        directories = Directories(ctx.engine, settings, builders={Workflow.ENTRA_ID: build})
        worker = Worker(
            engine=ctx.engine,
            settings=settings,
            directories=directories,
            concurrency=concurrency,
        )
        server.requests.clear()
        cpu, started = time.process_time(), time.perf_counter()
        try:
            stats = worker.drain()
        finally:
            worker.close()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        ctx.engine.dispose()
    results = stats.results()
    deletes = sorted(r.time for r in server.requests.removals())
    # As in bulk: the worker sends its removals in $batch requests of up to 20, which
    # land together, so the span covers all but the first batch's writes.
    span = deletes[-1] - deletes[0] if len(deletes) > 1 else float("nan")
    rate = (len(deletes) - 20) / span if span and span > 0 else float("nan")
    return {
        "scenario": f"runner ×{concurrency} threads, limits ×{scale:g}",
        "seats": seats,
        "seconds": elapsed,
        "writes_per_s": rate,
        "ceiling": CEILING * scale,
        "fraction": rate / (CEILING * scale),
        "failures": seats - results.get("removed", 0),
        "throttled": server.requests.count(status=429),
        "units_per_seat": _units(server) / seats,
        "requests": len(server.requests),
        "cpu_s": cpu,
    }


def run_baseline(server: GraphServer, sample: int, seats: int) -> dict[str, Any]:
    """The reference pack's flow, one user at a time, extrapolated to ``seats``."""
    _prepare(server, sample, scale=1.0)
    failures = 0
    with _client(server, scale=1.0) as client:
        client.auth.token()
        server.requests.clear()
        start = time.perf_counter()
        for n in range(sample):
            try:
                uid = client.get_user(f"user{n:05d}@{DOMAIN}").id
                if client.is_member(GROUP, uid):
                    client.remove_member(GROUP, uid)
            except Exception:  # a benchmark counts failures, whatever they are
                failures += 1
        elapsed = time.perf_counter() - start
    per_seat = elapsed / sample
    return {
        "scenario": f"reference flow (sample {sample})",
        "seats": seats,
        "seconds": per_seat * seats,
        "writes_per_s": 1 / per_seat,
        "ceiling": CEILING,
        "fraction": (1 / per_seat) / CEILING,
        "failures": failures,
        "throttled": server.requests.count(status=429),
        "units_per_seat": _units(server) / sample,
        "requests": len(server.requests),
    }


def _policy() -> Policy:
    return Policy(
        name="E3",
        apps=("excel",),
        group=GroupRef(entra_id=GROUP, name="E3 Users"),
        workflow=Workflow.ENTRA_ID,
        seat_cost=SeatCost(amount=20),  # type: ignore[arg-type]
    )


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the runs, with the speed-up over the baseline (when run)."""
    base = next((r["seconds"] for r in rows if r["scenario"].startswith("reference")), None)
    lines = [
        "| scenario | seats | time (s) | writes/s | of ceiling | failures | 429s "
        "| RU/seat | CPU s | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu = f"{r['cpu_s']:.1f}" if "cpu_s" in r else "–"
        speed = f"{base / r['seconds']:.1f}×" if base else "–"
        lines.append(
            f"| {r['scenario']} | {r['seats']:,} | {r['seconds']:.1f} | "
            f"{r['writes_per_s']:.1f} | {r['fraction']:.2f} of {r['ceiling']:g}/s | "
            f"{r['failures']} | {r['throttled']} | {r['units_per_seat']:.1f} | {cpu} | {speed} |"
        )
    return "\n".join(lines)


def write_readme(text: str) -> None:
    """Replace the figures between the Graph reclaim markers of bench/README.md."""
    readme = ROOT / "bench" / "README.md"
    current = readme.read_text(encoding="utf-8")
    if BEGIN not in current:
        raise SystemExit(f"{readme}: no {BEGIN} marker; add the Graph reclaim section first")
    body = f"{BEGIN}\n{text}\n{END}"
    current = current[: current.index(BEGIN)] + body + current[current.index(END) + len(END) :]
    readme.write_text(current, encoding="utf-8")


def main() -> None:
    """Parse arguments, run the scenarios, print (and optionally record) them."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seats", type=int, default=1000, help="seats reclaimed per scenario")
    ap.add_argument("--baseline", type=int, default=100, help="users in the baseline sample")
    ap.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="cases the runner scenario's worker runs at once",
    )
    ap.add_argument(
        "--only", choices=("bulk", "runner", "baseline"), action="append", help="run only these"
    )
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    args = ap.parse_args()
    chosen = set(args.only or ("bulk", "runner", "baseline"))
    rows = []
    with GraphServer(build_tenant(1)) as server:
        for scale in (1.0, 10.0):
            if "bulk" in chosen:
                rows.append(run_bulk(server, args.seats, scale=scale))
            if "runner" in chosen:
                rows.append(
                    run_runner(server, args.seats, scale=scale, concurrency=args.concurrency)
                )
        if "baseline" in chosen:
            rows.append(run_baseline(server, args.baseline, args.seats))
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    load = os.getloadavg()[0]
    text = (
        f"`python -m bench.graph_reclaim --seats {args.seats} --baseline {args.baseline} "
        f"--concurrency {args.concurrency}` — {when}, {os.cpu_count()} cores (load "
        f"{load:.1f}), {LATENCY * 1000:.0f} ms latency per response\n\n" + table(rows)
    )
    print(text)
    if args.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
