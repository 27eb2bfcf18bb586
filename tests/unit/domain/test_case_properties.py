"""Properties of the case state machine under any sequence of operations."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from reclaim.domain import case as c
from reclaim.domain.case import FINAL, OPEN, STATUS, TRANSITIONS, CancelCause, Case, CaseState
from reclaim.domain.case_steps import StepKind, next_step

from .factories import day, make_policy

POLICIES = [
    make_policy(),
    make_policy(campaign={"on_no_response": "release"}),
    make_policy(ask_permission=False),
    make_policy(enabled=False),
]

Op = Callable[[Case, int], Case]
OPS: dict[str, Op] = {
    "ask": lambda k, t: c.mark_asked(k, at=day(t)),
    "remind1": lambda k, t: c.mark_reminded(k, at=day(t), reminder=1),
    "remind2": lambda k, t: c.mark_reminded(k, at=day(t), reminder=2),
    "keep": lambda k, t: c.record_answer(k, at=day(t), keep=True),
    "release": lambda k, t: c.record_answer(k, at=day(t), keep=False),
    "timeout_keep": lambda k, t: c.apply_timeout(k, policy=POLICIES[0], at=day(t)),
    "timeout_release": lambda k, t: c.apply_timeout(k, policy=POLICIES[1], at=day(t)),
    "bounce": lambda k, t: c.mark_could_not_ask(k, at=day(t), detail="bounce"),
    "begin": lambda k, t: c.begin_removal(k, at=day(t)),
    "sent": lambda k, t: c.removal_sent(k, at=day(t)),
    "retry": lambda k, t: c.retry_later(k, at=day(t), retry_at=day(t + 1), detail="429"),
    "removed": lambda k, t: c.mark_removed(k, at=day(t)),
    "already": lambda k, t: c.mark_removed(k, at=day(t), already=True),
    "sync": lambda k, t: c.mark_awaiting_sync(k, at=day(t)),
    "fail": lambda k, t: c.mark_failed(k, at=day(t), detail="x"),
    "cancel": lambda k, t: c.cancel(k, at=day(t), cause=CancelCause.ADMIN),
    "absent": lambda k, t: c.member_absent(k, at=day(t)),
    "restore": lambda k, t: c.restore(k, at=day(t), by="admin"),
}


def test_every_state_has_a_status_and_groups_partition() -> None:
    assert set(STATUS) == set(CaseState) == set(TRANSITIONS)
    assert not FINAL & OPEN
    assert FINAL | OPEN | {CaseState.REMOVED, CaseState.FAILED} == set(CaseState)


@given(st.lists(st.sampled_from(sorted(OPS)), max_size=25), st.integers(0, 3))
def test_any_operation_sequence_respects_the_machine(names: list[str], which: int) -> None:
    case = c.open_case(policy="Visio", user="a@x", cycle=1, at=day(0))
    for t, name in enumerate(names, start=1):
        before = case
        refused: c.IllegalTransition | None = None
        try:
            case = OPS[name](case, t)
        except c.IllegalTransition as err:
            refused = err
        if refused is not None:
            assert refused.state is before.state
            assert f"cannot go from {before.state}" in str(refused)
            continue
        assert before.state not in FINAL, f"{name} moved a case out of final {before.state}"
        assert case.state in TRANSITIONS[before.state]
        assert case.history[:-1] == before.history
        assert (case.history[-1].from_state, case.history[-1].to_state) == (
            before.state,
            case.state,
        )
        if case.state is CaseState.REMOVED and before.state is CaseState.REMOVAL_PENDING:
            assert before.attempts > 0  # removed only after a write was recorded as sent
        step = next_step(case, POLICIES[which], day(t))
        assert (step.kind is StepKind.DONE) == (
            case.state in FINAL | {CaseState.REMOVED, CaseState.FAILED}
        )
