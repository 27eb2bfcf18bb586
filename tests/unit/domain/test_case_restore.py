"""The restore transition: only a removal that went through can be given back."""

from __future__ import annotations

import pytest

from reclaim.domain import case as c
from reclaim.domain.case import Action, CaseState, IllegalTransition, Outcome, Status
from reclaim.domain.case_steps import StepKind, next_step

from .factories import day
from .test_case import SILENT, asked, new_case, remove

S = CaseState


def test_admin_restore_records_who_why_and_the_key() -> None:
    removed = remove(new_case(), SILENT, day(0))
    case = c.restore(removed, at=day(2), by="ann", reason="needs it for the audit")
    assert case.state is S.RESTORED
    assert (case.status, case.outcome) == (Status.SUCCESS, Outcome.OTHER)
    event = case.history[-1]
    assert (event.from_state, event.cause) == (S.REMOVED, "admin")
    assert event.data == {
        "by": "ann",
        "reason": "needs it for the audit",
        "idempotency_key": removed.key(Action.RESTORE),
    }
    assert next_step(case, SILENT, day(30)).kind is StepKind.DONE


def test_already_a_member_is_recorded_as_success() -> None:
    case = c.restore(remove(new_case(), SILENT, day(0)), at=day(1), by="ann", already=True)
    assert case.state is S.RESTORED
    assert case.history[-1].data["already_member"] is True


def test_a_case_removed_in_ad_and_awaiting_sync_can_be_restored() -> None:
    pending = c.removal_sent(c.begin_removal(new_case(), at=day(0)), at=day(0))
    waiting = c.mark_awaiting_sync(pending, at=day(0))
    assert c.restore(waiting, at=day(1), by="ann").history[-1].from_state is S.AWAITING_SYNC


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(new_case, id="candidate"),
        pytest.param(asked, id="asked"),
        pytest.param(lambda: c.record_answer(asked(), at=day(1), keep=True), id="kept"),
        pytest.param(
            lambda: c.mark_failed(
                c.removal_sent(c.begin_removal(new_case(), at=day(0)), at=day(0)),
                at=day(0),
                detail="synced group",
            ),
            id="failed",
        ),
    ],
)
def test_only_a_removed_case_can_be_restored(build: object) -> None:
    case = build()  # type: ignore[operator]
    with pytest.raises(IllegalTransition, match="only a case whose removal went through"):
        c.restore(case, at=day(2), by="ann")


def test_a_restored_case_cannot_be_restored_twice() -> None:
    once = c.restore(remove(new_case(), SILENT, day(0)), at=day(1), by="ann")
    with pytest.raises(IllegalTransition):
        c.restore(once, at=day(2), by="ann")
