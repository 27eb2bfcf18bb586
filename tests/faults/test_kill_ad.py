"""``reclaim worker`` killed with SIGKILL at random points during an on-prem AD run.

The hybrid peer: LIC-Run on a real Samba DC, named through its Entra ID mirror on the
Graph test server. People answered before the run; worker processes remove the released
members from the DC over LDAPS while the test kills them at seeded random points and
starts new ones. Then directory sync copies AD to Entra ID and a last worker closes the
cases. At the end every case has ended; each consented member is gone from the DC's
group, with exactly one recorded removal (a MODIFY that either took the member out or
found them already out after a killed worker's MODIFY had landed), everyone else is
still in, and every answer is still there.

Quick: 200 cases, 3 kills (on PostgreSQL). Heavy: 2,000 cases, 20 kills.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import Connection
from sqlalchemy import Engine, func, select

from reclaim.domain.case import OPEN, CaseState
from reclaim.runner.scheduler import run_due_cycles
from reclaim.store.tables import directory_writes
from reclaim.testing import samba_seed as seed
from reclaim.testing.graph import CA_ENV_VARS, GraphServer, ManualClock
from reclaim.testing.hybrid import HYBRID_CLIENT_SECRET, run_directory_sync
from reclaim.testing.samba import SambaDC
from tests.integration.ad.helpers import direct_members
from tests.integration.onprem.conftest import put_back_run_group
from tests.integration.onprem.runner_world import PASSWORD_ENV, SECRET_ENV

from .ad_world import build_ad_kill_world, drop_extra_users, members_for, upn_of
from .answers import all_cases, claimable, count_in, lost_answers, record_answers
from .killer import KillLoop
from .scale import Figures, heavy_only, kill_plan, record

S = CaseState
pytestmark = pytest.mark.slow


@pytest.fixture
def run_dc(
    dc1: SambaDC,
    hybrid_server: GraphServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SambaDC]:
    """dc1, with the secrets and the Graph server's CA in the environment (the worker
    processes inherit it); LIC-Run and the bulk OU are put back afterwards."""
    monkeypatch.setenv(PASSWORD_ENV, dc1.template.service_password)
    monkeypatch.setenv(SECRET_ENV, HYBRID_CLIENT_SECRET)
    for name in CA_ENV_VARS:
        monkeypatch.setenv(name, str(hybrid_server.ca_file))
    yield dc1
    # A fresh connection: a run that failed under load may have left ``admin``'s
    # socket closed, and LIC-Run must be put back whatever happened, or the next
    # test meets a group of 2,000.
    try:
        fresh = dc1.admin_connection()
        try:
            drop_extra_users(fresh)
        finally:
            fresh.unbind()
    finally:
        put_back_run_group(dc1)


def removal_rows_per_case(engine: Engine) -> list[tuple[int, int]]:
    """Cases with more than one recorded removal (idempotency key) — must be none."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(directory_writes.c.case_id, func.count())
            .where(directory_writes.c.action == "remove")
            .group_by(directory_writes.c.case_id)
            .having(func.count() > 1)
        ).all()
    return [(int(r[0]), int(r[1])) for r in rows]


def kill_run(
    *,
    heavy: bool,
    dc: SambaDC,
    admin: Connection,
    server: GraphServer,
    graph_clock: ManualClock,
    db_url: str,
    tmp_path: Path,
) -> None:
    plan = kill_plan(heavy=heavy)
    began = time.monotonic()
    world, hybrid, config = build_ad_kill_world(
        n=plan.cases, admin=admin, dc=dc, server=server, graph_clock=graph_clock,
        db_url=db_url, tmp=tmp_path,
    )  # fmt: skip
    engine = world.engine
    try:
        (cycle,) = run_due_cycles(
            engine, settings=world.settings, now=world.clock(), owner="fault-test"
        )
        assert len(cycle.opened) == plan.cases, cycle.plan.alerts
        assert world.drain().results() == {"asked": plan.cases}
        answers = record_answers(engine, world.settings, now=world.clock(), seed=plan.seed)
        consented = {a.user for a in answers if not a.keep}
        authorized = world.cycle()
        assert authorized.authorized == len(consented), authorized.plan.alerts

        loop = KillLoop(
            config=config,
            progress=lambda: count_in(engine, S.AWAITING_SYNC, S.REMOVED),
            goal=len(consented),
            finished=lambda: claimable(engine, int(time.time())) == 0,
            kills=plan.kills,
            seed=plan.seed,
            log_dir=tmp_path,
        )
        loop.run(timeout=60 + plan.cases * 0.8)
        assert len(loop.killed) == plan.kills

        # Entra Connect copies AD to Entra ID; the dead workers' leases run out
        # (10 minutes) and a last worker closes every case.
        run_directory_sync(hybrid, admin, seed.LIC_RUN.dn)
        for minutes in (16, 32, 48, 64):
            if count_in(engine, *OPEN) == 0:
                break
            world.clock.now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
            world.drain()
            run_directory_sync(hybrid, admin, seed.LIC_RUN.dn)
        stored = all_cases(engine)
        open_left = [(s.case.user, s.case.state.value) for s in stored if s.case.state in OPEN]
        assert open_left == [], open_left[:10]

        in_group = {upn_of(dn) for dn in direct_members(admin, seed.LIC_RUN.dn)}
        writes = world.writes()
        duplicates = removal_rows_per_case(engine)
        missing = [
            (s.case.user, s.case.state.value, writes.get(s.id))
            for s in stored
            if s.case.user in consented
            and (s.case.state is not S.REMOVED or s.case.user in in_group
                 or writes.get(s.id, (0, ""))[1] not in ("done", "already_done"))
        ]  # fmt: skip
        wrong = [
            (s.case.user, s.case.state.value)
            for s in stored
            if s.case.user not in consented
            and (
                s.case.state is not S.ANSWERED_KEEP or s.case.user not in in_group or s.id in writes
            )
        ]
        everyone = {upn_of(dn) for dn in members_for(plan.cases)}
        assert in_group == everyone - consented  # nobody else was touched
        lost = lost_answers(engine, answers)
        record(
            Figures(
                fault="worker SIGKILL at random points",
                peer="on-prem AD (Samba DC, hybrid)",
                database=engine.url.get_backend_name(),
                injected=len(loop.killed),
                cases=len(stored),
                consented=len(consented),
                removals=len(everyone - in_group),
                duplicates=len(duplicates),
                lost=len(lost) + len(missing),
                seed=plan.seed,
                seconds=round(time.monotonic() - began, 1),
            )
        )
        assert duplicates == [] and missing == [] and wrong == [] and lost == [], (
            duplicates[:5], missing[:5], wrong[:5], lost[:5],
        )  # fmt: skip
    finally:
        world.close()


def test_quick_sigkill_ad_every_case_ends_one_removal_each(
    run_dc: SambaDC,
    admin: Connection,
    hybrid_server: GraphServer,
    graph_clock: ManualClock,
    pg_url: str,
    tmp_path: Path,
) -> None:
    kill_run(
        heavy=False, dc=run_dc, admin=admin, server=hybrid_server, graph_clock=graph_clock,
        db_url=pg_url, tmp_path=tmp_path,
    )  # fmt: skip


@heavy_only
@pytest.mark.timeout(7200)
def test_heavy_sigkill_ad_2000_cases_20_kills(
    run_dc: SambaDC,
    admin: Connection,
    hybrid_server: GraphServer,
    graph_clock: ManualClock,
    db_url: str,
    tmp_path: Path,
) -> None:
    kill_run(
        heavy=True, dc=run_dc, admin=admin, server=hybrid_server, graph_clock=graph_clock,
        db_url=db_url, tmp_path=tmp_path,
    )  # fmt: skip
