"""``reclaim demo``: the whole Entra ID loop on a generated tenant, with no configuration.

Phases, each announced on the console:

1. generate an organization (people, six licensed products, usage with personas) and
   write it as a tenant file for the bundled Graph server and a usage CSV;
2. start the Graph server in-process on 127.0.0.1 (a free port, TLS with a throwaway
   CA), write ``reclaim.yaml`` pointing at it, with the client secret in a file;
3. on SQLite in the data directory: import the usage, sync the license groups from
   "Entra ID", then simulate the weeks (``reclaim.demo.timeline``): cycles, plans
   approved automatically, questions, answers, timeouts, removals through Graph;
4. print what was reclaimed, what it saves, and how each case ended, next to the number
   of membership DELETEs the Graph server saw. The server stops at the end;
5. with ``then`` (``reclaim demo`` on a terminal, or ``--serve``): run it before the
   server stops; the CLI serves the admin web app there (``reclaim.demo.serve``).

The process trusts the server's throwaway CA through ``SSL_CERT_FILE`` (and the
``requests``/``curl`` equivalents) while the demo runs, and ignores
``RECLAIM_DATABASE_URL`` / ``RECLAIM_DATA_DIR``: the demo only ever writes into its own
data directory.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from reclaim.bootstrap import open_context
from reclaim.config import DATA_DIR_ENV, DATABASE_URL_ENV, Settings, parse_settings
from reclaim.connectors.graph import GraphClient, settings_from_config
from reclaim.demo.config import demo_config_yaml
from reclaim.demo.people import generate_org
from reclaim.demo.report import DayPrinter
from reclaim.demo.summary import Summary, print_summary, summarize
from reclaim.demo.tenant import client_id, load_demo_tenant, tenant_id, write_tenant
from reclaim.demo.timeline import Day, DemoClock, Timeline
from reclaim.demo.usage import write_usage
from reclaim.services.usage_import import import_usage_file
from reclaim.testing.graph import CA_ENV_VARS, GraphServer, RequestLog
from reclaim.workflows.directory import default_directories

MAX_DAYS = 40  # the simulated weeks end here even if a case is still open


class DemoError(Exception):
    """The demo cannot run as asked (the message says why)."""


@dataclass
class DemoResult:
    """What a demo run produced: where its files are and what it counted."""

    data_dir: Path
    config_path: Path
    database_url: str
    summary: Summary
    requests: RequestLog  # the Graph server's request log (kept after it stopped)
    days: list[Day]
    seconds: float
    ended: dt.datetime | None = None  # the simulated clock when the weeks ended


@contextmanager
def _environment(ca_file: Path | None) -> Iterator[None]:
    """Trust the server's CA and ignore store overrides while the demo runs.

    Reclaim's INFO logs (token fetched, ...) would interleave with the demo's own
    account of each phase; they are quieted unless RECLAIM_LOG_LEVEL asks for them.
    """
    names = (*CA_ENV_VARS, DATABASE_URL_ENV, DATA_DIR_ENV)
    saved = {name: os.environ.get(name) for name in names}
    logger = logging.getLogger("reclaim")
    level = logger.level
    if not os.environ.get("RECLAIM_LOG_LEVEL"):
        logger.setLevel(max(level, logging.WARNING))
    try:
        for name in (DATABASE_URL_ENV, DATA_DIR_ENV):
            os.environ.pop(name, None)
        if ca_file is not None:
            for name in CA_ENV_VARS:
                os.environ[name] = str(ca_file)
        yield
    finally:
        logger.setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _data_dir(data_dir: Path | None) -> Path:
    directory = data_dir or Path(tempfile.mkdtemp(prefix="reclaim-demo-"))
    if (directory / "reclaim.db").exists():
        raise DemoError(
            f"{directory} already holds a demo (reclaim.db); give an empty or new --data-dir"
        )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _write_secret(directory: Path) -> tuple[Path, str]:
    secret = secrets.token_urlsafe(32)
    path = directory / "graph-client-secret"
    path.touch(mode=0o600)
    path.write_text(secret + "\n", encoding="utf-8")
    return path, secret


def _generate(
    directory: Path, *, users: int, seed: int, today: dt.date, console: Console
) -> tuple[Path, Path]:
    """Phase 1: the organization, as a tenant file and a usage file."""
    with console.status("generating the organization …"):
        org = generate_org(users=users, today=today, seed=seed)
        inputs = directory / "input"
        inputs.mkdir(exist_ok=True)
        tenant_file = inputs / "tenant.json"
        write_tenant(org, tenant_file)
        usage_file = inputs / "usage.csv"
        events = write_usage(org, usage_file)
    guests = sum(p.guest for p in org.people)
    console.print(
        f"[green]✓[/] generated {len(org.people):,} people ({guests} guests) holding "
        f"{sum(len(h) for h in org.holdings.values()):,} licenses of {len(org.holdings)} "
        f"products (seed {seed}): {tenant_file.name} for the Graph server, "
        f"{events:,} usage events in {usage_file.name}",
        highlight=False,
    )
    return tenant_file, usage_file


def _configure(
    directory: Path, server: GraphServer, *, seed: int, secret_file: Path, console: Console
) -> tuple[Path, Settings]:
    """Phase 2: ``reclaim.yaml`` pointing at the running server."""
    config_path = directory / "reclaim.yaml"
    text = demo_config_yaml(
        data_dir=directory,
        seed=seed,
        tenant=tenant_id(seed),
        client=client_id(seed),
        secret_file=secret_file,
        server_url=server.base_url,
    )
    config_path.write_text(text, encoding="utf-8")
    settings = parse_settings(text, source=str(config_path))
    console.print(
        f"[green]✓[/] wrote {config_path.name}: {len(settings.policies)} entra_id policies, "
        f"entra: → the local server, client secret as file:{secret_file.name}",
        highlight=False,
    )
    return config_path, settings


def _simulate(
    engine: Engine,
    settings: Settings,
    *,
    now: dt.datetime,
    seed: int,
    max_days: int,
    console: Console,
) -> Timeline:
    """Phase 3: the weeks, day by day (``reclaim.demo.timeline``)."""
    assert settings.entra is not None  # the demo's config always has it
    sync_client = GraphClient(settings_from_config(settings.entra), dry_run=True)
    directories = default_directories(engine, settings)
    timeline = Timeline(engine, settings, sync_client, directories, DemoClock(now), seed)
    try:
        with console.status("simulating the weeks …") as status:
            timeline.progress = status.update
            timeline.run(max_days=max_days, on_day=DayPrinter(console, timeline))
    finally:
        sync_client.close()
        directories.close()
    return timeline


def run_demo(
    *,
    data_dir: Path | None,
    users: int,
    seed: int,
    console: Console,
    now: dt.datetime,
    max_days: int = MAX_DAYS,
    then: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Run the whole demo (see the module docstring); ``now`` is day 0.

    ``then`` runs after the summary, while the Graph server still runs and its CA is
    still trusted (the serve mode: the web app's restores reach the same server).
    """
    started = time.perf_counter()
    directory = _data_dir(data_dir)
    now = now.replace(microsecond=0)
    console.print(f"[bold]Reclaim demo[/] — data directory {directory}", highlight=False)
    tenant_file, usage_file = _generate(
        directory, users=users, seed=seed, today=now.date(), console=console
    )
    secret_file, secret = _write_secret(directory)
    tenant = load_demo_tenant(tenant_file, client=client_id(seed), secret=secret)
    with GraphServer(tenant) as server, _environment(server.ca_file):
        console.print(
            f"[green]✓[/] Graph server (bundled, in-process) on {server.base_url} for tenant "
            f"{server.tenant.tenant_id}; it stops when the demo ends",
            highlight=False,
        )
        config_path, settings = _configure(
            directory, server, seed=seed, secret_file=secret_file, console=console
        )
        database_url = settings.database_url()
        ctx = open_context(settings=settings, now=now)
        try:
            with console.status("importing usage …"):
                report = import_usage_file(
                    ctx.engine,
                    usage_file,
                    now=now,
                    source="demo-telemetry",
                    report_dir=ctx.imports_dir(),
                )
            console.print(
                f"[green]✓[/] imported {report.rows_accepted:,} usage events into "
                f"{database_url} ({report.seconds:.1f} s)",
                highlight=False,
            )
            timeline = _simulate(
                ctx.engine, settings, now=now, seed=seed, max_days=max_days, console=console
            )
            members = {r.policy: r.members for r in timeline.syncs}
            summary = summarize(ctx.engine, settings, members=members, requests=server.requests)
        finally:
            ctx.engine.dispose()
        console.print()
        print_summary(console, summary)
        seconds = time.perf_counter() - started
        result = DemoResult(
            directory,
            config_path,
            database_url,
            summary,
            server.requests,
            timeline.days,
            seconds,
            ended=timeline.clock.now,
        )
        if then is None:
            console.print(
                f"Done in {seconds:.0f} s. Look around (the Graph server is gone, the store "
                f"stays): reclaim cases --config {config_path} (then cases show ID for a "
                f"case's Graph steps); reclaim report --config {config_path}",
                highlight=False,
            )
        else:
            console.print(f"Done in {seconds:.0f} s.", highlight=False)
            then(result)
    return result
