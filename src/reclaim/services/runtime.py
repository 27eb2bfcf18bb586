"""What executing case steps needs: the runtime, reports, backoff, and the stop signal."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, select

from reclaim.config import Settings
from reclaim.domain.policy import Policy
from reclaim.store.engine import begin_write
from reclaim.store.facts import app_ids_by_policy
from reclaim.store.tables import policies as policies_table
from reclaim.workflows.asker import Asker
from reclaim.workflows.directory import DirectoryFactory
from reclaim.workflows.gate import WriteGate

MAX_FAILURES = 8  # transient failures in a row before a step gives up
BACKOFF_BASE = 60  # seconds; doubles with each failure
BACKOFF_MAX = 6 * 3600
REFUSED_WAIT = 15 * 60  # paused, dry-run, cap used up: look again later
MANUAL_RECHECK = 24 * 3600  # a manual task: re-read the member list daily
SYNC_WAIT = 15 * 60
SYNC_DEADLINE = 24 * 3600  # on-prem: Entra ID must show the removal within this

Tx = Callable[[], AbstractContextManager[Connection]]


def backoff(
    failures: int, retry_after: float | None = None, *, rng: random.Random | None = None
) -> int:
    """Seconds to wait after ``failures`` failures in a row: exponential with ±10 %
    jitter (so workers do not retry in lockstep), never less than the peer's hint."""
    base = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, failures - 1))
    jitter = (rng or random).uniform(0.9, 1.1)
    return int(max(base * jitter, retry_after or 0))


class StopSignal(Exception):
    """A step hit ``StopRun``: nothing more can succeed in this pass.

    ``reports`` holds what the case did before it stopped.
    """

    def __init__(self, detail: str, reports: list[StepReport]) -> None:
        super().__init__(detail)
        self.reports = reports


@dataclass
class StepReport:
    """What happened to one case in one step."""

    case_id: int
    policy: str
    user: str
    step: str
    result: str  # asked, reminded, removed, queued, cancelled, retry, failed, refused, …
    detail: str = ""


@dataclass
class Runtime:
    """Everything the executors need, built once per worker or run."""

    engine: Engine
    settings: Settings
    directories: DirectoryFactory
    asker: Asker
    gate: WriteGate
    clock: Callable[[], dt.datetime]
    owner: str
    tx: Tx | None = None  # default: one engine transaction per call
    _policies: dict[str, Policy] = field(default_factory=dict)
    _apps: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def reconfigure(self, settings: Settings, *, gate: WriteGate, asker: Asker) -> None:
        """Use reloaded settings from the next step on (policies and apps re-read)."""
        self.settings, self.gate, self.asker = settings, gate, asker
        self._policies.clear()
        self._apps.clear()

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction (a savepoint on one connection in a dry run).

        On SQLite it takes the write lock at BEGIN (:func:`begin_write`): most step
        transactions read, then write, and with several cases running at once a
        deferred one would fail at once instead of waiting its turn.
        """
        return self.tx() if self.tx is not None else begin_write(self.engine)

    def read(self) -> AbstractContextManager[Connection]:
        """A transaction that only reads: on SQLite it queues behind no writer (WAL), so
        the cases running at once hold the write lock only when they write."""
        return self.tx() if self.tx is not None else self.engine.begin()

    def now(self) -> dt.datetime:
        """The current time, to the second (the store keeps seconds)."""
        return self.clock().replace(microsecond=0)

    def policy(self, conn: Connection, name: str) -> Policy:
        """The configured policy, or the stored copy of a removed one (disabled)."""
        if not self._policies:
            self._policies = {p.name: p for p in self.settings.policies}
        found = self._policies.get(name)
        if found is None:
            text = conn.execute(
                select(policies_table.c.definition).where(policies_table.c.name == name)
            ).scalar_one()
            found = Policy.model_validate_json(text).model_copy(update={"enabled": False})
            self._policies[name] = found
        return found

    def app_ids(self, conn: Connection, policy: Policy) -> tuple[int, ...]:
        """The stored app ids of a policy (cached: apps only ever get added)."""
        found = self._apps.get(policy.name)
        if not found:
            found = self._apps[policy.name] = app_ids_by_policy(conn, [policy])[policy.name]
        return found
