"""What people do to cases: answer, cancel, retry, and look at them.

Every change goes through the domain's transitions and the store's version check, so
an answer given while a worker is busy with the same case is never lost: one of the
two writes fails its version check, reloads, and decides again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from reclaim.config import Settings
from reclaim.domain import case as dc
from reclaim.domain.case import CaseState
from reclaim.services.cycle import due_at
from reclaim.store import cases as store
from reclaim.store.policies import policy_id
from reclaim.store.writes import finish_write
from reclaim.workflows.manual import close_tasks, list_tasks

RETRIES = 5  # version conflicts in a row before giving up (someone keeps changing it)


class CaseActionError(ValueError):
    """The action is not possible on this case; the message says why."""


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case with everything the CLI and web show about it."""

    stored: store.StoredCase

    def to_dict(self, *, history: bool = False) -> dict[str, Any]:
        """JSON-able form; ``history`` adds every event."""
        s, c = self.stored, self.stored.case
        out: dict[str, Any] = {
            "id": s.id,
            "policy": c.policy,
            "user": c.user,
            "cycle": c.cycle,
            "state": c.state.value,
            "status": c.status.value,
            "outcome": c.outcome.value if c.outcome else None,
            "verdict": s.verdict,
            "reason": s.reason,
            "opened_at": c.opened_at.isoformat(),
            "updated_at": c.updated_at.isoformat(),
            "next_due_at": _iso(s.next_due_at),
            "attempts": c.attempts,
            "last_error": s.last_error,
        }
        if history:
            out["history"] = [e.to_dict() for e in c.history]
        return out


def _iso(ts: int | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _change(
    engine: Engine,
    settings: Settings,
    case_id: int,
    move: Callable[[store.StoredCase], dc.Case],
    *,
    now: dt.datetime,
    after: Callable[[Any, store.StoredCase], None] | None = None,
    changes: dict[str, Any] | None = None,
) -> store.StoredCase:
    """Apply ``move`` to the current case, retrying on version conflicts."""
    policies = {p.name: p for p in settings.policies}
    for _ in range(RETRIES):
        with engine.begin() as conn:
            stored = store.load_case(conn, case_id)
            if stored is None:
                raise CaseActionError(f"no case #{case_id}")
            try:
                case = move(stored)
            except dc.CaseError as exc:
                raise CaseActionError(str(exc)) from None
            policy = policies.get(case.policy)
            due = (
                None
                if policy is None
                else due_at(case, authorized_key=stored.authorized_key, policy=policy, now=now)
            )
            try:
                saved = store.save_case(conn, stored, case, next_due_at=due, **(changes or {}))
            except store.StaleCase:
                continue
            if after is not None:
                after(conn, saved)
            return saved
    raise CaseActionError(f"case #{case_id} keeps changing; try again")


def answer(
    engine: Engine,
    settings: Settings,
    case_id: int,
    *,
    keep: bool,
    now: dt.datetime,
    reason: str | None = None,
    by: str | None = None,
) -> store.StoredCase:
    """Record an employee's answer (given by them, or by ``by`` on their behalf)."""
    note = reason
    if by:
        note = f"{reason} (recorded by {by})" if reason else f"recorded by {by}"
    return _change(
        engine,
        settings,
        case_id,
        lambda s: dc.record_answer(s.case, at=now, keep=keep, reason=note),
        now=now,
    )


def cancel_case(
    engine: Engine, settings: Settings, case_id: int, *, now: dt.datetime, by: str
) -> store.StoredCase:
    """An admin stops a case (refused once a removal was sent)."""
    return _change(
        engine,
        settings,
        case_id,
        lambda s: dc.cancel(s.case, at=now, cause=dc.CancelCause.ADMIN, detail=f"by {by}"),
        now=now,
    )


def retry_case(
    engine: Engine, settings: Settings, case_id: int, *, now: dt.datetime
) -> store.StoredCase:
    """Queue a failed removal again; the next cycle plans it (caps apply)."""
    return _change(
        engine,
        settings,
        case_id,
        lambda s: dc.begin_removal(s.case, at=now),
        now=now,
        changes={"authorized_key": None, "failures": 0},  # a new plan must allow it
    )


def complete_task(
    engine: Engine,
    settings: Settings,
    task_id: int,
    *,
    by: str,
    now: dt.datetime,
    note: str | None = None,
) -> store.StoredCase:
    """An admin did a manual task: close it and complete its case."""
    with engine.connect() as conn:
        found = [t for t in list_tasks(conn, status=None) if t.id == task_id]
    if not found:
        raise CaseActionError(f"no task #{task_id}")
    task = found[0]
    if task.status != "open":
        raise CaseActionError(f"task #{task_id} is already {task.status} ({task.done_by})")
    now_s = int(now.timestamp())
    data = {"task": task_id, "by": by, **({"note": note} if note else {})}

    def close(conn: Any, saved: store.StoredCase) -> None:
        close_tasks(conn, [task.idempotency_key], status="done", by=by, note=note, now=now_s)
        finish_write(
            conn, task.idempotency_key, result="done", detail=f"task done by {by}", now=now_s
        )

    def move(s: store.StoredCase) -> dc.Case:
        if s.case.state is not CaseState.REMOVAL_PENDING:
            raise dc.CaseError(f"case #{s.id} is {s.case.state}, not waiting for this task")
        return dc.mark_removed(s.case, at=now, data=data)

    return _change(engine, settings, task.case_id, move, now=now, after=close)


def list_cases(
    engine: Engine,
    *,
    policy: str | None = None,
    open_only: bool = False,
    states: tuple[CaseState, ...] = (),
    limit: int | None = 200,
) -> list[CaseView]:
    """Cases, newest first."""
    with engine.connect() as conn:
        pid = None
        if policy is not None:
            pid = policy_id(conn, policy)
            if pid is None:
                return []
        found = store.find_cases(
            conn, policy_id=pid, open_only=open_only, states=states, limit=limit
        )
    return [CaseView(s) for s in found]


def show_case(engine: Engine, case_id: int) -> CaseView:
    """One case with its history."""
    with engine.connect() as conn:
        stored = store.load_case(conn, case_id)
    if stored is None:
        raise CaseActionError(f"no case #{case_id}")
    return CaseView(stored)
