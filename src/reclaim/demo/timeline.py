"""The demo's weeks, simulated: sync, cycles, approvals, answers and the worker, day by day.

Time is a :class:`DemoClock` that the demo moves, never a sleep: each simulated day runs
what a deployment would run that day (directory sync, each policy's cycle, the worker)
with ``now`` set to that day. Employees' answers are simulated from a seeded draw per
case: most release the license, some keep it, some never answer (their case times out
and the policy's default applies). Removal plans need approval; the demo approves each
one itself, on the record as ``reclaim demo``.

The loop skips days on which nothing is due and stops once every case is closed (or
only cases the mass-removal guard holds are left: lifting it is an admin's call).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from reclaim.config import Settings
from reclaim.connectors.graph import GraphClient
from reclaim.domain.case import CaseState
from reclaim.domain.plan import ItemStatus
from reclaim.runner.worker import Worker
from reclaim.services.cases import answer
from reclaim.services.cycle import CycleOutcome, run_cycle
from reclaim.services.entra_sync import SyncReport, sync_policy
from reclaim.services.plans import approve_plan
from reclaim.store import cases as store
from reclaim.workflows.asker import OutboxAsker
from reclaim.workflows.directory import DirectoryFactory

DAY = dt.timedelta(days=1)
APPROVER = "reclaim demo (approved automatically)"
RELEASE_SHARE, KEEP_SHARE = 70, 20  # per cent; the rest never answer
REASONS_KEEP = ("I need it for the quarterly report", "Still using it on another laptop")
REASONS_RELEASE = ("Not needed any more", "I changed roles", "Never really used it")


@dataclass
class DemoClock:
    """The time every part of the demo sees; the timeline moves it."""

    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


def choice(seed: int, policy: str, user: str, cycle: int) -> str:
    """The simulated employee's answer: ``release``, ``keep`` or ``silent`` (seeded)."""
    digest = hashlib.sha256(f"{seed}|{policy}|{user}|{cycle}".encode()).digest()
    draw = int.from_bytes(digest[:4], "big") % 100
    if draw < RELEASE_SHARE:
        return "release"
    return "keep" if draw < RELEASE_SHARE + KEEP_SHARE else "silent"


@dataclass
class Day:
    """What one simulated day did."""

    number: int
    date: dt.date
    answers: Counter[str] = field(default_factory=Counter)
    left: int = 0
    cycles: list[CycleOutcome] = field(default_factory=list)
    approved: list[int] = field(default_factory=list)  # plan ids approved by the demo
    steps: Counter[str] = field(default_factory=Counter)  # "step → result" counts
    stops: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time the day took to simulate

    def busy(self) -> bool:
        """Whether anything happened worth a line of output."""
        return bool(self.answers or self.steps or self.left or self.approved or self.stops)


@dataclass
class Timeline:
    """Runs the simulated days against one store, one Graph client and the directories."""

    engine: Engine
    settings: Settings
    sync_client: GraphClient
    directories: DirectoryFactory
    clock: DemoClock
    seed: int
    start: dt.datetime = field(init=False)
    syncs: list[SyncReport] = field(default_factory=list)  # the first day's, for the report
    # (policy, user) whose removal the mass-removal guard holds: no cycle will change that
    halted: set[tuple[str, str]] = field(default_factory=set)
    progress: Callable[[str], None] = field(default=lambda _: None)  # what runs right now
    days: list[Day] = field(default_factory=list)  # every simulated day so far

    def __post_init__(self) -> None:
        self.start = self.clock.now
        self.worker = Worker(
            engine=self.engine,
            settings=self.settings,
            directories=self.directories,
            clock=self.clock,
            asker=OutboxAsker(),  # questions are recorded, as no mail server is configured
            owner="reclaim-demo",
            batch=50,
        )

    # ----- one day ---------------------------------------------------------------------

    def sync(self, day: Day) -> list[SyncReport]:
        """``reclaim directory sync`` for every policy (delta after the first round)."""
        reports = [
            sync_policy(
                self.engine,
                self.sync_client,
                policy,
                configured=self.settings.policies,
                now=self.clock.now,
            )
            for policy in self.settings.policies
        ]
        day.left += sum(r.left for r in reports)
        return reports

    def cycles(self, day: Day) -> None:
        """Each policy's cycle; a plan whose removals need approval is approved here."""
        for policy in self.settings.policies:
            outcome = run_cycle(
                self.engine, settings=self.settings, policy=policy, now=self.clock.now
            )
            day.cycles.append(outcome)
            for part in outcome.plan.policies:
                for item in part.items:
                    key = (part.policy, item.user)
                    if item.status is ItemStatus.HALTED:
                        self.halted.add(key)
                    else:
                        self.halted.discard(key)
            if outcome.awaiting_approval and outcome.plan_id is not None:
                approve_plan(
                    self.engine,
                    outcome.plan_id,
                    by=APPROVER,
                    now=self.clock.now,
                    note="the demo approves its own plans; a real run waits for an admin",
                )
                day.approved.append(outcome.plan_id)

    def drain(self, day: Day) -> None:
        """The worker, until nothing is due now."""
        stats = self.worker.drain()
        day.steps.update(f"{r.step} → {r.result}" for r in stats.reports)
        day.stops += stats.stops

    def answers(self, day: Day) -> None:
        """Employees asked before today answer now, as their seeded draw says."""
        today = self.clock.now.date()
        for stored in self._open():
            case = stored.case
            if case.state not in (CaseState.ASKED, CaseState.REMINDED):
                continue
            if case.asked_at is None or case.asked_at.date() >= today:
                continue
            picked = choice(self.seed, case.policy, case.user, case.cycle)
            if picked == "silent":
                continue
            keep = picked == "keep"
            reasons = REASONS_KEEP if keep else REASONS_RELEASE
            answer(
                self.engine,
                self.settings,
                stored.id,
                keep=keep,
                now=self.clock.now,
                reason=reasons[stored.id % len(reasons)],
            )
            day.answers[picked] += 1

    def run_day(self, number: int) -> Day:
        """Everything one day runs, in the order a deployment would run it."""
        started = time.perf_counter()
        day = Day(number, self.clock.now.date())
        if number:
            self.progress(f"day {number}: employees answer …")
            self.answers(day)
        self.progress(f"day {number}: directory sync (Graph) …")
        reports = self.sync(day)
        if number == 0:
            self.syncs = reports
        self.progress(f"day {number}: verdicts, cases and plans …")
        self.cycles(day)
        self.progress(f"day {number}: the worker asks, reminds and removes (Graph) …")
        self.drain(day)
        day.seconds = time.perf_counter() - started
        return day

    # ----- the weeks ---------------------------------------------------------------------

    def _open(self) -> list[store.StoredCase]:
        with self.engine.connect() as conn:
            return store.find_cases(conn, open_only=True)

    def next_day(self) -> int | None:
        """The next day with something to do (None: every case is closed, or those left
        are held by the mass-removal guard, which only an admin can lift)."""
        open_cases = [s for s in self._open() if (s.case.policy, s.case.user) not in self.halted]
        if not open_cases:
            return None
        today = (self.clock.now - self.start) // DAY
        waiting = [s for s in open_cases if s.next_due_at is None]
        answering = [
            s
            for s in open_cases
            if s.case.state in (CaseState.ASKED, CaseState.REMINDED)
            and choice(self.seed, s.case.policy, s.case.user, s.case.cycle) != "silent"
        ]
        if waiting or answering:
            return today + 1  # a plan, an approval or an answer comes tomorrow
        due = min(s.next_due_at for s in open_cases if s.next_due_at is not None)
        at = dt.datetime.fromtimestamp(due, dt.UTC)
        return max(today + 1, -(-(at - self.start) // DAY))

    def run(self, *, max_days: int, on_day: Callable[[Day], None] | None = None) -> list[Day]:
        """Day 0, then every day with work, until every case is closed or ``max_days``."""
        number: int | None = 0
        while number is not None and number <= max_days:
            self.clock.now = self.start + number * DAY
            day = self.run_day(number)
            self.days.append(day)
            if on_day is not None:
                on_day(day)
            number = self.next_day()
        return self.days
