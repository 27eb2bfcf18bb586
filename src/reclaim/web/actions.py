"""What operators do from the API and the pages, each with its audit entry.

Thin layers over ``reclaim.services``: answer for an employee, restore a case, pause
and resume, preview, approve and reject plans. Where the service lets us, the audit
entry is written in the same transaction as the change (answers, pause/resume); the
plan and restore services commit on their own, so their entry follows at once in
the next transaction, as the usage upload's does.

Errors the caller can act on become :class:`ActionError` with an HTTP status.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from reclaim.config import Settings
from reclaim.domain import case as dc
from reclaim.domain.policy import Policy
from reclaim.services import cases as case_service
from reclaim.services.plans import PlanError, Preview, approve_plan, preview, reject_plan
from reclaim.store import cases as store
from reclaim.store.leases import PAUSED, get_control, set_control
from reclaim.store.plans import StoredPlan
from reclaim.web import audit
from reclaim.web.audit import Actor
from reclaim.workflows.directory import DirectoryFactory


class ActionError(Exception):
    """The action cannot be done; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _not_found_or_conflict(exc: Exception) -> ActionError:
    text = str(exc)
    return ActionError(404 if text.startswith("no ") else 409, text)


def answer_for(
    engine: Engine,
    settings: Settings,
    case_id: int,
    *,
    keep: bool,
    reason: str | None,
    actor: Actor,
    now: dt.datetime,
) -> store.StoredCase:
    """Record an employee's answer on their behalf: the history names ``actor`` as who
    recorded it, and the audit entry is committed with the change."""
    note = f"{reason} (recorded by {actor.name})" if reason else f"recorded by {actor.name}"
    choice = "keep" if keep else "release"

    def move(s: store.StoredCase) -> dc.Case:
        return dc.record_answer(s.case, at=now, keep=keep, reason=note)

    def record(conn: Connection, saved: store.StoredCase) -> None:
        audit.record(
            conn,
            actor,
            "case.answer",
            now=int(now.timestamp()),
            target=f"case:{case_id}",
            detail={"choice": choice, "on_behalf_of": saved.case.user, "reason": reason or ""},
        )

    try:
        # The service's own retry loop on version conflicts, with our audit entry
        # written inside the transaction that saves the answer.
        return case_service._change(engine, settings, case_id, move, now=now, after=record)
    except case_service.CaseActionError as exc:
        raise _not_found_or_conflict(exc) from None


class RestoreUnavailable(Exception):
    """``reclaim.services.restore`` is not part of this build."""


def restore(
    engine: Engine,
    settings: Settings,
    case_id: int,
    *,
    reason: str,
    actor: Actor,
    now: dt.datetime,
    directories: DirectoryFactory | None = None,
) -> Any:
    """Give a reclaimed license back through the restore service, then audit it.

    ``directories`` None: the installation's own (``default_directories``)."""
    try:
        from reclaim.services import restore as restore_service
    except ImportError:  # pragma: no cover - the service ships with this version
        raise RestoreUnavailable from None
    try:
        result = restore_service.restore_case(
            engine,
            settings,
            case_id,
            now=now,
            by=actor.name,
            reason=reason,
            directories=directories,
        )
    except case_service.CaseActionError as exc:
        raise _not_found_or_conflict(exc) from None
    with engine.begin() as conn:
        audit.record(
            conn,
            actor,
            "case.restore",
            now=int(now.timestamp()),
            target=f"case:{case_id}",
            detail={"reason": reason, "result": result.result},
        )
    return result


def control_state(conn: Connection, settings: Settings) -> dict[str, Any]:
    """The kill switch as every process sees it."""
    found = get_control(conn, PAUSED)
    in_store = found is not None and found[0] == "1"
    return {
        "paused": in_store or settings.safety.paused,
        "paused_in_store": in_store,
        "paused_in_config": settings.safety.paused,
        "updated_at": None
        if found is None
        else dt.datetime.fromtimestamp(found[1], dt.UTC).isoformat().replace("+00:00", "Z"),
        "updated_by": None if found is None else found[2],
    }


def set_paused(
    engine: Engine,
    settings: Settings,
    *,
    paused: bool,
    reason: str | None,
    actor: Actor,
    now: dt.datetime,
) -> dict[str, Any]:
    """Turn the kill switch on or off (the same switch as ``reclaim pause``/``resume``)."""
    who = actor.name + (f": {reason}" if reason else "")
    now_s = int(now.timestamp())
    with engine.begin() as conn:
        set_control(conn, PAUSED, "1" if paused else "0", by=who, now=now_s)
        audit.record(
            conn,
            actor,
            "control.pause" if paused else "control.resume",
            now=now_s,
            target="kill-switch",
            detail={"reason": reason or ""},
        )
        return control_state(conn, settings)


def make_plan(
    engine: Engine,
    settings: Settings,
    *,
    policies: Sequence[Policy],
    actor: Actor,
    now: dt.datetime,
) -> Preview:
    """Preview the next run of ``policies`` and store it as a plan."""
    made = preview(engine, settings=settings, policies=policies, now=now)
    with engine.begin() as conn:
        audit.record(
            conn,
            actor,
            "plan.create",
            now=int(now.timestamp()),
            target=f"plan:{made.plan_id}",
            detail={"policies": [p.name for p in policies], "status": made.status},
        )
    return made


def decide_plan(
    engine: Engine,
    plan_id: int,
    *,
    approve: bool,
    note: str | None,
    actor: Actor,
    now: dt.datetime,
) -> tuple[StoredPlan, int]:
    """Approve or reject a plan; returns it and how many waiting removals it released."""
    try:
        if approve:
            stored, woken = approve_plan(engine, plan_id, by=actor.name, now=now, note=note)
        else:
            stored, woken = reject_plan(engine, plan_id, by=actor.name, now=now, note=note), 0
    except PlanError as exc:
        raise _not_found_or_conflict(exc) from None
    with engine.begin() as conn:
        audit.record(
            conn,
            actor,
            "plan.approve" if approve else "plan.reject",
            now=int(now.timestamp()),
            target=f"plan:{plan_id}",
            detail={"note": note or "", **({"removals_released": woken} if approve else {})},
        )
    return stored, woken
