"""Part c of ``bench/scale.py``: one whole cycle on the demo tenant, bound by Graph?

The demo organization (``reclaim.demo``) scaled to ``--e2e-users`` people is served by
the Graph test server with its documented throttling (3,000 writes per 150 s per app
and tenant: a full bucket, then 20 per second). The demo's policies are changed to
remove without asking or approval, with caps out of the way, so one cycle removes every
unused seat at once. Timed from the start of the directory sync (in this process,
through the same shared budget the workers use) until ``--e2e-workers`` ``reclaim
worker`` processes on PostgreSQL have run each policy's cycle and carried out every
removal (no case left to do).

The time Graph's write ceiling alone imposes on R successful removals is ``R / 20``
seconds at the sustained rate (the bucket empty, as after an earlier run) and
``max(0, R - 3,000) / 20`` when the bucket starts full; the target is a wall time
within 1.15× of the sustained figure (the full-bucket one is shown too: below 3,000
removals it is 0, and the run cannot be bound by Graph at all).
Removals from the demo's on-premises-synced and dynamic groups are refused before
anything is sent (``failed``): they cost no write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

WRITE_BURST, WRITE_RATE = 3000, 20.0  # Graph: 3,000 writes per 150 s per app + tenant
TARGET = 1.15
ONCE_A_YEAR = "0 0 1 1 *"


def _config(text: str, url: str) -> str:
    """The demo's config, on PostgreSQL, removing at once (see the module docstring)."""
    text = text.replace(
        "    require_approval: true", "    require_approval: false\n    ask_permission: false"
    )
    text = re.sub(
        r"caps: \{max_per_run: \d+, max_percent_of_group: \d+\}",
        "caps: {max_per_run: 1000000, max_percent_of_group: 100}",
        text,
    )
    text = text.replace(
        "    workflow: entra_id", f'    workflow: entra_id\n    schedule: "{ONCE_A_YEAR}"'
    )
    text = text.replace("  graph_url:", "  tenant_size: L\n  graph_url:", 1)
    return text.replace("entra:", f"database: {{url: '{url}'}}\nentra:", 1)


def bench_e2e(admin_url: str, args: argparse.Namespace, tmp: Path) -> str:
    """Run part c; returns its README section."""
    from sqlalchemy import func, select

    from reclaim.bootstrap import open_context
    from reclaim.config import parse_settings
    from reclaim.connectors.graph import GraphClient, settings_from_config
    from reclaim.demo.config import demo_config_yaml
    from reclaim.demo.people import generate_org
    from reclaim.demo.tenant import client_id, load_demo_tenant, tenant_id, write_tenant
    from reclaim.demo.usage import write_usage
    from reclaim.services.entra_sync import sync_policy
    from reclaim.services.usage_import import import_usage_file
    from reclaim.store.tables import cases, leases
    from reclaim.testing.graph import CA_ENV_VARS, GraphServer
    from reclaim.workflows.directory import graph_budget

    seed, now = 42, dt.datetime.now(dt.UTC).replace(microsecond=0)
    org = generate_org(users=args.e2e_users, today=now.date(), seed=seed)
    folder = tmp / "e2e"
    folder.mkdir()
    write_tenant(org, folder / "tenant.json")
    events = write_usage(org, folder / "usage.csv")
    secret = secrets.token_urlsafe(24)
    (folder / "secret").write_text(secret)
    tenant = load_demo_tenant(folder / "tenant.json", client=client_id(seed), secret=secret)
    from bench.scale import fresh_database

    url = fresh_database(admin_url)
    with GraphServer(tenant) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")}
        env |= {name: str(server.ca_file) for name in CA_ENV_VARS}
        os.environ.update({name: str(server.ca_file) for name in CA_ENV_VARS})
        text = _config(
            demo_config_yaml(
                data_dir=folder,
                seed=seed,
                tenant=tenant_id(seed),
                client=client_id(seed),
                secret_file=folder / "secret",
                server_url=server.base_url,
            ),
            url,
        )
        config = folder / "reclaim.yaml"
        config.write_text(text)
        settings = parse_settings(text, source=str(config))
        assert settings.entra is not None
        subprocess.run(
            [sys.executable, "-m", "reclaim", "db", "upgrade", "-c", str(config)],
            env=env,
            check=True,
            capture_output=True,
        )
        ctx = open_context(settings=settings, now=now)
        import_usage_file(
            ctx.engine, folder / "usage.csv", now=now, source="demo-telemetry", report_dir=folder
        )
        print(f"e2e: {len(org.people):,} people, {events:,} usage events imported", flush=True)
        server.requests.clear()
        started = time.perf_counter()
        client = GraphClient(
            settings_from_config(settings.entra, tenant_size="L"),
            budget=graph_budget(ctx.engine, settings),
        )
        try:
            for pol in settings.policies:
                sync_policy(ctx.engine, client, pol, configured=settings.policies, now=now)
        finally:
            client.close()
        synced = time.perf_counter() - started
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "reclaim", "worker", "--poll", "0.5", "-c", str(config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for log in [(folder / f"worker{i}.log").open("wb") for i in range(args.e2e_workers)]
        ]
        todo = cases.c.state.in_(["candidate", "answered_release", "removal_pending"])
        try:
            while True:
                with ctx.engine.connect() as conn:
                    ticks = conn.execute(
                        select(func.count()).where(leases.c.tick_done >= 0)
                    ).scalar_one()
                    left = conn.execute(
                        select(func.count()).select_from(cases).where(todo)
                    ).scalar_one()
                if ticks == len(settings.policies) and left == 0:
                    break
                if all(p.poll() is not None for p in procs):
                    tail = (folder / "worker0.log").read_text(errors="replace")[-2000:]
                    raise SystemExit(f"every worker exited:\n{tail}")
                time.sleep(0.5)
            wall = time.perf_counter() - started
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(60)
        with ctx.engine.connect() as conn:
            states: dict[str, int] = dict(
                conn.execute(select(cases.c.state, func.count()).group_by(cases.c.state)).all()
            )
        ctx.engine.dispose()
        deletes = server.requests.removals(ok=True)
        throttled = server.requests.count(status=429)
    removed = len(deletes)
    sustained = removed / WRITE_RATE
    burst = max(0.0, removed - WRITE_BURST) / WRITE_RATE
    phase = deletes[-1].time - deletes[0].time if removed > 1 else 0.0
    rate = removed / phase if phase else 0.0
    met = "met" if wall <= TARGET * sustained else "NOT met"
    ratio = f"{wall / sustained:.2f}× ({met})" if sustained else "n/a (nothing removed)"
    row = (
        f"| {len(org.people):,} | {args.e2e_workers} | {synced:.1f} s | {removed:,} | "
        f"{states.get('failed', 0):,} | {throttled} | {wall:.1f} s | {sustained:.1f} s "
        f"({burst:.1f} s) | {rate:.1f}/s | {ratio} |"
    )
    print(row, flush=True)
    return (
        "End-to-end cycle on the demo tenant (removal without asking, documented Graph "
        "limits, PostgreSQL, shared budget), from sync to the last removal:\n\n"
        "| people | workers | sync | removals | refused (synced/dynamic groups) | 429s "
        "| wall time | write ceiling alone: sustained (full bucket) "
        "| write rate (first to last DELETE) "
        f"| wall ÷ ceiling (target ≤ {TARGET}×) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n" + row
    )
