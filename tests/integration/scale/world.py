"""A tenant on the Graph test server and a PostgreSQL store, run by real OS processes.

The scale tests start ``reclaim worker`` and ``reclaim serve --no-worker`` as separate
processes (as on separate machines) against one store and the Graph server on loopback.
Everything here uses the real clock: the processes read it, so the server must too.

The organization: each policy has its own license group; its *candidates* (seen in
Outlook for two months, never in Excel) are its own, and one pool of *busy* people
(Excel two days ago) is in every group, one more than the largest candidate count, so
that no cycle trips the mass-removal guard (more than half a group).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import ColumnElement, Engine, func, select

from reclaim.bootstrap import Context
from reclaim.config import parse_settings
from reclaim.connectors.graph import ClientSecret, GraphClient, GraphSettings, Unlimited
from reclaim.services.entra_sync import sync_policy
from reclaim.store.tables import cases, leases
from reclaim.testing.graph import CA_ENV_VARS, GraphServer, Tenant

from ..decisions.conftest import import_usage, open_store

CLIENT_ID = "5ca1e000-0000-4000-8000-00000000c11e"
CLIENT_SECRET = "fake-scale-test-secret"  # obviously fake fixture value
SECRET_ENV = "RECLAIM_TEST_SCALE_SECRET"
TENANT_ID = "5ca1e000-0000-4000-8000-0000000000aa"
DOMAIN = "scale.example"
DAY = dt.timedelta(days=1)
ONCE_A_YEAR = "0 0 1 1 *"  # one tick for the whole test, whenever it runs

POLICY = """
  - name: {name}
    apps: [EXCEL.EXE]
    group: {{entra_id: {group}}}
    workflow: entra_id
    seat_cost: {{amount: "20", currency: USD}}
    unused_days: 30
    grace_days: 14
    ask_permission: {ask}
    campaign: {{response_timeout_days: 10, reminder_days: [3, 6], on_no_response: keep}}
    caps: {{max_per_run: {cap}, max_percent_of_group: 100}}
    schedule: "{schedule}"
"""


def group_id(n: int) -> str:
    return f"5ca1e000-0000-4000-8000-{n:012d}"


def tenant_size(users: int) -> str:
    """Graph's size class for a tenant of ``users`` (the server's throttling uses it)."""
    return "S" if users < 50 else ("M" if users <= 500 else "L")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ScaleWorld:
    """The server, the store, the config file, and the processes started on them."""

    server: GraphServer
    ctx: Context
    config: Path
    groups: dict[str, str]  # policy name → group id
    candidates: dict[str, list[str]]  # policy name → candidate UPNs
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: Path | None = None

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")}
        env |= {name: str(self.server.ca_file) for name in CA_ENV_VARS}
        return env | {SECRET_ENV: CLIENT_SECRET, "RECLAIM_WEB_SECRET": "w" * 40}

    def start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        """Start ``reclaim ARGS -c config`` as its own process (output to a log file)."""
        assert self.logs is not None
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(  # stopped by PID in stop_all
            [sys.executable, "-m", "reclaim", *args, "-c", str(self.config)],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        return self.start("worker", "--poll", "0.2", "--batch", "10", name=name)

    def start_web(self, name: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        proc = self.start("serve", "--no-worker", "--port", str(port), name=name)
        wait_for(lambda: _healthy(port) or proc.poll() is not None, 60)
        assert proc.poll() is None, self.log_tail(name)
        return proc, port

    def log_tail(self, name: str) -> str:
        assert self.logs is not None
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def count_cases(self, *where: ColumnElement[bool]) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(cases).where(*where)).scalar_one()
            )

    def lease_rows(self) -> list[tuple[str, str | None, int, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(leases.c.name, leases.c.owner, leases.c.tick_claimed, leases.c.tick_done)
            ).all()
        return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def wait_for(done: Callable[[], object], seconds: float, step: float = 0.05) -> bool:
    """Poll ``done`` until it is truthy or ``seconds`` pass; whether it became truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(step)
    return bool(done())


def pid_of(owner: str) -> int:
    """The process id inside a worker name (``host:pid:suffix``, runner.worker.worker_id)."""
    return int(owner.split(":")[1])


def build_tenant(sizes: dict[str, int], now: dt.datetime) -> tuple[Tenant, dict[str, list[str]]]:
    """Users and groups as in the module docstring; policy name → candidate UPNs."""
    t = Tenant(TENANT_ID, "Scale Test", DOMAIN)
    t.add_client(CLIENT_ID, CLIENT_SECRET)
    long_ago = now - 300 * DAY
    busy = [
        t.add_user(f"busy{n:05d}@{DOMAIN}", f"Busy {n}").id for n in range(max(sizes.values()) + 1)
    ]
    out: dict[str, list[str]] = {}
    for i, (policy, count) in enumerate(sizes.items()):
        gid = group_id(i + 1)
        t.add_group(f"{policy} users", id=gid)
        members = [
            t.add_user(f"{policy.lower()}{n:05d}@{DOMAIN}", f"{policy} {n}") for n in range(count)
        ]
        out[policy] = [u.user_principal_name for u in members]
        for uid in [u.id for u in members] + busy:
            t.add_member(gid, uid, since=long_ago, journal=False)
    return t, out


def build_world(
    server: GraphServer,
    db_url: str,
    tmp: Path,
    sizes: dict[str, int],
    *,
    asking: tuple[str, ...] = (),
    entra_extra: str = "",
    now: dt.datetime | None = None,
) -> ScaleWorld:
    """Serve the tenant for ``sizes`` (policy → candidates), and fill the store the way
    production does: members synced over Graph, usage from a CSV import."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    tenant, candidates = build_tenant(sizes, now)
    server.reset(tenant)
    groups = {p: group_id(i + 1) for i, p in enumerate(sizes)}
    policies = "".join(
        POLICY.format(
            name=p,
            group=groups[p],
            ask=str(p in asking).lower(),
            cap=max(n, 1),
            schedule=ONCE_A_YEAR,
        )
        for p, n in sizes.items()
    )
    data = tmp / "data"
    size = tenant_size(len(tenant.users))
    text = (
        f"data_dir: {data}\n"
        f"database: {{url: '{db_url}'}}\n"
        "entra:\n"
        f"  tenant_id: {TENANT_ID}\n"
        f"  client_id: {CLIENT_ID}\n"
        f"  client_secret: env:{SECRET_ENV}\n"
        f"  authority_host: {server.base_url}\n"
        f"  graph_url: {server.base_url}\n"
        f"  tenant_size: {size}\n"
        f"{entra_extra}"
        "policies:" + policies
    )
    config = tmp / "reclaim.yaml"
    config.write_text(text, encoding="utf-8")
    settings = parse_settings(text, source=str(config))
    ctx = open_store(settings, now=now)
    with _sync_client(server) as client:
        for pol in settings.policies:
            sync_policy(ctx.engine, client, pol, configured=settings.policies, now=now - 300 * DAY)
    today = now.date()
    busy = [
        u.user_principal_name
        for u in tenant.users.values()
        if u.user_principal_name.startswith("busy")
    ]
    events = [(u, "OUTLOOK.EXE", today - 60 * DAY, 600) for u in busy]
    events += [(u, "EXCEL.EXE", today - 2 * DAY, 900) for u in busy]
    for upns in candidates.values():
        events += [
            (u, "OUTLOOK.EXE", d, 600) for u in upns for d in (today - 60 * DAY, today - 2 * DAY)
        ]
    import_usage(ctx.engine, tmp, events, now=now)
    server.requests.clear()  # the tests count what the processes send
    logs = tmp / "logs"
    logs.mkdir()
    return ScaleWorld(server, ctx, config, groups, candidates, logs=logs)


@contextmanager
def _sync_client(server: GraphServer) -> Iterator[GraphClient]:
    settings = GraphSettings(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        credential=ClientSecret(CLIENT_SECRET),
        authority_host=server.base_url,
        graph_url=server.base_url,
        ca_file=str(server.ca_file),
    )
    client = GraphClient(settings, budget=Unlimited())  # set-up, not what is measured
    try:
        yield client
    finally:
        client.close()
