"""Claiming due cases for a worker, and authorizing the steps a plan allows.

Claiming: PostgreSQL takes due rows with ``FOR UPDATE SKIP LOCKED`` so workers on
several machines never wait on, or take, each other's rows; SQLite has a single
writer, so one ``UPDATE … WHERE id IN (SELECT …) RETURNING`` is atomic as it is. A
lease that runs out (a crashed worker) makes the case claimable again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, or_, select, update

from reclaim.store.tables import cases


def claim_due(
    conn: Connection,
    *,
    owner: str,
    now: int,
    lease_seconds: int,
    limit: int,
    policy_ids: Sequence[int] | None = None,
) -> list[int]:
    """Lease up to ``limit`` due cases to ``owner``; returns their ids.

    Due: ``next_due_at <= now`` and no live lease. Call in its own short transaction.
    """
    due = _due(now)
    if policy_ids is not None:
        due = and_(due, cases.c.policy_id.in_(list(policy_ids)))
    pick = select(cases.c.id).where(due).order_by(cases.c.next_due_at, cases.c.id).limit(limit)
    leased = _lease(conn, pick, owner=owner, until=now + lease_seconds)
    return sorted(case_id for case_id, _policy in leased)


def _due(now: int) -> ColumnElement[bool]:
    """Due now and not leased (or the lease ran out)."""
    return and_(
        cases.c.next_due_at <= now,
        or_(cases.c.lease_until.is_(None), cases.c.lease_until < now),
    )


def _lease(conn: Connection, pick: Select[Any], *, owner: str, until: int) -> list[tuple[int, int]]:
    """Lease the cases ``pick`` selects (skipping rows other workers hold, on
    PostgreSQL); returns (case id, policy id) pairs."""
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    result = conn.execute(
        update(cases)
        .where(cases.c.id.in_(pick.scalar_subquery()))
        .values(lease_owner=owner, lease_until=until)
        .returning(cases.c.id, cases.c.policy_id)
    )
    return [(int(r[0]), int(r[1])) for r in result]


REMOVAL_STATES = ("candidate", "answered_release", "removal_pending")


def claim_removals(
    conn: Connection,
    *,
    owner: str,
    now: int,
    lease_seconds: int,
    limit: int,
    policy_ids: Sequence[int],
) -> list[tuple[int, int]]:
    """Lease up to ``limit`` due cases whose next step is most likely a first removal
    attempt: authorized to remove, nothing sent yet. Returns (case id, policy id) pairs.

    A cheap pre-selection for grouping removals (``services.group_removal``): the
    grouped step re-checks each case with the domain and hands any other to the
    per-case path.
    """
    if not policy_ids:
        return []
    due = and_(
        _due(now),
        cases.c.policy_id.in_(list(policy_ids)),
        cases.c.state.in_(REMOVAL_STATES),
        cases.c.attempts == 0,
        cases.c.authorized_key == cases.c.remove_key,
    )
    pick = (
        select(cases.c.id)
        .where(due)
        .order_by(cases.c.policy_id, cases.c.next_due_at, cases.c.id)
        .limit(limit)
    )
    return sorted(_lease(conn, pick, owner=owner, until=now + lease_seconds))


def release(conn: Connection, ids: Sequence[int], *, owner: str) -> None:
    """Give back leases this owner still holds (graceful stop, or work not done)."""
    for i in range(0, len(ids), 900):
        conn.execute(
            update(cases)
            .where(cases.c.id.in_(list(ids[i : i + 900])), cases.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


def authorize(
    conn: Connection, case_ids: Sequence[int], *, key_of: dict[int, str], plan_id: int, now: int
) -> None:
    """Let a plan's items go ahead: the case may perform the side effect with this key."""
    for cid in case_ids:
        conn.execute(
            update(cases)
            .where(cases.c.id == cid, cases.c.is_open.is_(True))
            .values(
                authorized_key=key_of[cid],
                plan_id=plan_id,
                next_due_at=now,
                version=cases.c.version + 1,
            )
        )


def wake_removals(conn: Connection, keys: Sequence[str], *, plan_id: int, now: int) -> int:
    """Authorize the open cases whose removal key is among ``keys`` (an approval)."""
    woken = 0
    for i in range(0, len(keys), 900):
        result = conn.execute(
            update(cases)
            .where(cases.c.remove_key.in_(list(keys[i : i + 900])), cases.c.is_open.is_(True))
            .values(
                authorized_key=cases.c.remove_key,
                plan_id=plan_id,
                next_due_at=now,
                version=cases.c.version + 1,
            )
        )
        woken += result.rowcount
    return woken
