"""How a removal that was sent ends: the directory's answer → the case, the write, the report.

One mapping, shared by the per-case executor (``services.executors``) and the grouped
removal step (``services.group_removal``), so a seat removed alone or in a group of
twenty leaves the same history, the same ``directory_writes`` row and the same report:

- removed (or, on-prem, awaiting sync): the transition, write ``done``; with
  ``remove_direct_license`` the direct assignments follow (their own recorded write);
- ``AlreadyDone``: our write landed earlier or the member left meanwhile; once a write
  was sent the case is finished as ``already_removed`` (or awaiting sync);
- ``Transient``: retry later with backoff, until :data:`MAX_FAILURES` tries in a row,
  then failed;
- ``Rejected`` / ``NotFound``: failed, saying why;
- ``StopRun``: nothing happened; the case is unchanged and the caller stops its pass.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection

from reclaim.connectors.errors import (
    AlreadyDone,
    ConnectorError,
    NotFound,
    Rejected,
    StopRun,
    Transient,
)
from reclaim.domain import case as dc
from reclaim.domain.case import CaseState
from reclaim.domain.policy import Policy
from reclaim.services.direct_licenses import remove_direct, with_detail
from reclaim.services.runtime import MAX_FAILURES, SYNC_WAIT, Runtime, backoff
from reclaim.store import cases as store
from reclaim.store.writes import finish_write
from reclaim.workflows.directory import RemoveOutcome

SETTLED_ERRORS = (AlreadyDone, Transient, Rejected, NotFound, StopRun)
"""The connector errors a sent removal can end in (anything else is a bug: re-raised)."""

Answer = RemoveOutcome | ConnectorError


@dataclass(frozen=True, slots=True)
class Settled:
    """What to record for one sent removal (see the module docstring)."""

    case: dc.Case | None  # the transition; None when nothing changed (StopRun)
    write_result: str  # for directory_writes: done, already_done, transient, failed, stopped
    write_detail: str | None
    failures: int
    last_error: str | None
    result: str  # the step report's result: removed, already_removed, retry, failed, stopped
    detail: str
    stop: StopRun | None = None


def waits_for_sync(rt: Runtime, policy: Policy) -> bool:
    """True when the policy's directory confirms removals through a later sync (on-prem
    AD: gone from AD is not yet gone from Entra ID, where the license is granted)."""
    return callable(getattr(rt.directories(policy), "sync_confirmed", None))


def landed(rt: Runtime, case: dc.Case, policy: Policy, now: dt.datetime) -> dc.Case:
    """Our earlier write turned out to have landed (lost outcome, AlreadyDone on retry):
    removed, or, where a sync must carry it to Entra ID, awaiting that sync."""
    if waits_for_sync(rt, policy):
        return dc.mark_awaiting_sync(case, at=now, first_look=first_sync_look(now))
    return dc.mark_removed(case, at=now, already=True)


def first_sync_look(now: dt.datetime) -> dt.datetime:
    """When to look at Entra ID first after a removal in AD: a directory sync runs every
    30 minutes by default, so a look at once would only cost a Graph request."""
    return now + dt.timedelta(seconds=SYNC_WAIT)


def settle(
    rt: Runtime, stored: store.StoredCase, policy: Policy, now: dt.datetime, answer: Answer
) -> Settled:
    """Map the directory's answer to a sent removal onto what must be recorded.

    ``stored`` is the case as saved with ``removal_sent``. May remove direct license
    assignments (their own write, :func:`remove_direct`) once the membership is gone.
    """
    case = stored.case
    if isinstance(answer, RemoveOutcome):
        if answer is RemoveOutcome.AWAITING_SYNC:
            moved = dc.mark_awaiting_sync(case, at=now, first_look=first_sync_look(now))
        elif answer is RemoveOutcome.REMOVED:
            moved = dc.mark_removed(case, at=now)
        else:  # QUEUED is the manual workflow's, settled by its executor
            raise ValueError(f"cannot settle a removal that was {answer.value}")
        extra, error = ("", None)
        if moved.state is CaseState.REMOVED:
            extra, error = remove_direct(rt, stored, policy, now)
        return Settled(
            moved, "done", answer.value, 0, error, answer.value, with_detail(extra, error)
        )
    if isinstance(answer, AlreadyDone):
        moved = landed(rt, case, policy, now)
        extra, error = ("", None)
        if moved.state is CaseState.REMOVED:
            extra, error = remove_direct(rt, stored, policy, now)
        detail = with_detail(with_detail(answer.detail, extra), error)
        return Settled(moved, "already_done", answer.detail, 0, error, "already_removed", detail)
    if isinstance(answer, Transient):
        failures = stored.failures + 1
        if failures >= MAX_FAILURES:
            why = f"gave up after {failures} tries: {answer.detail}"
            moved = dc.mark_failed(case, at=now, detail=why)
            return Settled(moved, "failed", answer.detail, failures, answer.detail, "failed", why)
        wait = backoff(failures, answer.retry_after)
        retry_at = now + dt.timedelta(seconds=wait)
        moved = dc.retry_later(case, at=now, retry_at=retry_at, detail=answer.detail)
        detail = f"{answer.detail} (again in {wait} s)"
        return Settled(moved, "transient", answer.detail, failures, answer.detail, "retry", detail)
    if isinstance(answer, Rejected | NotFound):
        moved = dc.mark_failed(case, at=now, detail=answer.detail)
        return Settled(moved, "failed", answer.detail, 0, answer.detail, "failed", answer.detail)
    if isinstance(answer, StopRun):
        return Settled(
            None, "stopped", answer.detail, stored.failures, answer.detail, "stopped",
            answer.detail, stop=answer,
        )  # fmt: skip
    raise answer  # not an answer a sent removal can settle on: the caller records it


def record(
    conn: Connection,
    stored: store.StoredCase,
    settled: Settled,
    *,
    now: int,
    **columns: object,
) -> store.StoredCase:
    """Write the outcome: finish the write record, save the transition (with the failure
    count, the last error and any other bookkeeping ``columns``). Raises ``StaleCase``."""
    finish_write(
        conn, stored.remove_key, result=settled.write_result, detail=settled.write_detail, now=now
    )
    changes = {"failures": settled.failures, "last_error": settled.last_error, **columns}
    if settled.case is None:
        store.set_columns(conn, stored, **changes)
        return stored
    return store.save_case(conn, stored, settled.case, **changes)
