"""The directory port: what a reclamation workflow needs from a directory, nothing more.

Each workflow (Entra ID, on-prem AD, manual) implements :class:`DirectoryPort` and
raises only the connector errors of :mod:`reclaim.connectors.errors` (``Transient``,
``NotFound``, ``AlreadyDone``, ``Rejected``, ``StopRun``). Writes are never called
directly: they go through :class:`reclaim.workflows.gate.WriteGate`, which records
them, honours dry-run and the kill switch, and makes retries safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from reclaim.connectors.errors import ConnectorError, StopRun
from reclaim.domain.policy import Policy, Workflow
from reclaim.store.leases import paused_in_store

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from reclaim.config import SafetySettings, Settings
    from reclaim.connectors.graph.budget import RateBudget


class RemoveOutcome(StrEnum):
    """What a removal request achieved."""

    REMOVED = "removed"  # the member is out of the license group
    AWAITING_SYNC = "awaiting_sync"  # removed in on-prem AD; Entra ID shows it after sync
    QUEUED = "queued"  # handed to a person (manual workflow); done when they say so


@runtime_checkable
class DirectoryPort(Protocol):
    """Membership of a policy's license group, for one workflow.

    ``user`` is the UPN as Reclaim keys it (lower-case). ``idempotency_key`` is the
    same on every retry of one side effect: an implementation that can pass it on
    (a request id, a task key) does, so a retried request never acts twice.
    """

    name: str

    def is_member(self, *, policy: Policy, user: str) -> bool:
        """Whether ``user`` is a member of the policy's group right now."""
        ...

    def remove_member(self, *, policy: Policy, user: str, idempotency_key: str) -> RemoveOutcome:
        """Remove ``user`` from the policy's group (``AlreadyDone`` if not a member)."""
        ...

    def add_member(self, *, policy: Policy, user: str, idempotency_key: str) -> None:
        """Put ``user`` back into the policy's group (restores; ``AlreadyDone`` if there)."""
        ...


DirectoryFactory = Callable[[Policy], DirectoryPort]


@dataclass(frozen=True, slots=True)
class BatchRemoval:
    """One user's part in a grouped removal: the directory's answer (an outcome, or the
    connector error it ended in) and the steps taken for them, for the case history."""

    answer: RemoveOutcome | ConnectorError
    steps: list[dict[str, Any]]


@runtime_checkable
class BatchRemover(Protocol):
    """A port that can remove many members of one policy's group in one go (Graph's
    ``$batch``). The grouped removal step (``services.group_removal``) uses it; cases it
    cannot take go the per-case way. Users are keyed as Reclaim keys them."""

    def prepare_batch(self, *, policy: Policy, users: Sequence[str]) -> dict[str, ConnectorError]:
        """Look up what removing ``users`` needs (ids, the group); returns the users that
        cannot go in a batch, with why. Raises when none can (e.g. an unwritable group)."""
        ...

    def remove_batch(
        self,
        *,
        policy: Policy,
        users: Sequence[str],
        keys: Mapping[str, str],
        allowed: Callable[[], bool],
    ) -> dict[str, BatchRemoval]:
        """Remove prepared ``users`` (``keys``: user → the write's idempotency key, for
        directories that can use it): user → answer and steps. A directory that sends
        the removals one by one asks ``allowed()`` (the kill switch) before each and
        answers ``WriteRefused`` for the rest once it says no. Raises only when the
        whole batch could not be sent (e.g. ``StopRun``)."""
        ...


PAUSE_CACHE_SECONDS = 1.5  # how long a read of the store's kill switch is trusted


class StoreKillSwitch:
    """``writes_allowed`` for the connectors: False while ``safety.paused`` is set or
    ``reclaim pause`` is in force in the store.

    The connectors ask before *every* write; a store read per write would double the
    round trips of a bulk removal, so the store's answer is kept for
    :data:`PAUSE_CACHE_SECONDS`. (The write gate reads the store itself, uncached,
    right before it hands a write to the port; this is the second, inner check.)
    """

    def __init__(
        self,
        engine: Engine,
        safety: SafetySettings,
        *,
        ttl: float = PAUSE_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.safety = safety
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._paused = False
        self._read_at: float | None = None

    def __call__(self) -> bool:
        """Whether a write may be sent now."""
        if self.safety.paused:
            return False
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.ttl:
                with self.engine.connect() as conn:
                    self._paused = paused_in_store(conn)
                self._read_at = now
            return not self._paused


class Directories:
    """The :data:`DirectoryFactory` of a run or worker: one port per workflow.

    ``manual`` works from Reclaim's own store. The Entra ID and on-prem AD adapters
    (one shared Graph client, one LDAP connector) are built on first use, so a config
    without ``entra:`` or ``ldap:`` fails only when a policy of that workflow runs, and
    then as a :class:`StopRun` that says what is missing: the run stops, nothing is
    written, the admin reads why. Every step an adapter records goes to
    :func:`reclaim.workflows.step_log.emit`, which files it under the case being run.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        dry_run: bool = False,
        on_step: Callable[[Any], None] | None = None,
        writes_allowed: Callable[[], bool] | None = None,
        builders: Mapping[Workflow, Builder] | None = None,
    ) -> None:
        from reclaim.workflows.manual import ManualDirectory
        from reclaim.workflows.step_log import emit

        if dry_run and not settings.safety.dry_run:
            safety = settings.safety.model_copy(update={"dry_run": True})
            settings = settings.model_copy(update={"safety": safety})
        self.engine = engine
        self.settings = settings
        self.on_step: Callable[[Any], None] = emit if on_step is None else _both(emit, on_step)
        self.writes_allowed = writes_allowed or StoreKillSwitch(engine, settings.safety)
        self.manual = ManualDirectory(engine)
        self._builders: dict[Workflow, Builder] = {
            Workflow.ENTRA_ID: _build_entra,
            Workflow.ONPREM_AD: _build_onprem,
            **(builders or {}),
        }
        self._built: dict[Workflow, DirectoryFactory] = {}
        self._broken: dict[Workflow, str] = {}
        self._lock = threading.Lock()

    def __call__(self, policy: Policy) -> DirectoryPort:
        """The port for the policy's workflow; StopRun when it cannot be built."""
        if policy.workflow is Workflow.MANUAL:
            return self.manual
        return self._factory(policy.workflow)(policy)

    def _factory(self, workflow: Workflow) -> DirectoryFactory:
        with self._lock:
            found = self._built.get(workflow)
            if found is not None:
                return found
            if workflow in self._broken:
                raise StopRun(self._broken[workflow])
            builder = self._builders.get(workflow)
            try:
                if builder is None:
                    raise ValueError("no directory connector in this version")
                found = builder(self)
            except StopRun as exc:
                self._broken[workflow] = f"the {workflow.value} workflow cannot start: {exc.detail}"
                raise StopRun(self._broken[workflow]) from None
            except Exception as exc:  # config or secret problems: say so, stop the run
                self._broken[workflow] = f"the {workflow.value} workflow cannot start: {exc}"
                raise StopRun(self._broken[workflow]) from None
            self._built[workflow] = found
            return found

    def new_run(self) -> None:
        """Forget what adapters cache for a run (users, groups): a new pass re-reads."""
        with self._lock:
            built = list(self._built.values())
        for factory in built:
            for port in _ports(factory):
                reset = getattr(port, "new_run", None)
                if callable(reset):
                    reset()

    def close(self) -> None:
        """Close the connectors' connections (built ones only)."""
        with self._lock:
            built, self._built = list(self._built.values()), {}
        for factory in built:
            closer = getattr(factory, "close", None)
            if callable(closer):
                closer()


Builder = Callable[[Directories], DirectoryFactory]


def _both(first: Callable[[Any], None], second: Callable[[Any], None]) -> Callable[[Any], None]:
    def both(step: Any) -> None:
        first(step)
        second(step)

    return both


def _ports(factory: DirectoryFactory) -> list[object]:
    directory = getattr(factory, "directory", None)
    return [directory] if directory is not None else []


def graph_budget(engine: Engine, settings: Settings) -> RateBudget:
    """How the Graph clients of this process pace themselves (``entra:`` required).

    On PostgreSQL — where several workers, on several machines, share one app
    registration — a :class:`~reclaim.store.shared_budget.SharedBudget` in the store,
    named for the tenant and app, so that all of them *together* stay under Graph's
    limits. On SQLite (one machine, normally one process) the in-process buckets: a
    booking per Graph request would queue behind SQLite's single write lock.
    """
    from reclaim.connectors.graph.budget import BudgetLimits, TokenBucketBudget
    from reclaim.store.shared_budget import SharedBudget

    entra = settings.entra
    if entra is None:
        raise ValueError("the Graph budget needs an entra: section in the config")
    limits = BudgetLimits.for_tenant(entra.tenant_size, scale=entra.rate_limit_scale)
    if engine.dialect.name == "postgresql":
        return SharedBudget(engine, f"graph:{entra.tenant_id}:{entra.client_id}", limits)
    return TokenBucketBudget(limits)


def _build_entra(d: Directories) -> DirectoryFactory:
    from reclaim.connectors.graph import GraphClient, settings_from_config
    from reclaim.workflows.entra_id import entra_directory_factory

    entra = d.settings.entra
    if entra is None:
        raise ValueError("the entra_id workflow needs an entra: section in the config")
    client = GraphClient(
        settings_from_config(entra),
        writes_allowed=d.writes_allowed,
        dry_run=d.settings.safety.dry_run,
        budget=graph_budget(d.engine, d.settings),
    )
    return entra_directory_factory(
        d.settings, writes_allowed=d.writes_allowed, on_step=d.on_step, client=client
    )


def _build_onprem(d: Directories) -> DirectoryFactory:
    from reclaim.workflows.onprem_ad import build_directory

    if d.settings.ldap is None:  # checked here so the failure names the workflow
        raise ValueError("it needs an ldap: section in the config")
    budget = None if d.settings.entra is None else graph_budget(d.engine, d.settings)
    port = build_directory(
        d.settings, writes_allowed=d.writes_allowed, on_step=d.on_step, budget=budget
    )
    return _Shared(port)


class _Shared:
    """A factory answering every policy with one port (and closing its connectors)."""

    def __init__(self, directory: DirectoryPort) -> None:
        self.directory = directory

    def __call__(self, policy: Policy) -> DirectoryPort:
        return self.directory

    def close(self) -> None:
        for conn in (getattr(self.directory, "ldap", None), getattr(self.directory, "graph", None)):
            closer = getattr(conn, "close", None)
            if callable(closer):
                closer()


def default_directories(
    engine: Engine,
    settings: Settings,
    *,
    dry_run: bool = False,
    on_step: Callable[[Any], None] | None = None,
) -> Directories:
    """The directory for each policy's workflow: manual, entra_id or onprem_ad.

    See :class:`Directories`. ``dry_run`` makes the connectors refuse every write
    before anything is sent (as ``safety.dry_run`` does); the write gate refuses
    first anyway. Connectors read the kill switch (``safety.paused`` and
    ``reclaim pause``) before every write. Every step an adapter records is filed in
    the case history (:func:`reclaim.workflows.step_log.emit`) and, when given, also
    passed to ``on_step`` (an observer: metrics, tests).
    """
    return Directories(engine, settings, dry_run=dry_run, on_step=on_step)
