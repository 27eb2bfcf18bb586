"""A small organization with a clock that tests move: cycles, workers, a recording directory."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from reclaim.bootstrap import Context
from reclaim.runner.worker import Worker, WorkerStats
from reclaim.services.cycle import CycleOutcome, run_cycle
from reclaim.store import cases as store
from reclaim.store.tables import cases
from reclaim.testing.recording_directory import RecordingDirectory

from .conftest import NOW, import_group, import_usage, make_settings, open_store, workdays

DAY = dt.timedelta(days=1)


@dataclass
class Clock:
    """The time every part of the test sees; ``advance`` moves it."""

    now: dt.datetime = NOW

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


@dataclass
class World:
    """A store, its policies, the people in them, a directory fake and a clock."""

    ctx: Context
    tmp: Path
    directory: RecordingDirectory
    clock: Clock = field(default_factory=Clock)

    def policy(self, name: str = "Visio"):
        return self.ctx.settings.policy(name)

    def cycle(self, name: str = "Visio") -> CycleOutcome:
        return run_cycle(
            self.ctx.engine, settings=self.ctx.settings, policy=self.policy(name), now=self.clock()
        )

    def worker(self, **kwargs: object) -> Worker:
        return Worker(
            engine=self.ctx.engine,
            settings=self.ctx.settings,
            directories=lambda _p: self.directory,
            clock=self.clock,
            poll_seconds=0.05,
            **kwargs,  # type: ignore[arg-type]
        )

    def drain(self, **kwargs: object) -> WorkerStats:
        return self.worker(**kwargs).drain()

    def cases(self, name: str = "Visio") -> dict[str, store.StoredCase]:
        """The latest case of each user, by UPN."""
        with self.ctx.engine.connect() as conn:
            ids = [int(i) for i in conn.execute(select(cases.c.id).order_by(cases.c.id)).scalars()]
            found = store.load_cases(conn, ids)
        return {s.case.user: s for s in found if s.case.policy == name}

    def case(self, user: str, name: str = "Visio") -> store.StoredCase:
        return self.cases(name)[user]

    def use(self, user: str, day: dt.date, app: str = "VISIO.EXE", *, name: str) -> None:
        """``user`` used the app on ``day`` (a new import)."""
        import_usage(
            self.ctx.engine, self.tmp, [(user, app, day, 1200)], name=name, now=self.clock()
        )


def build_world(
    db_url: str,
    tmp: Path,
    *policies: str,
    unused: int = 3,
    active: int = 2,
    extra_members: dict[str, list[str]] | None = None,
    now: dt.datetime = NOW,
) -> World:
    """``unused`` people who never open Visio and ``active`` who use it daily; everyone is
    seen every working day from 200 days before ``now`` to 40 days after it (so the clock can
    move forward without the data going stale)."""
    settings = make_settings(db_url, tmp / "data", *policies)
    ctx = open_store(settings, now=now)
    idle = [f"idle{i}@x.test" for i in range(unused)]
    busy = [f"busy{i}@x.test" for i in range(active)]
    days = workdays(now.date() - 200 * DAY, now.date() + 40 * DAY)
    events = [(u, "OUTLOOK.EXE", d, 600) for u in idle + busy for d in days]
    events += [(u, "VISIO.EXE", d, 1800) for u in busy for d in days]
    import_usage(ctx.engine, tmp, events, now=now + 41 * DAY)
    members = {u: now.date() - 300 * DAY for u in idle + busy}
    for name in (p.name for p in settings.policies):
        extra = {u: now.date() - 300 * DAY for u in (extra_members or {}).get(name, [])}
        import_group(ctx, tmp, name, {**members, **extra}, now=now)
    directory = RecordingDirectory(
        {p.name: [*members, *(extra_members or {}).get(p.name, [])] for p in settings.policies}
    )
    return World(ctx, tmp, directory, Clock(now))
