"""Every legal transition of the case state machine, each driven with explicit times.

The table below says how to reach each state and how to make each move; a transition
added to ``TRANSITIONS`` without a way to drive it here fails the first test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reclaim.domain import case as c
from reclaim.domain.case import TRANSITIONS, CancelCause, Case, CaseState

from .factories import day, make_policy

S = CaseState
KEEPING = make_policy()
RELEASING = make_policy(campaign={"on_no_response": "release"})


def _new() -> Case:
    return c.open_case(policy="Visio", user="ann@example.com", cycle=1, at=day(0))


def _asked() -> Case:
    return c.mark_asked(_new(), at=day(0, 1))


def _sent() -> Case:
    return c.removal_sent(c.begin_removal(_new(), at=day(1)), at=day(1, 1))


REACH: dict[CaseState, Callable[[], Case]] = {
    S.CANDIDATE: _new,
    S.ASKED: _asked,
    S.REMINDED: lambda: c.mark_reminded(_asked(), at=day(3), reminder=1),
    S.ANSWERED_RELEASE: lambda: c.record_answer(_asked(), at=day(2), keep=False),
    S.REMOVAL_PENDING: _sent,
    S.AWAITING_SYNC: lambda: c.mark_awaiting_sync(_sent(), at=day(1, 2)),
    S.REMOVED: lambda: c.mark_removed(_sent(), at=day(1, 2)),
    S.FAILED: lambda: c.mark_failed(_sent(), at=day(1, 2), detail="rejected"),
}
AT = day(11)

MOVES: dict[tuple[CaseState, CaseState], Callable[[Case], Case]] = {}
for asking in (S.ASKED, S.REMINDED):
    MOVES |= {
        (asking, S.REMINDED): lambda x: c.mark_reminded(x, at=AT, reminder=x.reminders_sent + 1),
        (asking, S.ANSWERED_KEEP): lambda x: c.record_answer(x, at=AT, keep=True),
        (asking, S.ANSWERED_RELEASE): lambda x: c.record_answer(x, at=AT, keep=False),
        (asking, S.NO_RESPONSE): lambda x: c.apply_timeout(x, policy=KEEPING, at=AT),
        (asking, S.REMOVAL_PENDING): lambda x: c.apply_timeout(x, policy=RELEASING, at=AT),
        (asking, S.COULD_NOT_ASK): lambda x: c.mark_could_not_ask(x, at=AT, detail="bounced"),
        (asking, S.CANCELLED): lambda x: c.cancel(x, at=AT, cause=CancelCause.USAGE_RESUMED),
    }
MOVES |= {
    (S.CANDIDATE, S.ASKED): lambda x: c.mark_asked(x, at=AT),
    (S.CANDIDATE, S.REMOVAL_PENDING): lambda x: c.begin_removal(x, at=AT),
    (S.CANDIDATE, S.COULD_NOT_ASK): lambda x: c.mark_could_not_ask(x, at=AT, detail="no mailbox"),
    (S.CANDIDATE, S.CANCELLED): lambda x: c.cancel(x, at=AT, cause=CancelCause.EXCLUDED),
    (S.ANSWERED_RELEASE, S.REMOVAL_PENDING): lambda x: c.begin_removal(x, at=AT),
    (S.ANSWERED_RELEASE, S.CANCELLED): lambda x: c.cancel(x, at=AT, cause=CancelCause.ADMIN),
    # From a pending removal: the sent one (REACH) for all but "cancel", which needs none sent.
    (S.REMOVAL_PENDING, S.REMOVAL_PENDING): lambda x: c.retry_later(
        x, at=AT, retry_at=day(12), detail="throttled"
    ),
    (S.REMOVAL_PENDING, S.AWAITING_SYNC): lambda x: c.mark_awaiting_sync(x, at=AT),
    (S.REMOVAL_PENDING, S.REMOVED): lambda x: c.mark_removed(x, at=AT, data={"task": 7}),
    (S.REMOVAL_PENDING, S.FAILED): lambda x: c.mark_failed(x, at=AT, detail="rejected"),
    (S.REMOVAL_PENDING, S.CANCELLED): lambda x: c.cancel(x, at=AT, cause=CancelCause.LEFT_GROUP),
    (S.AWAITING_SYNC, S.AWAITING_SYNC): lambda x: c.retry_later(
        x, at=AT, retry_at=day(12), detail="not synced yet"
    ),
    (S.AWAITING_SYNC, S.REMOVED): lambda x: c.mark_removed(x, at=AT),
    (S.AWAITING_SYNC, S.FAILED): lambda x: c.mark_failed(x, at=AT, detail="sync never came"),
    (S.AWAITING_SYNC, S.RESTORED): lambda x: c.restore(x, at=AT, by="admin"),
    (S.REMOVED, S.RESTORED): lambda x: c.restore(x, at=AT, by="ann", self_service=True),
    (S.FAILED, S.REMOVAL_PENDING): lambda x: c.begin_removal(x, at=AT),
}
# A pending removal is reached with its write sent, except to cancel: nothing may be sent.
START = {(S.REMOVAL_PENDING, S.CANCELLED): lambda: c.begin_removal(_new(), at=day(1))}
EDGES = sorted(((a, b) for a, bs in TRANSITIONS.items() for b in bs), key=str)


def test_every_legal_transition_has_a_driven_path() -> None:
    assert set(MOVES) == set(EDGES)


@pytest.mark.parametrize(("start", "end"), EDGES, ids=[f"{a}->{b}" for a, b in EDGES])
def test_transition(start: CaseState, end: CaseState) -> None:
    before = START.get((start, end), REACH[start])()
    assert before.state is start
    after = MOVES[start, end](before)
    assert after.state is end
    last = after.history[-1]
    assert (last.at, last.from_state, last.to_state) == (AT, start, end)
    assert after.history[:-1] == before.history  # one event appended, nothing rewritten
    assert (after.status, after.outcome) == c.STATUS[end]


def test_removed_records_how_it_was_done() -> None:
    done = c.mark_removed(_sent(), at=AT, data={"task": 7, "by": "admin"})
    assert done.history[-1].data == {"task": 7, "by": "admin"}
    assert done.history[-1].cause == "removed"
