"""The onprem_ad workflow run by the real runner: a store, a Samba DC, the hybrid tenant.

A :class:`RunnerWorld` holds a migrated store whose one ``onprem_ad`` policy names
the seed group ``LIC-Run`` (400 members) through Entra (``group.entra_id``), the
members read from the DC by ``reclaim ad sync``'s service, usage that makes the
first ``idle`` members candidates, and workers built the way a deployment builds them
(``onprem_ad_directory_factory`` from the config file's ``ldap:`` and ``entra:``).
A test clock moves case time; LDAP and Graph run in real time over loopback.

Every step the adapter records passes through :class:`StepTap`, which counts them
(how many MODIFY requests were sent, per user) and lets a test act at an exact point
of a removal: stop a DC, crash the worker, remove a member behind our back.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select

from reclaim.bootstrap import Context
from reclaim.config import Settings, parse_settings
from reclaim.domain.policy import Policy
from reclaim.runner import GROUP_SIZE
from reclaim.runner.worker import Worker, WorkerStats
from reclaim.services.ad_sync import sync_policy
from reclaim.services.cases import answer
from reclaim.services.cycle import CycleOutcome, run_cycle
from reclaim.store import cases as store
from reclaim.store.leases import paused_in_store
from reclaim.store.tables import cases, directory_writes
from reclaim.testing import samba_seed as seed
from reclaim.testing.graph import ManualClock
from reclaim.testing.hybrid import HYBRID_CLIENT_ID, HybridTenant
from reclaim.workflows.directory import DirectoryFactory
from reclaim.workflows.onprem_ad import OnPremAdDirectory, onprem_ad_directory_factory
from reclaim.workflows.step_log import Step
from tests.integration.decisions.conftest import import_usage, open_store

NOW = dt.datetime(2026, 11, 10, 8, 0, tzinfo=dt.UTC)  # a Tuesday
DAY = dt.timedelta(days=1)
POLICY = seed.LIC_RUN.name
PASSWORD_ENV = "RECLAIM_TEST_RUNNER_AD_PASSWORD"
SECRET_ENV = "RECLAIM_TEST_RUNNER_GRAPH_SECRET"


def upn(i: int) -> str:
    """The UPN of the i-th member of LIC-Run (bulk0000…bulk0399)."""
    return seed.BULK_USERS[i].upn


class StepTap:
    """The adapter's ``on_step``: counts steps and runs the test's hooks on each."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.hooks: list[Callable[[Step], None]] = []

    def __call__(self, step: Step) -> None:
        self.steps.append(step)
        for hook in list(self.hooks):
            hook(step)

    def count(self, name: str, *, outcome: str | None = None) -> Counter[str]:
        """How many ``name`` steps each user got (only those ending in ``outcome``)."""
        return Counter(
            s.user or "-"
            for s in self.steps
            if s.step == name and (outcome is None or s.outcome.startswith(outcome))
        )

    def modifies(self) -> Counter[str]:
        """MODIFY_DELETE requests handed to the connector, per user."""
        return self.count("ldap.remove_member")


@dataclass
class Clock:
    """Case time; ``advance`` moves it (and the Graph server's clock, whose throttling
    windows must see the time pass too)."""

    now: dt.datetime
    graph: ManualClock

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        step = dt.timedelta(**delta)
        self.now += step
        # Only enough for throttling windows to roll over: a day on the Graph server's
        # clock would expire the tokens MSAL still holds (MSAL keeps real time).
        self.graph.advance(min(step.total_seconds(), 60.0))
        return self.now


def settings_yaml(
    *,
    tmp: Path,
    db_url: str,
    hosts: tuple[str, ...],
    ca_file: Path,
    graph_url: str,
    tenant_id: str,
    group_id: str,
    ask: bool,
    safety: str = "",
    deadline_hours: float = 24,
) -> str:
    """The config file a deployment would have for this world."""
    host_list = ", ".join(f'"{h}"' for h in hosts)
    return f"""
data_dir: {tmp / "data"}
database: {{url: "{db_url}"}}
{safety}
entra:
  tenant_id: "{tenant_id}"
  client_id: "{HYBRID_CLIENT_ID}"
  client_secret: "env:{SECRET_ENV}"
  authority_host: "{graph_url}"
  graph_url: "{graph_url}"
ldap:
  hosts: [{host_list}]
  base_dn: "{seed.BASE_DN}"
  bind_user: "{seed.SERVICE_ACCOUNT.upn}"
  bind_password: "env:{PASSWORD_ENV}"
  ca_file: "{ca_file}"
  sync_deadline_hours: {deadline_hours}
policies:
  - name: {POLICY}
    apps: [VISIO.EXE]
    group: {{entra_id: "{group_id}"}}
    workflow: onprem_ad
    seat_cost: {{amount: "12", currency: USD}}
    unused_days: 30
    grace_days: 14
    ask_permission: {str(ask).lower()}
    campaign: {{response_timeout_days: 10, reminder_days: [3, 6], on_no_response: keep}}
    caps: {{max_per_run: 500, max_percent_of_group: 100}}
"""


@dataclass
class RunnerWorld:
    """See the module docstring."""

    ctx: Context
    hybrid: HybridTenant
    clock: Clock
    tap: StepTap = field(default_factory=StepTap)
    _factories: list[DirectoryFactory] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def policy(self) -> Policy:
        return self.settings.policy(POLICY)

    # -- the runner -------------------------------------------------------------------
    def kill_switch(self) -> bool:
        """``writes_allowed`` for the connectors: the store's ``reclaim pause``."""
        with self.engine.connect() as conn:
            return not paused_in_store(conn)

    def directories(self, settings: Settings | None = None) -> DirectoryFactory:
        """A factory as a deployment builds it (new connectors: a new process)."""
        made = onprem_ad_directory_factory(
            settings or self.settings, writes_allowed=self.kill_switch, on_step=self.tap
        )
        self._factories.append(made)
        return made

    def worker(
        self,
        *,
        dry_run: bool = False,
        settings: Settings | None = None,
        group_size: int = GROUP_SIZE,
    ) -> Worker:
        return Worker(
            engine=self.engine,
            settings=settings or self.settings,
            directories=self.directories(settings),
            clock=self.clock,
            batch=50,
            poll_seconds=0.05,
            dry_run=dry_run,
            group_size=group_size,
        )

    def drain(self, **kwargs: object) -> WorkerStats:
        return self.worker(**kwargs).drain()  # type: ignore[arg-type]

    def cycle(self) -> CycleOutcome:
        return run_cycle(self.engine, settings=self.settings, policy=self.policy, now=self.clock())

    def close(self) -> None:
        for factory in self._factories:
            port = factory(self.policy)
            assert isinstance(port, OnPremAdDirectory)
            port.ldap.close()
            if port.graph is not None:
                port.graph.close()
        self.engine.dispose()

    # -- looking at the store ---------------------------------------------------------
    def cases(self) -> dict[str, store.StoredCase]:
        """The latest case of each user, by UPN."""
        with self.engine.connect() as conn:
            ids = [int(i) for i in conn.execute(select(cases.c.id).order_by(cases.c.id)).scalars()]
            found = store.load_cases(conn, ids)
        return {s.case.user: s for s in found}

    def case(self, user: str) -> store.StoredCase:
        return self.cases()[user]

    def states(self) -> Counter[str]:
        return Counter(s.case.state.value for s in self.cases().values())

    def writes(self, action: str = "remove") -> dict[int, tuple[int, str]]:
        """Recorded directory writes of one action, by case id: (sends, result)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    directory_writes.c.case_id,
                    directory_writes.c.sends,
                    directory_writes.c.result,
                ).where(directory_writes.c.action == action)
            ).all()
        return {int(r[0]): (int(r[1]), str(r[2])) for r in rows}

    def answer_all(self, *, keep: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """Every asked user answers: release, except those in ``keep``."""
        for user, stored in self.cases().items():
            answer(
                self.engine,
                self.settings,
                stored.id,
                keep=user in keep,
                now=self.clock(),
                reason="still needed" if user in keep else None,
            )


def build_runner_world(
    *,
    settings_text: str,
    hybrid: HybridTenant,
    graph_clock: ManualClock,
    directory: OnPremAdDirectory,
    tmp: Path,
    idle: int,
) -> RunnerWorld:
    """Store, AD sync (60 days before NOW, so everyone is out of grace) and usage:
    members 0…idle-1 never open Visio, the others used it yesterday; everyone's devices
    reported since 90 days ago, and yesterday (fresh data)."""
    settings = parse_settings(settings_text, source="runner-test.yaml")
    ctx = open_store(settings, now=NOW)
    policy = settings.policy(POLICY)
    synced = sync_policy(
        ctx.engine, policy, directory=directory, configured=settings.policies, now=NOW - 60 * DAY
    )
    assert synced.members == seed.RUN_GROUP_SIZE, synced
    yesterday, first = (NOW - DAY).date(), (NOW - 90 * DAY).date()
    rows: list[tuple[str, str, dt.date, int | None]] = []
    for i in range(seed.RUN_GROUP_SIZE):
        rows += [(upn(i), "OUTLOOK.EXE", first, 600), (upn(i), "OUTLOOK.EXE", yesterday, 600)]
        if i >= idle:
            rows.append((upn(i), "VISIO.EXE", yesterday, 1800))
    import_usage(ctx.engine, tmp, rows, now=NOW)
    return RunnerWorld(ctx, hybrid, Clock(NOW, graph_clock))
