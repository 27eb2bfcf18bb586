"""The directory port: what a reclamation workflow needs from a directory, nothing more.

Each workflow (Entra ID, on-prem AD, manual) implements :class:`DirectoryPort` and
raises only the connector errors of :mod:`reclaim.connectors.errors` (``Transient``,
``NotFound``, ``AlreadyDone``, ``Rejected``, ``StopRun``). Writes are never called
directly: they go through :class:`reclaim.workflows.gate.WriteGate`, which records
them, honours dry-run and the kill switch, and makes retries safe.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol, runtime_checkable

from reclaim.connectors.errors import StopRun
from reclaim.domain.policy import Policy, Workflow


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


class Unavailable:
    """A workflow whose connector is not wired yet: membership comes from Reclaim's
    member lists, and every write stops the run, saying why.

    The Entra ID and on-prem AD workflows plug their connectors into
    :class:`DirectoryPort`; until a policy's workflow has one, its people can be asked
    (answers are recorded) and its removals wait.
    """

    def __init__(self, workflow: Workflow, members: DirectoryPort) -> None:
        self.name = workflow.value
        self._members = members
        self._why = (
            f"the {workflow.value} workflow has no directory connector in this version; "
            "its removals wait (use workflow: manual to work from a task list)"
        )

    def is_member(self, *, policy: Policy, user: str) -> bool:
        """Membership as the last member list imported for the policy says."""
        return self._members.is_member(policy=policy, user=user)

    def remove_member(self, *, policy: Policy, user: str, idempotency_key: str) -> RemoveOutcome:
        """Always stops the run: no connector to write with."""
        raise StopRun(self._why)

    def add_member(self, *, policy: Policy, user: str, idempotency_key: str) -> None:
        """Always stops the run: no connector to write with."""
        raise StopRun(self._why)


def default_directories(engine: object) -> DirectoryFactory:
    """The directory for each policy's workflow in this version.

    ``manual`` works from Reclaim's own store. The Entra ID and on-prem AD workflows
    register their connectors here as they land; until then their policies' removals
    wait, and say why.
    """
    from reclaim.workflows.manual import ManualDirectory

    manual = ManualDirectory(engine)  # type: ignore[arg-type]
    waiting: dict[Workflow, Unavailable] = {}

    def pick(policy: Policy) -> DirectoryPort:
        if policy.workflow is Workflow.MANUAL:
            return manual
        return waiting.setdefault(policy.workflow, Unavailable(policy.workflow, manual))

    return pick
