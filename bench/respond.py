"""Benchmark: employees answering through the response page, over HTTP, on SQLite.

``python -m bench.respond [--cases N] [--clients N] [--workers N] [--rate R] [--write-readme]``

N open cases (asked, one person each) in a fresh SQLite store; the app served by
uvicorn in a child process on a loopback port; ``--clients`` concurrent clients each
take the next link, GET the page (as a person opening the mail's link does), then POST
the answer from its form (keep or release, alternately). One *response* is that
GET + POST pair. First a closed loop (each client takes the next link as soon as it
is done: the capacity); with ``--rate R`` then an open loop on a fresh store (response
n is due at n / R seconds: the latency people see when they arrive at that rate).
Reported per run: responses/s, p50 / p99 latency of the pair and of each request, and
the server's CPU per response. Afterwards every case is checked to hold exactly one
answer event, the one its client sent.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import multiprocessing
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.measure import stamp, write_readme_block
from bench.respond_clients import pct, run_clients
from reclaim.bootstrap import Context
from reclaim.campaigns.tokens import TokenKeys, sign
from reclaim.config import Settings, parse_settings
from reclaim.domain import case as dc
from reclaim.store import cases as store
from reclaim.store.engine import make_engine
from reclaim.store.keys import resolve_keys
from reclaim.store.migrate import upgrade
from reclaim.store.policies import sync_policies
from reclaim.store.tables import case_events

KEY_ENV = "RECLAIM_BENCH_LINK_KEY"
KEY = "b" * 48  # a throwaway key for a throwaway store
ASKED_AT = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
TARGET_RATE, TARGET_P99_MS = 300.0, 150.0


def _settings(tmp: Path, url: str, port: int) -> Settings:
    text = f"""
data_dir: {tmp}
database: {{url: '{url}'}}
campaigns:
  base_url: http://127.0.0.1:{port}
  token_keys: [env:{KEY_ENV}]
policies:
  - name: Visio
    apps: [VISIO.EXE]
    group: {{name: Visio users}}
    workflow: manual
    seat_cost: {{amount: "15"}}
"""
    return parse_settings(text, source="bench.yaml")


def _seed(settings: Settings, n: int) -> list[tuple[int, str]]:
    """``n`` asked cases, one person each: (case id, UPN)."""
    engine = make_engine(settings.database_url())
    upgrade(engine)
    now = int(ASKED_AT.timestamp())
    users = [f"user{i:06d}@bench.example" for i in range(n)]
    out: list[tuple[int, str]] = []
    with engine.begin() as conn:
        pid = sync_policies(conn, settings.policies, now=now)["Visio"]
        ids = dict(resolve_keys(conn, users=users, apps={}, now=now)[0])
        for user in users:
            case = dc.mark_asked(
                dc.open_case(policy="Visio", user=user, cycle=1, at=ASKED_AT), at=ASKED_AT
            )
            saved = store.insert_case(
                conn,
                case,
                policy_id=pid,
                user_id=ids[user],
                verdict="unused",
                reason="no use of Visio for 91 days",
                last_used=None,
                next_due_at=now + 10 * 86400,
            )
            out.append((saved.id, user))
    engine.dispose()
    return out


def _serve(sock: socket.socket, settings: Settings) -> None:
    """The child process: the app on ``sock`` until terminated."""
    import uvicorn

    from reclaim.web.app import create_app
    from reclaim.web.server import freeze_startup_heap
    from reclaim.web.settings import WebSettings

    engine = make_engine(settings.database_url())
    app = create_app(Context(settings, engine), web_settings=WebSettings(secret="w" * 48))
    # Clients keep their connections for the whole run: a short keep-alive would close
    # one just as a client reuses it.
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=120
        )
    )
    freeze_startup_heap()  # as reclaim serve does
    asyncio.run(server.serve(sockets=[sock]))


def _check(settings: Settings, expected: dict[int, str]) -> int:
    """Cases whose history does not hold exactly the one answer sent (0 is right)."""
    engine = make_engine(settings.database_url())
    with engine.connect() as conn:
        rows = conn.execute(
            select(case_events.c.case_id, func.count(), func.max(case_events.c.to_state))
            .where(case_events.c.cause == "answered")
            .group_by(case_events.c.case_id)
        ).all()
    engine.dispose()
    got = {int(c): (int(n), str(s)) for c, n, s in rows}
    wrong = 0
    for case_id, choice in expected.items():
        if got.get(case_id) != (1, f"answered_{choice}"):
            wrong += 1
    return wrong + len(set(got) - set(expected))


def main() -> None:
    """Run the benchmark and print (or write) its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn processes sharing the socket"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="also an open loop offering R responses/s, after the closed loop",
    )
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    os.environ[KEY_ENV] = KEY
    runs = [(rate, *_run(args, rate)) for rate in [None] + ([args.rate] if args.rate else [])]
    _report(args, runs)


def _run(args: argparse.Namespace, rate: float | None) -> tuple[dict[str, Any], int]:
    """One run on a fresh store: the clients' figures, and how many cases do not hold
    exactly the answer sent."""
    tmp = Path(tempfile.mkdtemp(prefix="reclaim-bench-respond-"))
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
    # they are TCP; without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = _settings(tmp, f"sqlite:///{tmp / 'reclaim.db'}", port)
    t0 = time.perf_counter()
    cases = _seed(settings, args.cases)
    print(f"seeded {len(cases):,} asked cases in {time.perf_counter() - t0:.1f} s")
    keys = TokenKeys.of(KEY)
    expires = ASKED_AT + dt.timedelta(days=10)
    links = [
        (
            cid,
            "/respond/"
            + sign(
                keys=keys,
                case_id=str(cid),
                upn=user,
                purpose="answer",
                expires_at=expires,
                now=ASKED_AT,
            ),
        )
        for cid, user in cases
    ]
    expected = {cid: ("keep" if n % 2 else "release") for n, (cid, _) in enumerate(cases)}
    sock.listen(1024)
    fork = multiprocessing.get_context("fork")
    children = [
        fork.Process(target=_serve, args=(sock, settings), daemon=True) for _ in range(args.workers)
    ]
    for child in children:
        child.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base)
        server_cpu0 = sum(_cpu_seconds(c.pid) for c in children)
        client_cpu0 = time.process_time()
        result = asyncio.run(run_clients(base, links, args.clients, rate))
        result["server_cpu"] = sum(_cpu_seconds(c.pid) for c in children) - server_cpu0
        result["client_cpu"] = time.process_time() - client_cpu0
    finally:
        for child in children:
            child.terminate()  # our own children, by their handles
            child.join(timeout=10)
        sock.close()
    return result, _check(settings, expected)


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/respond/static/respond.css", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.1)


def _report(args: argparse.Namespace, runs: list[tuple[float | None, dict[str, Any], int]]) -> None:
    lines = [
        "| run | responses | clients | server processes | seconds | responses/s "
        "| p50 ms | p99 ms "
        "| GET p50/p99 ms | POST p50/p99 ms | errors | answers wrong "
        "| server CPU per response | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    failed = 0
    for rate, result, wrong in runs:
        pairs, gets, posts = result["pairs"], result["gets"], result["posts"]
        done = len(pairs) / result["seconds"]
        p99 = pct(pairs, 0.99)
        failed += wrong + len(result["errors"])
        if rate is None:  # capacity: 100 answering at once, latency is 100 / throughput
            verdict = (
                f"capacity ≥ {TARGET_RATE:.0f}/s: {'met' if done >= TARGET_RATE else 'NOT met'}"
            )
        else:
            met = done >= TARGET_RATE and p99 <= TARGET_P99_MS and not wrong
            verdict = (
                f"≥ {TARGET_RATE:.0f}/s, p99 ≤ {TARGET_P99_MS:.0f} ms, all recorded once: "
                f"{'met' if met and not result['errors'] else 'NOT met'}"
            )
        lines.append(
            f"| {'closed loop' if rate is None else f'open loop, {rate:,.0f}/s offered'} "
            f"| {len(pairs):,} | {args.clients} | {args.workers} | {result['seconds']:.1f} "
            f"| {done:,.0f} | {pct(pairs, 0.5):.0f} | {p99:.0f} "
            f"| {pct(gets, 0.5):.0f} / {pct(gets, 0.99):.0f} "
            f"| {pct(posts, 0.5):.0f} / {pct(posts, 0.99):.0f} | {len(result['errors'])} "
            f"| {wrong} | {result['server_cpu'] / max(1, len(pairs)) * 1000:.1f} ms | {verdict} |"
        )
        for e in result["errors"][:5]:
            print("  error:", e)
    table = "\n".join(lines) + (
        f"\n\nServer: uvicorn with {_stack()}; client CPU per response "
        f"{runs[-1][1]['client_cpu'] / max(1, len(runs[-1][1]['pairs'])) * 1000:.1f} ms. "
        f"Load average when done: {os.getloadavg()[0]:.1f}."
    )
    print()
    print(table)
    if args.write_readme:
        _write_readme(table, args=args)
    if failed:
        raise SystemExit(f"{failed} case(s) not recorded exactly once, or errors")


def _options(args: argparse.Namespace) -> str:
    """The command-line options that differ from the defaults, as typed."""
    out = f" --workers {args.workers}" if args.workers != 1 else ""
    out += f" --rate {args.rate:g}" if args.rate else ""
    return out + (f" --clients {args.clients}" if args.clients != 100 else "")


def _stack() -> str:
    """uvicorn's event loop and HTTP parser as it picks them ("auto": the fast ones when
    installed)."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} + {http}"


def _write_readme(table: str, *, args: argparse.Namespace) -> None:
    block = (
        f"`python -m bench.respond{_options(args)}` — {args.cases:,} open cases, SQLite; "
        f"{stamp()}:\n\n{table}"
    )
    write_readme_block("respond", "Response page", block)


if __name__ == "__main__":
    main()
