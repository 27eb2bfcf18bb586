"""``reclaim worker`` killed with SIGKILL at random points during an Entra run.

People answered before the run (most release their seat, some keep it); worker
processes then remove the released seats through the Graph test server while the test
kills them at seeded random points and starts new ones. At the end every case has
ended, the server's request log shows exactly one successful ``DELETE .../$ref`` per
consented case and none for the others, and every answer is still there.

Quick: 200 cases, 3 kills, on SQLite. Heavy (``RECLAIM_FAULTS_HEAVY=1``): 2,000 cases, 20 kills.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from pathlib import Path

import pytest

from reclaim.domain.case import OPEN, CaseState
from reclaim.runner.scheduler import run_due_cycles
from reclaim.testing.graph import GraphServer, ManualClock
from tests.integration.entra.conftest import CLIENT_SECRET
from tests.integration.entra.runner_world import now_utc

from .answers import all_cases, claimable, count_in, lost_answers, record_answers
from .entra_world import GROUP, build_kill_world, user_id
from .killer import KillLoop
from .scale import Figures, heavy_only, kill_plan, record

S = CaseState
pytestmark = pytest.mark.slow
SECRET_ENV = "RECLAIM_TEST_ENTRA_SECRET"


def kill_run(
    *, heavy: bool, server: GraphServer, clock: ManualClock, db_url: str, tmp_path: Path
) -> None:
    plan = kill_plan(heavy=heavy)
    began = time.monotonic()
    world = build_kill_world(server, clock, db_url, tmp_path, plan.cases)
    try:
        # The scheduled tick, taken here so the workers do not run it again.
        (cycle,) = run_due_cycles(
            world.ctx.engine, settings=world.settings, now=world.clock(), owner="fault-test"
        )
        assert len(cycle.opened) == plan.cases, cycle
        assert world.drain().results() == {"asked": plan.cases}
        answers = record_answers(
            world.ctx.engine, world.settings, now=world.clock(), seed=plan.seed
        )
        consented = {a.user: a for a in answers if not a.keep}
        authorized = world.cycle()  # the next cycle authorizes the consented removals
        assert authorized.authorized == len(consented), authorized.plan.alerts
        assert server.requests.count("DELETE") == 0

        engine = world.ctx.engine
        loop = KillLoop(
            config=world.config,
            progress=lambda: count_in(engine, S.REMOVED),
            goal=len(consented),
            # Done once nothing is left that a live worker could pick up: only cases
            # stranded under a dead worker's lease, or waiting out a retry.
            finished=lambda: claimable(engine, int(time.time())) == 0,
            kills=plan.kills,
            seed=plan.seed,
            log_dir=tmp_path,
        )
        loop.run(timeout=60 + plan.cases * 0.6)
        assert len(loop.killed) == plan.kills

        # The dead workers' leases run out (10 minutes); a last worker finishes.
        for n in range(1, 7):
            if count_in(engine, *OPEN) == 0:
                break
            world.clock.now = now_utc() + dt.timedelta(minutes=11 * n)
            world.drain()
        stored = all_cases(engine)
        open_left = [(s.case.user, s.case.state.value) for s in stored if s.case.state in OPEN]
        assert open_left == [], open_left[:10]

        ok_deletes = Counter(r.path.rsplit("/", 2)[-2] for r in server.requests.removals(ok=True))
        assert not server.requests.refused_user_deletes()
        duplicates = [u for u, n in ok_deletes.items() if n > 1]
        missing, wrong = [], []
        for s in stored:
            uid = user_id(int(s.case.user.split("@")[0].removeprefix("kill")))
            if s.case.user in consented:
                if s.case.state is not S.REMOVED or ok_deletes[uid] != 1:
                    missing.append((s.case.user, s.case.state.value, ok_deletes[uid]))
                assert not server.is_member(uid, GROUP)
            else:
                if s.case.state is not S.ANSWERED_KEEP or ok_deletes[uid] != 0:
                    wrong.append((s.case.user, s.case.state.value, ok_deletes[uid]))
                assert server.is_member(uid, GROUP)
        lost = lost_answers(engine, answers)
        record(
            Figures(
                fault="worker SIGKILL at random points",
                peer="Entra ID (Graph test server)",
                database=engine.url.get_backend_name(),
                injected=len(loop.killed),
                cases=len(stored),
                consented=len(consented),
                removals=sum(ok_deletes.values()),
                duplicates=len(duplicates),
                lost=len(lost) + len(missing),
                seed=plan.seed,
                seconds=round(time.monotonic() - began, 1),
            )
        )
        assert duplicates == [] and missing == [] and wrong == [] and lost == [], (
            duplicates[:5], missing[:5], wrong[:5], lost[:5],
        )  # fmt: skip
        assert sum(ok_deletes.values()) == len(consented)
    finally:
        world.close()


def test_quick_sigkill_entra_every_case_ends_one_delete_each(
    server: GraphServer,
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    kill_run(
        heavy=False,
        server=server,
        clock=clock,
        db_url=f"sqlite:///{tmp_path / 'reclaim.db'}",
        tmp_path=tmp_path,
    )


@heavy_only
@pytest.mark.timeout(7200)
def test_heavy_sigkill_entra_2000_cases_20_kills(
    server: GraphServer,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    kill_run(heavy=True, server=server, clock=clock, db_url=db_url, tmp_path=tmp_path)
