"""The step executors: ask (and remind), remove, time out, cancel, check sync.

Each is a handful of reads, at most one side effect through a port, and one domain
transition, each in its own short transaction, so a crash at any point leaves a state
the next try can read: asks are keyed in the outbox, removals in ``directory_writes``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection

from reclaim.connectors.errors import NotFound, Rejected, Transient, WriteRefused
from reclaim.domain import case as dc
from reclaim.domain.case import CaseState
from reclaim.domain.case_steps import (
    RecheckResult,
    Step,
    StepKind,
    ready_for_removal,
    recheck_before_removal,
)
from reclaim.domain.policy import Policy
from reclaim.services.direct_licenses import remove_direct, with_detail
from reclaim.services.removal_results import SETTLED_ERRORS, Answer, landed, record, settle
from reclaim.services.runtime import (
    MANUAL_RECHECK,
    SYNC_DEADLINE,
    SYNC_WAIT,
    Runtime,
    StepReport,
    backoff,
)
from reclaim.store import cases as store
from reclaim.store.facts import last_use
from reclaim.store.writes import finish_write, get_write
from reclaim.workflows.asker import Question
from reclaim.workflows.directory import RemoveOutcome
from reclaim.workflows.gate import Write
from reclaim.workflows.manual import close_tasks


@dataclass
class Done:
    """An executor's result: a report, and optionally when the case is next due."""

    report: StepReport
    due: int | None = None  # overrides the domain's next due time (and ends the turn)


def _report(stored: store.StoredCase, step: Step, result: str, detail: str = "") -> StepReport:
    c = stored.case
    return StepReport(stored.id, c.policy, c.user, step.kind.value, result, detail)


def _save(
    rt: Runtime, stored: store.StoredCase, case: dc.Case, **changes: object
) -> store.StoredCase:
    with rt.begin() as conn:
        return store.save_case(conn, stored, case, **changes)


def _recheck(rt: Runtime, stored: store.StoredCase, policy: Policy) -> str | None:
    """The reason to cancel because the user used the app again, or None."""
    with rt.read() as conn:
        last = last_use(conn, app_ids=rt.app_ids(conn, policy), user_id=stored.user_id)
    check = recheck_before_removal(stored.case, last)
    return check.reason if check.result is RecheckResult.CANCEL else None


def _is_member(rt: Runtime, policy: Policy, user: str) -> bool:
    try:
        return rt.directories(policy).is_member(policy=policy, user=user)
    except NotFound:
        return False  # the account is gone, and its membership with it


def _absent(
    rt: Runtime, stored: store.StoredCase, policy: Policy, step: Step, now: dt.datetime
) -> Done:
    """The user is out of the group before we wrote: they left, or our earlier write landed."""
    sent = stored.case.state is CaseState.REMOVAL_PENDING and stored.case.attempts > 0
    landed_case = landed(rt, stored.case, policy, now) if sent else None
    case = landed_case or dc.member_absent(stored.case, at=now)
    result = "already_removed" if sent else case.history[-1].cause
    extra, error = ("", None)
    if case.state is CaseState.REMOVED:
        extra, error = remove_direct(rt, stored, policy, now)
    with rt.begin() as conn:
        store.save_case(conn, stored, case, failures=0, last_error=error)
        if get_write(conn, stored.remove_key) is not None:
            finish_write(
                conn,
                stored.remove_key,
                result="already_done",
                detail=None,
                now=int(now.timestamp()),
            )
            close_tasks(
                conn,
                [stored.remove_key],
                status="done",
                by="reclaim",
                note="member already gone",
                now=int(now.timestamp()),
            )
    detail = "awaiting directory sync" if case.state is CaseState.AWAITING_SYNC else ""
    return Done(_report(stored, step, result, with_detail(with_detail(detail, extra), error)))


def _ask(
    rt: Runtime, stored: store.StoredCase, policy: Policy, step: Step, now: dt.datetime
) -> Done:
    why = _recheck(rt, stored, policy)
    if why:
        case = dc.cancel(stored.case, at=now, cause=dc.CancelCause.USAGE_RESUMED, detail=why)
        _save(rt, stored, case)
        return Done(_report(stored, step, "cancelled", why))
    if not _is_member(rt, policy, stored.case.user):
        return _absent(rt, stored, policy, step, now)
    question = _question(stored, policy, step)
    try:
        with rt.begin() as conn:
            channel = rt.asker.ask(conn, question, now=int(now.timestamp()))
            if step.kind is StepKind.REMIND:
                case = dc.mark_reminded(stored.case, at=now, reminder=step.reminder)
            else:
                case = dc.mark_asked(stored.case, at=now, channel=channel)
            store.save_case(conn, stored, case, failures=0, last_error=None)
    except Rejected as exc:
        if step.kind is StepKind.REMIND:  # the question itself went out: keep waiting
            case = dc.mark_reminded(stored.case, at=now, reminder=step.reminder)
            _save(rt, stored, case, last_error=f"reminder not delivered: {exc.detail}")
            return Done(_report(stored, step, "reminder_failed", exc.detail))
        case = dc.mark_could_not_ask(stored.case, at=now, detail=exc.detail)
        _save(rt, stored, case, last_error=exc.detail)
        return Done(_report(stored, step, "could_not_ask", exc.detail))
    return Done(_report(stored, step, "reminded" if step.reminder else "asked", channel))


def _question(stored: store.StoredCase, policy: Policy, step: Step) -> Question:
    opening = stored.case.history[0].data
    last = opening.get("last_used")
    return Question(
        case_id=stored.id,
        policy=policy,
        user=stored.case.user,
        idempotency_key=step.idempotency_key or "",
        reminder=step.reminder,
        last_used=str(last) if last else None,
        reason=stored.reason,
    )


def _remove(
    rt: Runtime, stored: store.StoredCase, policy: Policy, step: Step, now: dt.datetime
) -> Done:
    now_s = int(now.timestamp())
    if stored.case.state is not CaseState.REMOVAL_PENDING:
        stored = _save(rt, stored, ready_for_removal(stored.case, policy=policy, at=now))
    why = _recheck(rt, stored, policy)  # the domain skips it once a write was sent
    if why:
        case = dc.cancel(stored.case, at=now, cause=dc.CancelCause.USAGE_RESUMED, detail=why)
        _save(rt, stored, case)
        return Done(_report(stored, step, "cancelled", why))
    key = stored.remove_key
    with rt.read() as conn:
        prior = get_write(conn, key)
    if not _is_member(rt, policy, stored.case.user):
        return _absent(rt, stored, policy, step, now)
    if prior is not None and prior.result == "queued":  # a person has it on their list
        return Done(
            _report(stored, step, "waiting", "manual task open"), due=now_s + MANUAL_RECHECK
        )
    # The gate checks (dry run, kill switch, protection, cap) in the transaction that
    # records the write; a refusal there leaves nothing behind and reaches the caller.
    write = Write(policy, stored.case.user, key, stored.id, stored.plan_id)

    def mark_sent(conn: Connection) -> None:
        nonlocal stored
        stored = store.save_case(conn, stored, dc.removal_sent(stored.case, at=now))

    port = rt.directories(policy)
    try:
        outcome: Answer = rt.gate.remove(rt.begin, write, port=port, mark_sent=mark_sent, now=now_s)
    except SETTLED_ERRORS as exc:
        if isinstance(exc, WriteRefused):  # refused before sending: the caller records it
            raise
        outcome = exc
    if outcome is RemoveOutcome.QUEUED:
        with rt.begin() as conn:
            finish_write(conn, key, result="queued", detail=None, now=now_s)
            store.set_columns(conn, stored, failures=0, last_error=None)
        return Done(
            _report(stored, step, "queued", "task for an admin"), due=now_s + MANUAL_RECHECK
        )
    settled = settle(rt, stored, policy, now, outcome)
    with rt.begin() as conn:
        if settled.stop is not None:  # the write did not happen; the case waits, the pass stops
            finish_write(conn, key, result="stopped", detail=settled.write_detail, now=now_s)
        else:
            record(conn, stored, settled, now=now_s)
    if settled.stop is not None:
        raise settled.stop
    return Done(_report(stored, step, settled.result, settled.detail))


def _timeout(
    rt: Runtime, stored: store.StoredCase, policy: Policy, step: Step, now: dt.datetime
) -> Done:
    case = dc.apply_timeout(stored.case, policy=policy, at=now)
    _save(rt, stored, case)
    return Done(
        _report(stored, step, case.state.value, f"default: {policy.campaign.on_no_response}")
    )


def _cancel(
    rt: Runtime, stored: store.StoredCase, policy: Policy, step: Step, now: dt.datetime
) -> Done:
    cause = step.cancel_cause or dc.CancelCause.ADMIN
    _save(rt, stored, dc.cancel(stored.case, at=now, cause=cause))
    return Done(_report(stored, step, "cancelled", cause.value))


def _check_sync(
    rt: Runtime, stored: store.StoredCase, policy: Policy, step: Step, now: dt.datetime
) -> Done:
    """On-prem AD: wait until Entra ID no longer lists the member (directory sync).

    The question is the port's ``sync_confirmed`` (Graph) when it has one, never its
    ``is_member``: the on-prem adapter's ``is_member`` reads AD, where the removal
    shows at once. Not synced yet (or Graph unreachable): look again after a growing
    wait (``SYNC_WAIT``, then doubling), the last look landing on the deadline,
    ``ldap.sync_deadline_hours`` after the removal in AD; then the case fails, saying so.
    """
    user = stored.case.user
    port = rt.directories(policy)
    confirm = getattr(port, "sync_confirmed", None)
    note = "not synced yet"
    try:
        if callable(confirm):
            synced = bool(confirm(policy=policy, user=user))
        else:
            synced = not port.is_member(policy=policy, user=user)
    except NotFound:
        synced = True  # the account is gone from Entra ID, and its membership with it
    except Transient as exc:  # Graph away: keep waiting, and keep the deadline running
        synced, note = False, f"sync not checked: {exc.detail}"
    if synced:
        _save(rt, stored, dc.mark_removed(stored.case, at=now), failures=0, last_error=None)
        return Done(_report(stored, step, "removed", "sync confirmed"))
    history = stored.case.history
    at = max(i for i, e in enumerate(history) if e.cause == "removed_in_ad")
    removed_in_ad = history[at].at
    ldap = rt.settings.ldap
    deadline = int(ldap.sync_deadline_hours * 3600) if ldap is not None else SYNC_DEADLINE
    waited = int((now - removed_in_ad).total_seconds())
    if waited >= deadline:
        why = (
            f"removed in AD at {removed_in_ad:%Y-%m-%d %H:%M %Z}, but Entra ID still lists "
            f"{user} in the group after {deadline / 3600:g} h (ldap.sync_deadline_hours): "
            "check that directory sync (Entra Connect) runs"
        )
        if note != "not synced yet":
            why += f"; last check: {note}"
        _save(rt, stored, dc.mark_failed(stored.case, at=now, detail=why), last_error=why)
        return Done(_report(stored, step, "failed", why))
    looks = sum(1 for e in history[at + 1 :] if e.cause == "retry_later")
    wait = min(backoff(looks + 1, SYNC_WAIT), deadline - waited)
    retry_at = now + dt.timedelta(seconds=wait)
    case = dc.retry_later(stored.case, at=now, retry_at=retry_at, detail=note)
    _save(rt, stored, case, last_error=None if note == "not synced yet" else note)
    return Done(_report(stored, step, "waiting", f"{note} (again in {wait} s)"))


EXECUTORS = {
    StepKind.ASK: _ask,
    StepKind.REMIND: _ask,
    StepKind.TIMEOUT: _timeout,
    StepKind.REMOVE: _remove,
    StepKind.CANCEL: _cancel,
    StepKind.CHECK_SYNC: _check_sync,
}
