"""What a case needs next, and the checks around asking and removing.

:func:`next_step` is a pure function of a case, its policy and ``now``: a scheduler
calls it, performs the step (recording it with the transitions in
:mod:`reclaim.domain.case`), and sleeps until the returned ``due_at`` when the answer
is :attr:`StepKind.WAIT`. Tests move time by passing another ``now``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from reclaim.domain.case import (
    FINAL,
    Action,
    CancelCause,
    Case,
    CaseState,
    IllegalTransition,
    apply_timeout,
    begin_removal,
)
from reclaim.domain.policy import NoResponse, Policy

_S = CaseState
_DAY = dt.timedelta(days=1)


class StepKind(StrEnum):
    """What the scheduler should do for a case now."""

    ASK = "ask"  # send the question (then mark_asked / mark_could_not_ask)
    REMIND = "remind"  # send reminder ``Step.reminder`` (then mark_reminded)
    TIMEOUT = "timeout"  # apply the no-response default (apply_timeout)
    REMOVE = "remove"  # begin_removal if needed, re-check usage, then remove
    CHECK_SYNC = "check_sync"  # on-prem: look for the removal in Entra ID
    CANCEL = "cancel"  # cancel with ``Step.cancel_cause``
    WAIT = "wait"  # nothing until ``Step.due_at``
    DONE = "done"  # closed: nothing will ever be due


@dataclass(frozen=True, slots=True)
class Step:
    """The next step for one case.

    ``due_at`` is ``now`` for steps to do now, the wake-up time for ``WAIT`` and
    ``None`` for ``DONE``. ``idempotency_key`` is set for steps with a side effect.
    """

    kind: StepKind
    due_at: dt.datetime | None
    reminder: int = 0
    release: bool = False
    cancel_cause: CancelCause | None = None
    idempotency_key: str | None = None


def next_step(case: Case, policy: Policy, now: dt.datetime) -> Step:
    """What is due for ``case`` at ``now`` under ``policy``.

    Reminders are only ever due in ``asked``/``reminded``, so an answer stops them.
    When several reminders are overdue (the scheduler was down), only the latest is
    sent: catching up would mail the employee twice in a minute.
    """
    state = case.state
    if state in FINAL or state in (_S.REMOVED, _S.FAILED):
        return Step(StepKind.DONE, None)
    if not policy.enabled and state is not _S.AWAITING_SYNC and not case.attempts:
        return Step(StepKind.CANCEL, now, cancel_cause=CancelCause.POLICY_DISABLED)
    if state is _S.CANDIDATE:
        if policy.ask_permission:
            return Step(StepKind.ASK, now, idempotency_key=case.key(Action.ASK))
        return Step(StepKind.REMOVE, now, idempotency_key=case.key(Action.REMOVE))
    if state in (_S.ASKED, _S.REMINDED):
        return _while_asking(case, policy, now)
    if state is _S.ANSWERED_RELEASE:
        return Step(StepKind.REMOVE, now, idempotency_key=case.key(Action.REMOVE))
    if case.retry_at is not None and now < case.retry_at:
        return Step(StepKind.WAIT, case.retry_at)
    if state is _S.REMOVAL_PENDING:
        return Step(StepKind.REMOVE, now, idempotency_key=case.key(Action.REMOVE))
    return Step(StepKind.CHECK_SYNC, now)


def _while_asking(case: Case, policy: Policy, now: dt.datetime) -> Step:
    campaign = policy.campaign
    asked = case.asked_at
    if asked is None:  # only transitions set state; a store row without asked_at is corrupt
        raise ValueError(
            f"case {case.policy}/{case.user}#{case.cycle} is {case.state} but has no asked_at"
        )
    timeout_at = asked + _DAY * campaign.response_timeout_days
    if now >= timeout_at:
        release = campaign.on_no_response is NoResponse.RELEASE
        return Step(StepKind.TIMEOUT, now, release=release)
    due = [asked + _DAY * d for d in campaign.reminder_days]
    overdue = sum(1 for at in due if at <= now)
    if overdue > case.reminders_sent:
        key = case.key(Action.REMIND, overdue)
        return Step(StepKind.REMIND, now, reminder=overdue, idempotency_key=key)
    upcoming = [at for at in due[case.reminders_sent :] if at > now]
    return Step(StepKind.WAIT, min([*upcoming, timeout_at]))


def ready_for_removal(case: Case, *, policy: Policy, at: dt.datetime) -> Case:
    """Move a case whose step is REMOVE (or a releasing TIMEOUT) into removal_pending.

    Saves every executor the same branching: a timed-out ask applies the policy's
    default, other open states queue the removal, a pending removal stays as it is.
    """
    if case.state is _S.REMOVAL_PENDING:
        return case
    if case.state in (_S.ASKED, _S.REMINDED):
        moved = apply_timeout(case, policy=policy, at=at)
        if moved.state is not _S.REMOVAL_PENDING:
            raise IllegalTransition(
                case,
                _S.REMOVAL_PENDING,
                "ready_for_removal",
                "the policy keeps the license when nobody answers",
            )
        return moved
    return begin_removal(case, at=at)


class RecheckResult(StrEnum):
    """The last-moment usage check's answer."""

    PROCEED = "proceed"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Recheck:
    """The re-check's answer with its reason (cancel with ``CancelCause.USAGE_RESUMED``)."""

    result: RecheckResult
    reason: str


def recheck_before_removal(case: Case, last_used: dt.date | None) -> Recheck:
    """Re-check usage right before the directory write.

    ``last_used`` is the latest use of the policy's apps the store knows *now*. Use on
    or after the day the case started (asked, or opened when never asked) cancels: the
    verdict that opened it is no longer true. After an explicit "release" answer, only
    use strictly after the answer day counts (people often open the app once more to
    save their work before saying yes). Once a write was sent it is too late to cancel:
    the case must be finished, then restored if needed.
    """
    if case.attempts:
        return Recheck(RecheckResult.PROCEED, "a removal was already sent; finishing it")
    if last_used is None:
        return Recheck(RecheckResult.PROCEED, "no use recorded")
    if case.answered_at is not None:
        released_on = case.answered_at.date()
        if last_used > released_on:
            why = f"used on {last_used}, after the release answer on {released_on}"
            return Recheck(RecheckResult.CANCEL, why)
        return Recheck(RecheckResult.PROCEED, f"no use since the release answer on {released_on}")
    since = (case.asked_at or case.opened_at).date()
    if last_used >= since:
        return Recheck(RecheckResult.CANCEL, f"used on {last_used}, since the case began {since}")
    return Recheck(RecheckResult.PROCEED, f"no use since {since} (last used {last_used})")


def kept_on(case: Case) -> dt.date | None:
    """The day the case closed with the license kept (answered keep, or timed out with
    the keep default), or ``None``. Feed the latest one to :func:`can_ask_again`."""
    if case.state in (_S.ANSWERED_KEEP, _S.NO_RESPONSE):
        return case.updated_at.date()
    return None


def asking_resumes_on(last_kept_on: dt.date | None, policy: Policy) -> dt.date | None:
    """The first day this user may be asked again about this policy (``None``: any day)."""
    if last_kept_on is None:
        return None
    return last_kept_on + _DAY * policy.campaign.keep_cooldown_days


def can_ask_again(*, last_kept_on: dt.date | None, policy: Policy, today: dt.date) -> bool:
    """Whether the keep cool-down is over, so a new case may ask this user again."""
    resumes = asking_resumes_on(last_kept_on, policy)
    return resumes is None or today >= resumes
