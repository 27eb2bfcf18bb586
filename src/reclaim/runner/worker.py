"""The worker: runs due scheduled cycles, then claims due cases and executes them.

Any number of workers may run against one database: cases are claimed with leases
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), cycles with per-tick leases. Within a
worker, up to ``concurrency`` units of work run at once, each in its own thread: a case,
or a group of up to ``group_size`` (20) due removals of one policy whose directory takes
them together (Graph's ``$batch``: :mod:`reclaim.services.group_removal`). Work spends
most of its time waiting for Graph or a domain controller, so overlapping those waits,
and sharing each store transaction and request among a group, is what brings a worker
up to the directory's write ceiling (bench/graph_reclaim.py).
A worker stops gracefully when asked (SIGTERM/SIGINT in the CLI): it finishes the cases
in hand, gives back the leases it still holds, and exits. SIGHUP re-reads the
configuration between two cases (:mod:`reclaim.runner.reload`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from reclaim.campaigns.asker import build_asker
from reclaim.config import Settings
from reclaim.runner import GROUP_SIZE
from reclaim.runner.reload import reload_refusal
from reclaim.runner.scheduler import run_due_cycles
from reclaim.services.cycle import CycleOutcome
from reclaim.services.group_removal import groups_removals, process_removals
from reclaim.services.runtime import Runtime, StepReport, StopSignal
from reclaim.services.steps import process_case
from reclaim.store.case_claims import claim_due, claim_removals, release
from reclaim.store.policies import sync_policies
from reclaim.store.tables import policies as policies_table
from reclaim.workflows.asker import Asker
from reclaim.workflows.directory import DirectoryFactory
from reclaim.workflows.gate import WriteGate

log = logging.getLogger(__name__)


def worker_id() -> str:
    """A name for this worker, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerStats:
    """What a worker did."""

    cycles: list[CycleOutcome] = field(default_factory=list)
    reports: list[StepReport] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)

    def results(self) -> Counter[str]:
        """How many steps ended in each result."""
        return Counter(r.result for r in self.reports)


@dataclass(frozen=True)
class Unit:
    """Work for one thread: one case (``process_case``), or a group of one policy's due
    removals (``process_removals``, up to ``GROUP_SIZE`` cases)."""

    run: Callable[[Runtime, Sequence[int]], list[StepReport]]
    ids: tuple[int, ...]

    def __call__(self, rt: Runtime) -> list[StepReport]:
        return self.run(rt, self.ids)


def _one(rt: Runtime, ids: Sequence[int]) -> list[StepReport]:
    return process_case(rt, ids[0])


class Worker:
    """Runs cycles and due cases until stopped (see the module docstring)."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        directories: DirectoryFactory,
        asker: Asker | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        owner: str | None = None,
        batch: int = 10,
        concurrency: int = 1,
        group_size: int = GROUP_SIZE,
        lease_seconds: int = 600,
        poll_seconds: float = 5.0,
        dry_run: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.engine = engine
        self.settings = settings
        self.owner = owner or worker_id()
        self.concurrency = concurrency
        self.group_size = max(1, min(group_size, GROUP_SIZE))  # removals sent together
        self.batch = batch  # one unit at a time: claimed this many at once
        self._pool: ThreadPoolExecutor | None = None
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()
        self.dry_run = dry_run
        self._own_asker = asker is None  # a given asker (tests) is kept across reloads
        self._reload: Callable[[], Settings] | None = None
        self.runtime = Runtime(
            engine=engine,
            settings=settings,
            directories=directories,
            asker=asker or build_asker(engine, settings),  # campaigns: when configured
            gate=WriteGate(safety=settings.safety, dry_run=dry_run),
            clock=clock or (lambda: dt.datetime.now(dt.UTC)),
            owner=self.owner,
        )

    def stop(self) -> None:
        """Ask the worker to finish the cases in hand and exit."""
        self.stopping.set()

    def request_reload(self, load: Callable[[], Settings]) -> None:
        """Re-read the configuration with ``load`` before the next case (SIGHUP);
        see :mod:`reclaim.runner.reload` for what may change without a restart."""
        self._reload = load

    def _apply_reload(self) -> None:
        load, self._reload = self._reload, None
        if load is None:
            return
        try:
            new = load()
        except Exception as exc:  # a bad file: keep running on the settings we have
            log.error("configuration not reloaded: %s", exc)
            return
        why = reload_refusal(self.settings, new)
        if why:
            log.error("configuration not reloaded: %s", why)
            return
        now = self.runtime.now()
        with self.engine.begin() as conn:
            sync_policies(conn, new.policies, now=int(now.timestamp()))
        self.runtime.reconfigure(
            new,
            gate=WriteGate(safety=new.safety, dry_run=self.dry_run),
            asker=build_asker(self.engine, new) if self._own_asker else self.runtime.asker,
        )
        self.settings = new
        log.info("configuration reloaded: %d policies", len(new.policies))

    def drain(
        self, *, policy_ids: Sequence[int] | None = None, stats: WorkerStats | None = None
    ) -> WorkerStats:
        """Claim and process due cases until none is due (or a stop)."""
        stats = stats or WorkerStats()
        fresh = getattr(self.runtime.directories, "new_run", None)
        if callable(fresh):  # users and groups are re-read once per pass, not per case
            fresh()
        grouped = self._grouped_policies(policy_ids)
        if self.concurrency == 1:
            self._drain_inline(policy_ids, grouped, stats)
        else:
            self._drain_concurrent(policy_ids, grouped, stats)
        return stats

    def _grouped_policies(self, policy_ids: Sequence[int] | None) -> list[int]:
        """The stored ids of enabled policies whose directory takes grouped removals."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(policies_table.c.id, policies_table.c.name)).all()
        wanted = None if policy_ids is None else set(policy_ids)
        enabled = {p.name: p for p in self.settings.policies if p.enabled}
        return [
            int(pid)
            for pid, name in rows
            if name in enabled
            and (wanted is None or pid in wanted)
            and groups_removals(self.runtime, enabled[name])
        ]

    def _claim(self, policy_ids: Sequence[int] | None, grouped: list[int], free: int) -> list[Unit]:
        """Up to ``free`` units of work: groups of due removals first (up to
        ``group_size`` cases of one policy each), then single cases."""
        now = int(self.runtime.now().timestamp())
        units: list[Unit] = []
        with self.engine.begin() as conn:
            if grouped:
                pairs = claim_removals(
                    conn,
                    owner=self.owner,
                    now=now,
                    lease_seconds=self.lease_seconds,
                    limit=free * self.group_size,
                    policy_ids=grouped,
                )
                by_policy: dict[int, list[int]] = defaultdict(list)
                for case_id, policy_id in pairs:
                    by_policy[policy_id].append(case_id)
                for ids in by_policy.values():
                    for i in range(0, len(ids), self.group_size):
                        units.append(Unit(process_removals, tuple(ids[i : i + self.group_size])))
            if len(units) < free:
                single = claim_due(
                    conn,
                    owner=self.owner,
                    now=now,
                    lease_seconds=self.lease_seconds,
                    limit=free - len(units),
                    policy_ids=policy_ids,
                )
                units += [Unit(_one, (case_id,)) for case_id in single]
        return units

    def _drain_inline(
        self, policy_ids: Sequence[int] | None, grouped: list[int], stats: WorkerStats
    ) -> None:
        """One unit at a time, in the calling thread."""
        while not self.stopping.is_set():
            self._apply_reload()  # between cases, never in the middle of one
            units = self._claim(policy_ids, grouped, self.batch)
            if not units:
                return
            for n, unit in enumerate(units):
                if self.stopping.is_set():
                    self._give_back(units[n:])
                    return
                try:
                    stats.reports += unit(self.runtime)
                except StopSignal as exc:
                    stats.reports += exc.reports
                    stats.stops.append(str(exc))
                    self._give_back(units[n + 1 :])
                    return

    def _drain_concurrent(
        self, policy_ids: Sequence[int] | None, grouped: list[int], stats: WorkerStats
    ) -> None:
        """Up to ``concurrency`` units at once; claims more as threads free up.

        Only as many units are claimed as there are free threads, so the cases a worker
        holds leases on are the ones in hand: a killed worker strands no more than
        ``concurrency`` units (a case, or a group of up to ``group_size`` removals)
        until their leases run out. A ``StopSignal`` (the directory refuses everything,
        sign-in is down) halts the pass: units already running finish, claimed ones not
        started go back.
        """
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="case")
        pending: deque[Unit] = deque()
        running: set[Future[list[StepReport]]] = set()
        halted = dry = False  # dry: the last claim found nothing due
        while True:
            halted = halted or self.stopping.is_set()
            if not running:
                self._apply_reload()  # with no case in hand, like the inline loop
            # A requested reload lets the running cases finish before new ones start.
            starting = not halted and self._reload is None
            free = self.concurrency - len(running) - len(pending)
            if starting and free > 0 and not (dry and running):
                units = self._claim(policy_ids, grouped, free)
                pending.extend(units)
                dry = not units
            while pending and starting and len(running) < self.concurrency:
                running.add(self._pool.submit(pending.popleft(), self.runtime))
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            running -= done
            if not running:
                dry = False  # cases just finished may be due again: look once more
            for future in done:
                try:
                    stats.reports += future.result()
                except StopSignal as exc:
                    stats.reports += exc.reports
                    stats.stops.append(str(exc))
                    halted = True
        self._give_back(list(pending))

    def close(self) -> None:
        """Stop the case threads; close the directory connectors' connections (when the
        factory has any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        closer = getattr(self.runtime.directories, "close", None)
        if callable(closer):
            closer()

    def _give_back(self, units: Sequence[Unit]) -> None:
        ids = [case_id for unit in units for case_id in unit.ids]
        if ids:
            with self.engine.begin() as conn:
                release(conn, ids, owner=self.owner)

    def run(self, *, once: bool = False, max_seconds: float | None = None) -> WorkerStats:
        """Loop: due cycles, then due cases; sleep ``poll_seconds`` when idle.

        ``once``: one pass (every due cycle, every case due now), then return.
        """
        stats = WorkerStats()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while not self.stopping.is_set():
            self._apply_reload()
            stats.cycles += run_due_cycles(
                self.engine, settings=self.settings, now=self.runtime.now(), owner=self.owner
            )
            before = len(stats.reports)
            self.drain(stats=stats)
            if once:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if len(stats.reports) == before:
                wait = self.poll_seconds
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - time.monotonic()))
                self.stopping.wait(wait)
        return stats
