"""The case state machine driven through every path with explicit times (no sleeping)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from reclaim.domain import case as c
from reclaim.domain.case import (
    Action,
    CancelCause,
    Case,
    CaseError,
    CaseState,
    IllegalTransition,
    Outcome,
    Status,
)
from reclaim.domain.case_steps import (
    RecheckResult,
    StepKind,
    asking_resumes_on,
    can_ask_again,
    kept_on,
    next_step,
    ready_for_removal,
    recheck_before_removal,
)
from reclaim.domain.policy import Policy

from .factories import day, make_policy

S = CaseState
ASKING = make_policy()  # reminders on days 3 and 6, timeout on day 10, default keep
RELEASING = make_policy(campaign={"on_no_response": "release"})
SILENT = make_policy(ask_permission=False)


def new_case(cycle: int = 1) -> Case:
    return c.open_case(
        policy="Visio", user="Ann@Example.com", cycle=cycle, at=day(0), data={"verdict": "unused"}
    )


def asked() -> Case:
    case = new_case()
    assert next_step(case, ASKING, day(0)).kind is StepKind.ASK
    return c.mark_asked(case, at=day(0, 1))


def remove(case: Case, policy: Policy, at: dt.datetime) -> Case:
    """What the executor does for a REMOVE step when the write succeeds."""
    step = next_step(case, policy, at)
    assert step.kind is StepKind.REMOVE
    assert step.idempotency_key == case.key(Action.REMOVE)
    case = ready_for_removal(case, policy=policy, at=at)
    assert recheck_before_removal(case, None).result is RecheckResult.PROCEED
    case = c.removal_sent(case, at=at)
    return c.mark_removed(case, at=at)


def causes(case: Case) -> list[str]:
    return [e.cause for e in case.history]


def test_answered_keep() -> None:
    case = c.record_answer(asked(), at=day(2), keep=True, reason="monthly report")
    assert case.state is S.ANSWERED_KEEP
    assert (case.status, case.outcome) == (Status.SUCCESS, Outcome.NO_ACTION_TAKEN)
    assert next_step(case, ASKING, day(5)).kind is StepKind.DONE
    assert case.history[-1].data == {"reason": "monthly report"}
    assert kept_on(case) == day(2).date()


def test_answered_release_is_removed() -> None:
    case = c.record_answer(asked(), at=day(1), keep=False)
    case = remove(case, ASKING, day(1, 2))
    assert case.state is S.REMOVED
    assert (case.status, case.outcome) == (Status.SUCCESS, Outcome.ACTION_TAKEN)
    assert causes(case) == ["opened", "asked", "answered", "released", "removal_sent", "removed"]
    assert next_step(case, ASKING, day(30)).kind is StepKind.DONE


def test_no_response_with_keep_default_expires() -> None:
    case = asked()
    for at, kind, k in [(day(2), StepKind.WAIT, 0), (day(3, 1), StepKind.REMIND, 1)]:
        step = next_step(case, ASKING, at)
        assert (step.kind, step.reminder) == (kind, k)
    assert next_step(case, ASKING, day(2)).due_at == day(3, 1)
    case = c.mark_reminded(case, at=day(3, 1), reminder=1)
    assert next_step(case, ASKING, day(4)).due_at == day(6, 1)
    case = c.mark_reminded(case, at=day(6, 1), reminder=2)
    assert next_step(case, ASKING, day(7)).due_at == day(10, 1)  # next: the timeout
    step = next_step(case, ASKING, day(10, 1))
    assert (step.kind, step.release) == (StepKind.TIMEOUT, False)
    case = c.apply_timeout(case, policy=ASKING, at=day(10, 1))
    assert case.state is S.NO_RESPONSE
    assert (case.status, case.outcome) == (Status.EXPIRED, Outcome.NO_ACTION_TAKEN)
    assert kept_on(case) == day(10).date()


def test_no_response_with_release_default_removes() -> None:
    case = c.mark_asked(new_case(), at=day(0))
    step = next_step(case, RELEASING, day(11))
    assert (step.kind, step.release) == (StepKind.TIMEOUT, True)
    with pytest.raises(IllegalTransition, match="keeps the license"):
        ready_for_removal(case, policy=ASKING, at=day(11))
    case = ready_for_removal(case, policy=RELEASING, at=day(11))
    assert case.state is S.REMOVAL_PENDING
    assert case.history[-1].data == {"default": "release"}
    case = remove(case, RELEASING, day(11, 1))
    assert case.state is S.REMOVED
    assert causes(case)[-3:] == ["no_response", "removal_sent", "removed"]
    with pytest.raises(IllegalTransition):  # the link expired with the timeout
        c.record_answer(case, at=day(12), keep=True)


def test_reminders_stop_once_answered() -> None:
    case = c.mark_reminded(asked(), at=day(3, 1), reminder=1)
    case = c.record_answer(case, at=day(4), keep=False)
    for n in (5, 6, 7, 9, 20):
        assert next_step(case, ASKING, day(n)).kind is StepKind.REMOVE
    with pytest.raises(IllegalTransition, match="cannot go from answered_release to reminded"):
        c.mark_reminded(case, at=day(6, 1), reminder=2)


def test_overdue_reminders_send_only_the_latest() -> None:
    step = next_step(asked(), ASKING, day(7))  # scheduler was down on days 3 to 6
    assert (step.kind, step.reminder) == (StepKind.REMIND, 2)
    case = c.mark_reminded(asked(), at=day(7), reminder=2)
    assert case.reminders_sent == 2
    assert next_step(case, ASKING, day(8)).kind is StepKind.WAIT
    with pytest.raises(IllegalTransition, match="already sent"):
        c.mark_reminded(case, at=day(8), reminder=1)


def test_ask_permission_off_goes_straight_to_removal() -> None:
    case = new_case()
    assert next_step(case, SILENT, day(0)).kind is StepKind.REMOVE
    case = remove(case, SILENT, day(0))
    assert causes(case) == ["opened", "ask_permission_off", "removal_sent", "removed"]


def test_usage_resumed_between_ask_and_removal_cancels() -> None:
    case = c.begin_removal(c.record_answer(asked(), at=day(4), keep=False), at=day(5))
    same_day = recheck_before_removal(case, day(4).date())  # saved work, then said release
    assert same_day.result is RecheckResult.PROCEED
    check = recheck_before_removal(case, day(5).date())
    assert check.result is RecheckResult.CANCEL
    assert "after the release answer" in check.reason
    case = c.cancel(case, at=day(5), cause=CancelCause.USAGE_RESUMED, detail=check.reason)
    assert (case.status, case.outcome) == (Status.CANCELLED, Outcome.NO_ACTION_TAKEN)
    assert case.history[-1].cause == "usage_resumed"


def test_recheck_without_an_answer_counts_use_since_the_case_began() -> None:
    case = c.begin_removal(new_case(), at=day(0))
    assert recheck_before_removal(case, day(-40).date()).result is RecheckResult.PROCEED
    assert recheck_before_removal(case, day(0).date()).result is RecheckResult.CANCEL
    sent = c.removal_sent(case, at=day(0))
    assert recheck_before_removal(sent, day(1).date()).result is RecheckResult.PROCEED


def test_user_leaves_the_group_mid_case() -> None:
    case = c.begin_removal(c.record_answer(asked(), at=day(1), keep=False), at=day(2))
    case = c.member_absent(case, at=day(2))
    assert case.state is S.CANCELLED
    assert case.history[-1].cause == CancelCause.LEFT_GROUP


def test_crash_between_removal_sent_and_recorded_finishes_as_success() -> None:
    case = c.begin_removal(new_case(), at=day(0))
    case = c.removal_sent(case, at=day(0, 1))  # write-ahead, then the process dies
    retry = next_step(case, SILENT, day(0, 2))
    assert retry.kind is StepKind.REMOVE
    assert retry.idempotency_key == case.key(Action.REMOVE)  # same key: same write
    with pytest.raises(IllegalTransition, match="already sent"):
        c.cancel(case, at=day(0, 2), cause=CancelCause.USAGE_RESUMED)
    found_gone = c.member_absent(case, at=day(0, 2))  # membership check before the write
    assert found_gone.state is S.REMOVED
    assert found_gone.history[-1].cause == "already_removed"
    already_done = c.mark_removed(c.removal_sent(case, at=day(0, 2)), at=day(0, 2), already=True)
    assert (already_done.status, already_done.outcome) == (Status.SUCCESS, Outcome.ACTION_TAKEN)
    assert already_done.attempts == 2


def test_removed_needs_a_recorded_send() -> None:
    case = c.begin_removal(new_case(), at=day(0))
    with pytest.raises(IllegalTransition, match="no removal was recorded as sent"):
        c.mark_removed(case, at=day(0))


def test_transient_failure_waits_then_retries() -> None:
    case = c.removal_sent(c.begin_removal(new_case(), at=day(0)), at=day(0))
    case = c.retry_later(case, at=day(0), retry_at=day(0, 3), detail="429 Retry-After 3h")
    step = next_step(case, SILENT, day(0, 1))
    assert (step.kind, step.due_at) == (StepKind.WAIT, day(0, 3))
    assert next_step(case, SILENT, day(0, 3)).kind is StepKind.REMOVE


def test_failure_then_admin_retry_keeps_attempts() -> None:
    case = c.removal_sent(c.begin_removal(new_case(), at=day(0)), at=day(0))
    case = c.mark_failed(case, at=day(0), detail="Rejected: group is dynamic")
    assert (case.status, case.outcome) == (Status.FAILED, Outcome.FAILED)
    assert next_step(case, SILENT, day(1)).kind is StepKind.DONE
    case = c.begin_removal(case, at=day(1))
    assert case.history[-1].cause == "admin_retry"
    assert case.attempts == 1


def test_on_prem_removal_awaits_directory_sync() -> None:
    case = c.removal_sent(c.begin_removal(new_case(), at=day(0)), at=day(0))
    case = c.mark_awaiting_sync(case, at=day(0))
    assert next_step(case, SILENT, day(0)).kind is StepKind.CHECK_SYNC
    case = c.retry_later(case, at=day(0), retry_at=day(0, 1), detail="not synced yet")
    assert next_step(case, SILENT, day(0)).kind is StepKind.WAIT
    off = make_policy(enabled=False)  # the AD write happened: sync is followed regardless
    assert next_step(case, off, day(0, 1)).kind is StepKind.CHECK_SYNC
    case = c.mark_removed(case, at=day(0, 1))
    assert case.history[-1].cause == "sync_confirmed"
    assert case.status is Status.SUCCESS


def test_could_not_ask_is_never_consent() -> None:
    case = c.mark_could_not_ask(new_case(), at=day(0), detail="550 mailbox unknown")
    assert (case.status, case.outcome) == (Status.FAILED, Outcome.OTHER)
    assert next_step(case, ASKING, day(30)).kind is StepKind.DONE
    for attempt in (
        lambda: c.begin_removal(case, at=day(1)),
        lambda: c.record_answer(case, at=day(1), keep=False),
    ):
        with pytest.raises(IllegalTransition):
            attempt()


def test_restore_after_removal() -> None:
    case = c.restore(remove(new_case(), SILENT, day(0)), at=day(3), by="ann", self_service=True)
    assert (case.status, case.outcome) == (Status.SUCCESS, Outcome.OTHER)
    assert case.history[-1].data["idempotency_key"] == case.key(Action.RESTORE)


def test_disabled_policy_cancels_open_cases_but_finishes_sent_writes() -> None:
    off = make_policy(enabled=False)
    step = next_step(asked(), off, day(1))
    assert (step.kind, step.cancel_cause) == (StepKind.CANCEL, CancelCause.POLICY_DISABLED)
    sent = c.removal_sent(c.begin_removal(new_case(), at=day(0)), at=day(0))
    assert next_step(sent, off, day(1)).kind is StepKind.REMOVE


def test_duplicate_tick_yields_the_same_keys() -> None:
    a, b = new_case(), new_case()
    assert next_step(a, ASKING, day(0)) == next_step(b, ASKING, day(0))
    assert a.key(Action.ASK) == c.idempotency_key(
        policy="Visio", user=" ann@example.COM ", cycle=1, action=Action.ASK
    )
    keys = {
        a.key(Action.ASK),
        a.key(Action.REMOVE),
        a.key(Action.REMIND, 1),
        a.key(Action.REMIND, 2),
        new_case(cycle=2).key(Action.ASK),
    }
    assert len(keys) == 5


def test_keep_cooldown() -> None:
    kept = day(2).date()
    assert can_ask_again(last_kept_on=None, policy=ASKING, today=kept)
    assert asking_resumes_on(kept, ASKING) == kept + dt.timedelta(days=90)
    assert not can_ask_again(last_kept_on=kept, policy=ASKING, today=kept + dt.timedelta(days=89))
    assert can_ask_again(last_kept_on=kept, policy=ASKING, today=kept + dt.timedelta(days=90))


def test_times_must_be_aware_and_history_is_json() -> None:
    with pytest.raises(CaseError, match="timezone-aware"):
        c.mark_asked(new_case(), at=dt.datetime(2025, 3, 3, 9))
    case = remove(c.record_answer(asked(), at=day(1), keep=False), ASKING, day(2))
    wire = json.loads(json.dumps([e.to_dict() for e in case.history]))
    assert tuple(c.CaseEvent.from_dict(e) for e in wire) == case.history
    assert case.opened_at == day(0)
    assert case.updated_at == day(2)
