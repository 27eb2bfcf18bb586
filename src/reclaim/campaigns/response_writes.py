"""Writing what a response link changes: the answer's and the restore request's
transactions, with the retries SQLite and concurrent writers need.

Used by :mod:`reclaim.campaigns.responses`; nothing here reads a token.
"""

from __future__ import annotations

import datetime as dt
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from reclaim.config import Settings
from reclaim.domain import case as dc
from reclaim.domain.case import CaseEvent
from reclaim.domain.policy import Policy
from reclaim.services import cases as case_service
from reclaim.services.cycle import due_at
from reclaim.store import cases as store
from reclaim.store.engine import begin_write, writers_turn

MAX_REASON = 500  # characters kept of a free-text reason
RESTORE_REQUESTED = "restore_requested"  # the case event recording "I need it back"
_T = TypeVar("_T")
_ASKING = frozenset({dc.CaseState.ASKED, dc.CaseState.REMINDED})
#: What recording an answer leaves: the case as it now stands, whether the link has
#: expired, and whether this call recorded the answer.
AnswerOutcome = tuple[store.StoredCase, bool, bool]


def writing(engine: Engine) -> AbstractContextManager[object]:
    """The writer's turn on SQLite (:func:`reclaim.store.engine.writers_turn`): answers
    from many threads and web processes hand the write lock over at once instead of
    polling SQLite's busy handler."""
    return writers_turn(engine)


def sqlite_retry(write: Callable[[], _T]) -> _T:
    """Run ``write``; retry a few times when SQLite says another process holds the lock
    (a worker writing the same store)."""
    for attempt in range(5):
        try:
            return write()
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def clean_reason(reason: str | None) -> str | None:
    """A free-text reason as kept: control characters dropped, trimmed, at most
    ``MAX_REASON`` characters; blank is None."""
    if not reason:
        return None
    kept = "".join(
        ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in reason
    )
    kept = kept.strip()[:MAX_REASON].strip()
    return kept or None


def with_restore_request(case: dc.Case, *, at: dt.datetime, reason: str | None) -> dc.Case:
    """Append a "restore requested" event; the state does not change (the restore
    itself is a transition done by the restore service or an operator)."""
    if any(e.cause == RESTORE_REQUESTED for e in case.history):
        return case
    data = {"by": "employee", "channel": "response_page", **({"reason": reason} if reason else {})}
    event = CaseEvent(at, case.state, case.state, RESTORE_REQUESTED, data)
    return replace(case, history=(*case.history, event))


@dataclass(frozen=True)
class PendingAnswer:
    """One answer to record with others (:func:`record_answers`)."""

    case_id: int
    check: Callable[[str], bool | None]  # as for answer_in
    keep: bool
    reason: str | None
    now: dt.datetime


def record_answer(
    engine: Engine, settings: Settings, answer: PendingAnswer
) -> AnswerOutcome | None:
    """Record an answer in one write transaction (see :func:`answer_in`); on
    PostgreSQL, look again when another writer changed the case meanwhile."""
    policies = {p.name: p for p in settings.policies}
    for _ in range(case_service.RETRIES):
        with begin_write(engine) as conn:
            try:
                return answer_in(conn, policies, answer)
            except store.StaleCase:
                continue  # PostgreSQL: another writer got there first; look again
    raise case_service.CaseActionError(f"case #{answer.case_id} keeps changing; try again")


def record_answers(
    engine: Engine, settings: Settings, answers: Sequence[PendingAnswer], *, wait: bool = True
) -> list[AnswerOutcome | None]:
    """Record several answers in one write transaction (one BEGIN, one COMMIT), each
    as :func:`answer_in` does, in order: a second answer to the same case sees the
    first. Raises what any of them raised, with none recorded.

    For SQLite, whose writers take turns: the caller holds the writers' turn (see
    ``campaigns.answer_batches``). ``wait=False``: raise ``store.engine.WriteBusy`` at
    once if another connection holds the write lock. There is no retry on
    ``store.StaleCase``, which only PostgreSQL's concurrent writers raise.
    """
    policies = {p.name: p for p in settings.policies}
    with begin_write(engine, wait=wait) as conn:
        return [answer_in(conn, policies, a) for a in answers]


def answer_in(
    conn: Connection, policies: Mapping[str, Policy], answer: PendingAnswer
) -> AnswerOutcome | None:
    """Record an answer inside the caller's write transaction: load the case, ask
    ``answer.check`` about its person (None: the link is not for them; True: it has
    expired; False: valid), and record the answer if the question is still open.

    Returns (the case as it now stands, expired, recorded now), or None for a link
    that is not valid for this case. The answer is the same record as ``reclaim
    answer``'s (``services.cases.answer``): the domain's ``record_answer``, saved with
    the policy's next due time; the first answer counts. Raises ``store.StaleCase``
    when another writer changed the case since it was loaded (PostgreSQL).
    """
    case_id, now = answer.case_id, answer.now
    stored = store.load_case(conn, case_id)
    if stored is None:
        return None
    expired = answer.check(stored.case.user)
    if expired is None:
        return None
    if expired or stored.case.state not in _ASKING:
        return stored, expired, False
    case = dc.record_answer(stored.case, at=now, keep=answer.keep, reason=answer.reason)
    policy = policies.get(case.policy)
    due = (
        None
        if policy is None
        else due_at(case, authorized_key=stored.authorized_key, policy=policy, now=now)
    )
    return store.save_case(conn, stored, case, next_due_at=due), False, True


def change_case(
    engine: Engine,
    settings: Settings,
    case_id: int,
    move: Callable[[dc.Case], dc.Case],
    *,
    now: dt.datetime,
) -> store.StoredCase:
    """Apply ``move`` to the latest case, reloading on version conflicts."""
    policies = {p.name: p for p in settings.policies}
    for _ in range(case_service.RETRIES):
        with begin_write(engine) as conn:
            stored = store.load_case(conn, case_id)
            assert stored is not None
            case = move(stored.case)
            if case is stored.case:
                return stored
            policy = policies.get(case.policy)
            due = (
                stored.next_due_at
                if policy is None
                else due_at(case, authorized_key=stored.authorized_key, policy=policy, now=now)
            )
            try:
                return store.save_case(conn, stored, case, next_due_at=due)
            except store.StaleCase:
                continue
    raise case_service.CaseActionError(f"case #{case_id} keeps changing; try again")
