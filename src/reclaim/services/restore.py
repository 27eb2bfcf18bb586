"""Restores: give a reclaimed seat back by adding the user to the license group again.

``reclaim restore CASE`` (and later the web app and self-service) call
:func:`restore_case`. The add goes through the write gate like every directory
write: refused in dry run and while paused, recorded in ``directory_writes`` under
the case's restore key before it is sent. "Already a member" is success (someone put
them back by hand, or this is a retry after a crash that lost the outcome). The
directory steps taken (user lookup, the add, the verify) are filed in the case's
history with the ``restored`` event, or, when the add fails, on the event the case
stays on, next to the error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from reclaim.config import Settings
from reclaim.connectors.errors import AlreadyDone, ConnectorError, WriteRefused
from reclaim.domain import case as dc
from reclaim.domain.case import Action, CaseState
from reclaim.domain.policy import Workflow
from reclaim.services.cases import CaseActionError
from reclaim.services.runtime import Runtime
from reclaim.services.step_history import file_steps
from reclaim.store import cases as store
from reclaim.store.writes import finish_write
from reclaim.workflows.asker import OutboxAsker
from reclaim.workflows.directory import DirectoryFactory, default_directories
from reclaim.workflows.gate import Write, WriteGate, no_op
from reclaim.workflows.step_log import StepRecord, collecting

RESTORABLE = (CaseState.REMOVED, CaseState.AWAITING_SYNC)
RETRIES = 5  # version conflicts in a row before giving up


class RestoreError(CaseActionError):
    """The restore did not happen; the message says why (and nothing was changed
    except, for a failed add, the write record and the case's step history)."""


@dataclass
class RestoreResult:
    """What a restore did: ``restored``, ``already_member`` or ``dry_run``."""

    case_id: int
    policy: str
    user: str
    result: str
    detail: str = ""
    steps: list[StepRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for ``--json``."""
        return {
            "case_id": self.case_id,
            "policy": self.policy,
            "user": self.user,
            "result": self.result,
            "detail": self.detail,
            "steps": self.steps,
        }


def restore_case(
    engine: Engine,
    settings: Settings,
    case_id: int,
    *,
    now: dt.datetime,
    by: str,
    reason: str | None = None,
    dry_run: bool = False,
    directories: DirectoryFactory | None = None,
) -> RestoreResult:
    """Add the user of a removed case back to the policy's group; record ``restored``.

    Raises :class:`RestoreError` when the case cannot be restored (not removed, the
    manual workflow), the gate refuses (dry run, paused), or the directory does.
    ``dry_run``: check everything, read membership, write and record nothing.
    """
    owned = directories is None
    factory = directories or default_directories(engine, settings, dry_run=dry_run)
    rt = Runtime(
        engine=engine,
        settings=settings,
        directories=factory,
        asker=OutboxAsker(),
        gate=WriteGate(safety=settings.safety, dry_run=dry_run),
        clock=lambda: now,
        owner=f"restore:{by}",
    )
    try:
        return _restore(rt, case_id, by=by, reason=reason, dry_run=dry_run)
    finally:
        closer = getattr(factory, "close", None)
        if owned and callable(closer):
            closer()


def _restore(
    rt: Runtime, case_id: int, *, by: str, reason: str | None, dry_run: bool
) -> RestoreResult:
    now = rt.now()
    with rt.begin() as conn:
        stored = store.load_case(conn, case_id)
        if stored is None:
            raise RestoreError(f"no case #{case_id}")
        policy = rt.policy(conn, stored.case.policy)
    case = stored.case
    if case.state not in RESTORABLE:
        raise RestoreError(
            f"case #{case_id} is {case.state.value}: only a removed case can be restored "
            f"(states {', '.join(s.value for s in RESTORABLE)})"
        )
    if policy.workflow is Workflow.MANUAL:
        raise RestoreError(
            f"case #{case_id}: policy {policy.name!r} uses the manual workflow; add "
            f"{case.user} back to {policy.group.label()} yourself (Reclaim cannot write to it)"
        )
    key = case.key(Action.RESTORE)
    write = Write(policy, case.user, key, stored.id, None)
    result = RestoreResult(stored.id, policy.name, case.user, "restored")
    recorded = False
    with collecting() as steps:
        try:
            port = rt.directories(policy)
            if dry_run:
                member = port.is_member(policy=policy, user=case.user)
                result.result = "dry_run"
                result.detail = (
                    "already a member: nothing to add" if member else "would add the user back"
                )
            else:
                result = _add(rt, stored, write, port, result, now=now)
            recorded = True
        except WriteRefused as exc:
            raise RestoreError(f"case #{case_id}: not restored: {exc.detail}") from None
        except ConnectorError as exc:
            with rt.begin() as conn:
                finish_write(
                    conn, key, result="failed", detail=exc.detail, now=int(now.timestamp())
                )
            raise RestoreError(
                f"case #{case_id}: the directory did not add {case.user} back: "
                f"{type(exc).__name__}: {exc.detail}"
            ) from None
        finally:
            result.steps = list(steps)
            if steps and not recorded and not dry_run:  # on success, with the event
                with rt.begin() as conn:
                    file_steps(conn, stored.id, steps)
    if dry_run:
        return result
    return _record(rt, stored.id, result, by=by, reason=reason, now=now)


def _add(
    rt: Runtime,
    stored: store.StoredCase,
    write: Write,
    port: Any,
    result: RestoreResult,
    *,
    now: dt.datetime,
) -> RestoreResult:
    """Send the add through the gate; AlreadyDone is success."""
    now_s = int(now.timestamp())
    try:
        rt.gate.add(rt.begin, write, port=port, mark_sent=no_op, now=now_s)
    except AlreadyDone as exc:
        with rt.begin() as conn:
            finish_write(conn, write.key, result="already_done", detail=exc.detail, now=now_s)
        result.result, result.detail = "already_member", exc.detail
        return result
    with rt.begin() as conn:
        finish_write(conn, write.key, result="done", detail=None, now=now_s)
    return result


def _record(
    rt: Runtime,
    case_id: int,
    result: RestoreResult,
    *,
    by: str,
    reason: str | None,
    now: dt.datetime,
) -> RestoreResult:
    """The ``restored`` event, with the version check (a worker may hold the case)."""
    for _ in range(RETRIES):
        with rt.begin() as conn:
            stored = store.load_case(conn, case_id)
            assert stored is not None  # cases are never deleted
            if stored.case.state is CaseState.RESTORED:  # a concurrent restore won
                return result
            try:
                moved = dc.restore(
                    stored.case,
                    at=now,
                    by=by,
                    reason=reason,
                    already=result.result == "already_member",
                )
            except dc.CaseError as exc:
                raise RestoreError(str(exc)) from None
            try:
                store.save_case(conn, stored, moved, next_due_at=None, failures=0, last_error=None)
            except store.StaleCase:
                continue
            file_steps(conn, case_id, result.steps)
            return result
    raise RestoreError(
        f"case #{case_id} keeps changing; the user was added back, run restore again to record it"
    )
