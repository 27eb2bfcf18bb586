"""Storing plans (previews and runs), their approval, and approved removal keys."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.domain.plan import Plan
from reclaim.store.tables import approved_keys, plans


class PlanStatus:
    """Plan statuses (plain strings in the store)."""

    PROPOSED = "proposed"  # a preview nobody needs to approve
    AWAITING_APPROVAL = "awaiting_approval"  # removals wait for an approval
    APPLIED = "applied"  # a run that needed no approval
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """A plan as stored, with its review."""

    id: int
    kind: str  # preview | run
    status: str
    created_at: int
    content: dict[str, Any]
    decided_by: str | None
    decided_at: int | None
    note: str | None

    @property
    def plan(self) -> Plan:
        """The domain plan (refuses content that no longer matches its hash)."""
        return Plan.from_dict(self.content)


def save_plan(conn: Connection, plan: Plan, *, kind: str, status: str) -> int:
    """Store a plan; returns its id."""
    content = plan.to_dict()
    result = conn.execute(
        insert(plans).values(
            kind=kind,
            policies=",".join(p.policy for p in plan.policies),
            as_of=(plan.as_of - dt.date(1970, 1, 1)).days,
            created_at=int(plan.created_at.timestamp()),
            content=json.dumps(content, sort_keys=True),
            content_hash=content["content_hash"],
            status=status,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _build(row: Any) -> StoredPlan:
    return StoredPlan(
        id=int(row.id),
        kind=row.kind,
        status=row.status,
        created_at=int(row.created_at),
        content=json.loads(row.content),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        note=row.note,
    )


def load_plan(conn: Connection, plan_id: int) -> StoredPlan | None:
    """A stored plan by id, or None."""
    row = conn.execute(select(plans).where(plans.c.id == plan_id)).first()
    return None if row is None else _build(row)


def list_plans(conn: Connection, *, limit: int = 20) -> list[StoredPlan]:
    """The newest plans first."""
    rows = conn.execute(select(plans).order_by(plans.c.id.desc()).limit(limit)).all()
    return [_build(r) for r in rows]


def decide(
    conn: Connection, plan_id: int, *, status: str, by: str, at: int, note: str | None
) -> None:
    """Record an approval or a rejection."""
    conn.execute(
        update(plans)
        .where(plans.c.id == plan_id)
        .values(status=status, decided_by=by, decided_at=at, note=note)
    )


def approve_keys(conn: Connection, keys: list[str], *, plan_id: int, now: int) -> None:
    """Record removal keys an admin approved (a key approved twice keeps its first plan)."""
    if not keys:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(approved_keys).on_conflict_do_nothing(index_elements=["idempotency_key"]),
        [{"idempotency_key": k, "plan_id": plan_id, "approved_at": now} for k in keys],
    )


def approved(conn: Connection, keys: list[str]) -> set[str]:
    """Which of ``keys`` an admin approved."""
    found: set[str] = set()
    for i in range(0, len(keys), 900):
        found.update(
            str(k)
            for (k,) in conn.execute(
                select(approved_keys.c.idempotency_key).where(
                    approved_keys.c.idempotency_key.in_(keys[i : i + 900])
                )
            )
        )
    return found


def lock_plan(conn: Connection, plan_id: int) -> None:
    """Hold the plan's row until the transaction ends (PostgreSQL ``FOR UPDATE``), so
    that two workers — or two threads of one — counting the removals sent under the
    plan's cap, then recording one more, take turns. SQLite needs no lock here: its
    writers already take turns (``BEGIN IMMEDIATE``)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(plans.c.id).where(plans.c.id == plan_id).with_for_update())


def plan_cap(conn: Connection, plan_id: int, policy: str) -> int | None:
    """The removal cap a plan set for ``policy``, or None if the plan has no such policy."""
    content = conn.execute(select(plans.c.content).where(plans.c.id == plan_id)).scalar()
    if content is None:
        return None
    for part in json.loads(content).get("policies", []):
        if part.get("policy") == policy:
            return int(part["cap"])
    return None
