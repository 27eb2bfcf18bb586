"""The ``manual`` workflow: for license groups Reclaim cannot write to.

A removal becomes a task for an admin (``reclaim tasks``, CSV export); the case waits
in ``removal_pending`` until the admin marks the task done (``reclaim tasks done``),
or until the group's next member list (``reclaim members import``) shows the person
gone. Membership is the list last imported for the policy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.connectors.errors import NotFound
from reclaim.domain.names import user_key
from reclaim.domain.policy import Policy
from reclaim.store.tables import cases, manual_tasks, memberships, policies, users
from reclaim.workflows.directory import RemoveOutcome


class ManualDirectory:
    """A :class:`~reclaim.workflows.directory.DirectoryPort` backed by Reclaim's store."""

    name = "manual"

    def __init__(self, engine: Engine, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.engine = engine
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def is_member(self, *, policy: Policy, user: str) -> bool:
        """Whether the last imported member list has ``user`` in the policy's group."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(memberships.c.active)
                .join(users, users.c.id == memberships.c.user_id)
                .join(policies, policies.c.id == memberships.c.policy_id)
                .where(policies.c.name == policy.name, users.c.upn == user_key(user))
            ).scalar()
        return bool(found)

    def remove_member(self, *, policy: Policy, user: str, idempotency_key: str) -> RemoveOutcome:
        """Create the admin's task (once per key); the removal is then QUEUED."""
        self._task(policy, idempotency_key, action="remove")
        return RemoveOutcome.QUEUED

    def add_member(self, *, policy: Policy, user: str, idempotency_key: str) -> None:
        """Create a task to add the person back (restores)."""
        self._task(policy, idempotency_key, action="add")

    def _task(self, policy: Policy, key: str, *, action: str) -> None:
        with self.engine.begin() as conn:
            case_id = conn.execute(select(cases.c.id).where(cases.c.remove_key == key)).scalar()
            if case_id is None:
                raise NotFound(f"no case has the idempotency key {key}")
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(
                dialect.insert(manual_tasks)
                .values(
                    idempotency_key=key,
                    case_id=case_id,
                    action=action,
                    group_label=policy.group.label(),
                    created_at=int(self.clock().timestamp()),
                    status="open",
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )


@dataclass(frozen=True, slots=True)
class Task:
    """One task on the admin's list."""

    id: int
    case_id: int
    policy: str
    user: str
    action: str
    group: str
    created_at: int
    status: str
    done_at: int | None
    done_by: str | None
    note: str | None
    idempotency_key: str


def list_tasks(
    conn: Connection, *, status: str | None = "open", policy: str | None = None
) -> list[Task]:
    """Tasks, oldest first; ``status=None`` lists all."""
    query = (
        select(
            manual_tasks.c.id,
            manual_tasks.c.case_id,
            policies.c.name.label("policy"),
            users.c.upn.label("user"),
            manual_tasks.c.action,
            manual_tasks.c.group_label.label("group"),
            manual_tasks.c.created_at,
            manual_tasks.c.status,
            manual_tasks.c.done_at,
            manual_tasks.c.done_by,
            manual_tasks.c.note,
            manual_tasks.c.idempotency_key,
        )
        .join(cases, cases.c.id == manual_tasks.c.case_id)
        .join(policies, policies.c.id == cases.c.policy_id)
        .join(users, users.c.id == cases.c.user_id)
        .order_by(manual_tasks.c.id)
    )
    if status is not None:
        query = query.where(manual_tasks.c.status == status)
    if policy is not None:
        query = query.where(policies.c.name == policy)
    return [Task(**r._asdict()) for r in conn.execute(query)]


def close_tasks(
    conn: Connection, keys: Sequence[str], *, status: str, by: str, note: str | None, now: int
) -> int:
    """Close the open tasks with these keys; returns how many were open."""
    closed = 0
    for key in keys:
        result = conn.execute(
            update(manual_tasks)
            .where(manual_tasks.c.idempotency_key == key, manual_tasks.c.status == "open")
            .values(status=status, done_at=now, done_by=by, note=note)
        )
        closed += result.rowcount
    return closed
