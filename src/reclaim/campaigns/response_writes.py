"""Writing what a response link changes: the answer's and the restore request's
transactions, with the retries SQLite and concurrent writers need.

Used by :mod:`reclaim.campaigns.responses`; nothing here reads a token.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import unicodedata
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from reclaim.config import Settings
from reclaim.domain import case as dc
from reclaim.domain.case import CaseEvent
from reclaim.services import cases as case_service
from reclaim.services.cycle import due_at
from reclaim.store import cases as store
from reclaim.store.engine import is_sqlite

MAX_REASON = 500  # characters kept of a free-text reason
RESTORE_REQUESTED = "restore_requested"  # the case event recording "I need it back"
_T = TypeVar("_T")
_SQLITE_WRITES = threading.Lock()


def writing(engine: Engine) -> AbstractContextManager[object]:
    """On SQLite, one writer at a time from this process.

    The case services read, then write, in one deferred transaction; two of those
    racing on SQLite end in "database is locked" at once (a snapshot cannot be
    upgraded; busy_timeout does not apply), so the page's writes queue here.
    """
    return _SQLITE_WRITES if is_sqlite(engine) else nullcontext()


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
        with engine.begin() as conn:
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
