"""An organization on the Graph test server, run by the real runner (worker, gate, store).

The store is filled the way production fills it: the E3 group's members come from
directory sync over Graph, usage from a CSV import. Everyone is seen in Outlook every
working day, nobody opens Excel unless listed as ``busy``, so the E3 members are
candidates. The worker gets the real :class:`~reclaim.workflows.directory.Directories`
(kill switch, step filing, lazy build); only the Graph client's sleeps are pointed at
the server's fake clock, so Retry-After and backoff never wait for real.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reclaim.bootstrap import Context
from reclaim.config import Settings, parse_settings
from reclaim.connectors.graph import GraphClient
from reclaim.domain.policy import Workflow
from reclaim.runner.worker import Worker, WorkerStats
from reclaim.services.cycle import CycleOutcome, run_cycle
from reclaim.services.entra_sync import sync_policy
from reclaim.store import cases as store
from reclaim.store.tables import cases, users
from reclaim.testing.graph import GraphServer, ManualClock
from reclaim.workflows.directory import Directories
from reclaim.workflows.entra_id import entra_directory_factory

from ..decisions.conftest import import_usage, open_store, policy_yaml, workdays
from .conftest import CLIENT_ID, E3_GROUP, UPNS, server_settings

DAY = dt.timedelta(days=1)
SECRET_ENV = "RECLAIM_TEST_ENTRA_SECRET"
E3_MEMBERS = [UPNS[k] for k in UPNS if k != "e0000000-0000-0000-0000-000000000007"]


def now_utc() -> dt.datetime:
    """The real time to the second: the CLI (in a subprocess too) runs on it."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Clock:
    """The time the store, cycles and in-process workers see; ``advance`` moves it."""

    now: dt.datetime = field(default_factory=now_utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def entra_policy(
    name: str, group_id: str, *, ask: bool = True, default: str = "keep", cap: int = 50
) -> str:
    """A policy's YAML for an Entra group (Excel unused for 30 days)."""
    text = policy_yaml(name, apps="EXCEL.EXE", ask=ask, default=default, cap=cap)
    return text.replace(
        f'group: {{name: "{name} users"}}\n    workflow: manual',
        f"group: {{entra_id: {group_id}}}\n    workflow: entra_id",
    )


def config_text(
    server: GraphServer,
    db_url: str,
    data_dir: Path,
    *policies: str,
    graph_url: str | None = None,
    authority: str | None = None,
    safety: str = "",
) -> str:
    """A complete reclaim.yaml pointing at the test server (secret from the environment);
    ``graph_url`` / ``authority`` replace its URL for Graph / for sign-in."""
    graph = graph_url or server.base_url
    return (
        f"data_dir: {data_dir}\n"
        f"database: {{url: '{db_url}'}}\n"
        f"{safety}"
        "entra:\n"
        f"  tenant_id: {server.tenant.tenant_id}\n"
        f"  client_id: {CLIENT_ID}\n"
        f"  client_secret: env:{SECRET_ENV}\n"
        f"  authority_host: {authority or graph}\n"
        f"  graph_url: {graph}\n"
        "policies:\n" + "".join(policies)
    )


@dataclass
class EntraWorld:
    """The store, the server, the clocks, and the config file for the CLI."""

    ctx: Context
    server: GraphServer
    server_clock: ManualClock
    config: Path
    clock: Clock
    clients: list[GraphClient] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def cycle(self, name: str = "E3") -> CycleOutcome:
        return run_cycle(
            self.ctx.engine,
            settings=self.settings,
            policy=self.settings.policy(name),
            now=self.clock(),
        )

    def client(self, settings: dict[str, Any] | None = None, **kwargs: Any) -> GraphClient:
        """A Graph client on the server whose sleeps advance the server's clock.

        ``settings`` overrides connector settings (e.g. ``read_timeout``).
        """

        def sleep(seconds: float) -> None:
            self.server_clock.advance(max(0.0, seconds))

        options: dict[str, Any] = {
            "sleep": sleep,
            "clock": self.server_clock.time,
            "wall_clock": self.server_clock.time,
            "rng": lambda: 0.5,
            **kwargs,
        }
        made = GraphClient(server_settings(self.server, **(settings or {})), **options)
        self.clients.append(made)
        return made

    def directories(
        self,
        *,
        dry_run: bool = False,
        settings: dict[str, Any] | None = None,
        observer: Callable[[dict[str, Any]], None] | None = None,
    ) -> Directories:
        """The production factory; its Entra client paces itself on the fake clock.

        ``observer`` sees each step the adapter records, after it was filed (tests use
        it to inject a fault at a chosen point of a run).
        """

        def entra(d: Directories) -> Any:
            client = self.client(
                settings, writes_allowed=d.writes_allowed, dry_run=d.settings.safety.dry_run
            )
            on_step = d.on_step
            if observer is not None:

                def on_step(step: dict[str, Any]) -> None:
                    d.on_step(step)
                    observer(step)

            return entra_directory_factory(
                d.settings, writes_allowed=d.writes_allowed, on_step=on_step, client=client
            )

        return Directories(
            self.ctx.engine, self.settings, dry_run=dry_run, builders={Workflow.ENTRA_ID: entra}
        )

    def worker(self, directories: Directories | None = None, **kwargs: Any) -> Worker:
        return Worker(
            engine=self.ctx.engine,
            settings=self.settings,
            directories=directories or self.directories(),
            clock=self.clock,
            poll_seconds=0.05,
            **kwargs,
        )

    def drain(self, directories: Directories | None = None, **kwargs: Any) -> WorkerStats:
        worker = self.worker(directories, **kwargs)
        try:
            return worker.drain()
        finally:
            worker.close()

    def case(self, user: str) -> store.StoredCase:
        with self.ctx.engine.connect() as conn:
            cid = conn.execute(
                cases.select()
                .with_only_columns(cases.c.id)
                .join(users, users.c.id == cases.c.user_id)
                .where(users.c.upn == user.lower())
                .order_by(cases.c.id.desc())
            ).scalar()
            assert cid is not None, f"no case for {user}"
            found = store.load_case(conn, int(cid))
        assert found is not None
        return found

    def use_excel(self, user: str, day: dt.date) -> None:
        import_usage(
            self.ctx.engine,
            self.config.parent,
            [(user, "EXCEL.EXE", day, 1200)],
            name=f"excel-{len(self.clients)}-{day}.csv",
            now=self.clock(),
        )

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.ctx.engine.dispose()


def build_entra_world(
    server: GraphServer,
    server_clock: ManualClock,
    db_url: str,
    tmp: Path,
    *policies: str,
    busy: Iterable[str] = (),
    graph_url: str | None = None,
    authority: str | None = None,
) -> EntraWorld:
    """Store + config for ``policies`` (default: E3 asking), members synced from Graph."""
    now = now_utc()
    for user in server.tenant.users.values():  # every seat granted long ago
        for state in user.license_states:
            state.last_updated = now - 300 * DAY
    for group in server.tenant.groups.values():
        for membership in group.members.values():
            membership.since = now - 300 * DAY
    chosen = policies or (entra_policy("E3", E3_GROUP),)
    text = config_text(
        server, db_url, tmp / "data", *chosen, graph_url=graph_url, authority=authority
    )
    config = tmp / "reclaim.yaml"
    config.write_text(text, encoding="utf-8")
    settings = parse_settings(text, source=str(config))
    ctx = open_store(settings, now=now)
    world = EntraWorld(ctx, server, server_clock, config, Clock(now))
    sync_client = world.client()
    for pol in settings.policies:  # first seen long ago (groups without a license have no
        # grant date in Graph, so Reclaim counts from the first sync that saw the member)
        synced_at = now - 300 * DAY
        sync_policy(ctx.engine, sync_client, pol, configured=settings.policies, now=synced_at)
    busy = set(busy)
    days = workdays(now.date() - 200 * DAY, now.date() + 40 * DAY)
    people = [u for u in E3_MEMBERS]
    events = [(u, "OUTLOOK.EXE", d, 600) for u in people for d in days]
    events += [(u, "EXCEL.EXE", d, 1800) for u in busy for d in days]
    import_usage(ctx.engine, tmp, events, now=now)
    server.requests.clear()  # tests count what the runner sends
    return world
