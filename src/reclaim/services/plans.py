"""Plans: preview what the next run would do, approve or reject it, show it.

A preview evaluates the verdicts now and plans every policy (or one) exactly as a cycle
would, without opening a case or sending anything; the plan is stored so that it can
be approved by id. Approving records the plan's planned removal keys: for policies
with ``require_approval``, those removals then go ahead (the cases waiting for them
become due at once; cases not opened yet are allowed when their cycle opens them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from reclaim.config import Settings
from reclaim.domain.case import Action
from reclaim.domain.plan import ItemStatus, Plan, approve, build_plan
from reclaim.domain.policy import Policy
from reclaim.services.cycle import paused, preview_policy
from reclaim.services.decisions import PolicyVerdicts, evaluate
from reclaim.store.case_claims import wake_removals
from reclaim.store.plans import (
    PlanStatus,
    StoredPlan,
    approve_keys,
    decide,
    list_plans,
    load_plan,
    save_plan,
)

MAX_APPROVAL_AGE = dt.timedelta(days=7)  # an older plan no longer describes the data


class PlanError(ValueError):
    """A plan cannot be approved or rejected; the message says why."""


@dataclass(frozen=True, slots=True)
class Preview:
    """A stored preview and the verdicts it was built from."""

    plan_id: int
    plan: Plan
    status: str
    verdicts: list[PolicyVerdicts]


def preview(
    engine: Engine, *, settings: Settings, policies: Sequence[Policy], now: dt.datetime
) -> Preview:
    """Plan the next run of ``policies`` now, store the plan, change nothing else."""
    verdicts = evaluate(
        engine,
        policies,
        as_of=now.date(),
        now=now,
        freshness_days=settings.usage.freshness_days,
        configured=settings.policies,
    )
    with engine.begin() as conn:
        inputs = [
            preview_policy(conn, pv=pv, policy_id=pv.policy_id, now=now, safety=settings.safety)[0]
            for pv in verdicts
        ]
        plan = build_plan(
            inputs=inputs, as_of=now.date(), created_at=now, paused=paused(conn, settings)
        )
        status = PlanStatus.AWAITING_APPROVAL if _waits(plan) else PlanStatus.PROPOSED
        plan_id = save_plan(conn, plan, kind="preview", status=status)
    return Preview(plan_id, plan, status, verdicts)


def _waits(plan: Plan) -> bool:
    """True when some policy requiring approval has removals planned."""
    return any(
        p.require_approval
        and any(
            i.action is Action.REMOVE
            and i.status in (ItemStatus.PLANNED, ItemStatus.BLOCKED_PAUSED)
            for i in p.items
        )
        for p in plan.policies
    )


def _removal_keys(plan: Plan, *, approval_only: bool) -> list[str]:
    return [
        i.idempotency_key
        for p in plan.policies
        if p.require_approval or not approval_only
        for i in p.items
        if i.action is Action.REMOVE and i.status in (ItemStatus.PLANNED, ItemStatus.BLOCKED_PAUSED)
    ]


def approve_plan(
    engine: Engine, plan_id: int, *, by: str, now: dt.datetime, note: str | None = None
) -> tuple[StoredPlan, int]:
    """Approve a plan; returns it and how many waiting removals became due now."""
    with engine.begin() as conn:
        stored = load_plan(conn, plan_id)
        if stored is None:
            raise PlanError(f"no plan #{plan_id}")
        if stored.status == PlanStatus.REJECTED:
            raise PlanError(f"plan #{plan_id} was rejected by {stored.decided_by}; make a new one")
        created = dt.datetime.fromtimestamp(stored.created_at, dt.UTC)
        if now - created > MAX_APPROVAL_AGE:
            raise PlanError(
                f"plan #{plan_id} is from {created:%Y-%m-%d}, older than "
                f"{MAX_APPROVAL_AGE.days} days: run 'reclaim plan' again and approve the new one"
            )
        try:
            plan = stored.plan
            approval = approve(plan, by=by, at=now, note=note or "")
        except ValueError as exc:
            raise PlanError(f"plan #{plan_id}: {exc}") from None
        now_s = int(now.timestamp())
        approve_keys(conn, _removal_keys(plan, approval_only=False), plan_id=plan_id, now=now_s)
        woken = wake_removals(
            conn, _removal_keys(plan, approval_only=True), plan_id=plan_id, now=now_s
        )
        decide(
            conn, plan_id, status=PlanStatus.APPROVED, by=approval.approved_by, at=now_s, note=note
        )
        stored = load_plan(conn, plan_id)
        assert stored is not None
    return stored, woken


def reject_plan(
    engine: Engine, plan_id: int, *, by: str, now: dt.datetime, note: str | None = None
) -> StoredPlan:
    """Reject a plan: its removals stay waiting; the next cycle plans them again."""
    if not by.strip():
        raise PlanError("a rejection needs the reviewer's name (--by)")
    with engine.begin() as conn:
        stored = load_plan(conn, plan_id)
        if stored is None:
            raise PlanError(f"no plan #{plan_id}")
        if stored.status == PlanStatus.APPROVED:
            raise PlanError(
                f"plan #{plan_id} is already approved; pause (reclaim pause) to stop it"
            )
        decide(conn, plan_id, status=PlanStatus.REJECTED, by=by, at=int(now.timestamp()), note=note)
        found = load_plan(conn, plan_id)
        assert found is not None
    return found


def get_plan(engine: Engine, plan_id: int) -> StoredPlan:
    """A stored plan by id."""
    with engine.connect() as conn:
        stored = load_plan(conn, plan_id)
    if stored is None:
        raise PlanError(f"no plan #{plan_id}")
    return stored


def recent_plans(engine: Engine, *, limit: int = 20) -> list[StoredPlan]:
    """The newest plans first."""
    with engine.connect() as conn:
        return list_plans(conn, limit=limit)
