"""Storing reclamation cases: rows, their append-only history, and claims by workers.

A stored case is the domain's :class:`~reclaim.domain.case.Case` plus what running it
needs: ids, the plan authorization, when it is next due, the lease of the worker
holding it, and a version for optimistic concurrency. Every save checks the version
it loaded, so a worker and a person answering at the same moment cannot overwrite
each other: one of them reloads and decides again.

Claiming due cases and authorizing steps live in ``store.case_claims``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from reclaim.domain.case import OPEN, Action, Case, CaseEvent, CaseState, idempotency_key
from reclaim.store.tables import case_events, cases, memberships, policies, users

UTC = dt.UTC


def to_ts(at: dt.datetime | None) -> int | None:
    """A datetime as stored (epoch seconds), or None."""
    return None if at is None else int(at.timestamp())


def from_ts(ts: int | None) -> dt.datetime | None:
    """Stored epoch seconds back to an aware UTC datetime, or None."""
    return None if ts is None else dt.datetime.fromtimestamp(int(ts), UTC)


@dataclass(frozen=True, slots=True)
class StoredCase:
    """A case as loaded: the domain value plus the row's bookkeeping."""

    id: int
    policy_id: int
    user_id: int
    case: Case
    version: int
    verdict: str
    reason: str
    authorized_key: str | None
    plan_id: int | None
    next_due_at: int | None
    failures: int
    last_error: str | None
    lease_owner: str | None
    lease_until: int | None

    @property
    def remove_key(self) -> str:
        """The idempotency key of this case's removal."""
        return self.case.key(Action.REMOVE)


class StaleCase(Exception):
    """The case changed since it was loaded; reload and decide again."""


_COLUMNS = (
    cases.c.id,
    cases.c.policy_id,
    cases.c.user_id,
    policies.c.name,
    users.c.upn,
    cases.c.cycle,
    cases.c.state,
    cases.c.asked_at,
    cases.c.reminders_sent,
    cases.c.answered_at,
    cases.c.attempts,
    cases.c.retry_at,
    cases.c.version,
    cases.c.verdict,
    cases.c.reason,
    cases.c.authorized_key,
    cases.c.plan_id,
    cases.c.next_due_at,
    cases.c.failures,
    cases.c.last_error,
    cases.c.lease_owner,
    cases.c.lease_until,
)


def _base() -> Any:
    return (
        select(*_COLUMNS)
        .join(policies, policies.c.id == cases.c.policy_id)
        .join(users, users.c.id == cases.c.user_id)
    )


_EVENT_COLUMNS = (
    case_events.c.case_id,
    case_events.c.at,
    case_events.c.from_state,
    case_events.c.to_state,
    case_events.c.cause,
    case_events.c.data,
)
# One case and its history, by id: statements built once, so that SQLAlchemy finds
# their compiled form by a cache key it computed once too.
_ONE_CASE = _base().where(cases.c.id == bindparam("id"))
_ONE_HISTORY = (
    select(*_EVENT_COLUMNS)
    .where(case_events.c.case_id == bindparam("id"))
    .order_by(case_events.c.seq)
)


def _events(conn: Connection, ids: Sequence[int]) -> dict[int, list[CaseEvent]]:
    found: dict[int, list[CaseEvent]] = defaultdict(list)
    for i in range(0, len(ids), 900):
        rows = conn.execute(
            select(*_EVENT_COLUMNS)
            .where(case_events.c.case_id.in_(list(ids[i : i + 900])))
            .order_by(case_events.c.case_id, case_events.c.seq)
        )
        for cid, events in _events_of(rows).items():
            found[cid] += events
    return found


def _events_of(rows: Iterable[Any]) -> dict[int, list[CaseEvent]]:
    found: dict[int, list[CaseEvent]] = defaultdict(list)
    for cid, at, was, to, cause, data in rows:
        found[int(cid)].append(
            CaseEvent(
                dt.datetime.fromtimestamp(int(at), UTC),
                CaseState(was) if was else None,
                CaseState(to),
                cause,
                json.loads(data),
            )
        )
    return found


def _build(row: Any, history: list[CaseEvent]) -> StoredCase:
    case = Case(
        policy=row.name,
        user=row.upn,
        cycle=int(row.cycle),
        state=CaseState(row.state),
        history=tuple(history),
        asked_at=from_ts(row.asked_at),
        reminders_sent=int(row.reminders_sent),
        answered_at=from_ts(row.answered_at),
        attempts=int(row.attempts),
        retry_at=from_ts(row.retry_at),
    )
    return StoredCase(
        id=int(row.id),
        policy_id=int(row.policy_id),
        user_id=int(row.user_id),
        case=case,
        version=int(row.version),
        verdict=row.verdict,
        reason=row.reason,
        authorized_key=row.authorized_key,
        plan_id=row.plan_id,
        next_due_at=row.next_due_at,
        failures=int(row.failures),
        last_error=row.last_error,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
    )


def load_cases(conn: Connection, ids: Sequence[int]) -> list[StoredCase]:
    """The cases with these ids (with their history), in id order."""
    out: list[StoredCase] = []
    for i in range(0, len(ids), 900):
        part = list(ids[i : i + 900])
        rows = conn.execute(_base().where(cases.c.id.in_(part)).order_by(cases.c.id)).all()
        history = _events(conn, [int(r.id) for r in rows])
        out += [_build(r, history[int(r.id)]) for r in rows]
    return out


def load_case(conn: Connection, case_id: int) -> StoredCase | None:
    """One case by id, or None."""
    # Built once (see _ONE_CASE): the response page loads a case per request, and
    # building and hashing the select each time cost more than running it.
    row = conn.execute(_ONE_CASE, {"id": case_id}).first()
    if row is None:
        return None
    history = _events_of(conn.execute(_ONE_HISTORY, {"id": case_id}))
    return _build(row, history[int(row.id)])


def find_cases(
    conn: Connection,
    *,
    policy_id: int | None = None,
    open_only: bool = False,
    states: Iterable[CaseState] = (),
    limit: int | None = None,
) -> list[StoredCase]:
    """Cases filtered by policy, openness and state, newest first."""
    query = _base().order_by(cases.c.id.desc())
    if policy_id is not None:
        query = query.where(cases.c.policy_id == policy_id)
    if open_only:
        query = query.where(cases.c.is_open.is_(True))
    wanted = [s.value for s in states]
    if wanted:
        query = query.where(cases.c.state.in_(wanted))
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    history = _events(conn, [int(r.id) for r in rows])
    return [_build(r, history[int(r.id)]) for r in rows]


def _state_values(case: Case) -> dict[str, Any]:
    return {
        "state": case.state.value,
        "status": case.status.value,
        "outcome": case.outcome.value if case.outcome else None,
        "is_open": case.state in OPEN,
        "asked_at": to_ts(case.asked_at),
        "answered_at": to_ts(case.answered_at),
        "reminders_sent": case.reminders_sent,
        "attempts": case.attempts,
        "retry_at": to_ts(case.retry_at),
        "updated_at": to_ts(case.updated_at),
        "closed_at": None if case.state in OPEN else to_ts(case.updated_at),
    }


def _insert_events(conn: Connection, case_id: int, events: Sequence[CaseEvent], start: int) -> None:
    if events:
        conn.execute(
            insert(case_events),
            [
                {
                    "case_id": case_id,
                    "seq": start + n,
                    "at": to_ts(e.at),
                    "from_state": e.from_state.value if e.from_state else None,
                    "to_state": e.to_state.value,
                    "cause": e.cause,
                    "data": json.dumps(dict(e.data), sort_keys=True, default=str),
                }
                for n, e in enumerate(events)
            ],
        )


def insert_case(
    conn: Connection,
    case: Case,
    *,
    policy_id: int,
    user_id: int,
    verdict: str,
    reason: str,
    last_used: int | None,
    next_due_at: int | None,
) -> StoredCase:
    """Store a newly opened case with its opening event; returns it as stored.

    The unique indexes refuse a second case for the same cycle and a second *open*
    case per (policy, user); callers opening cases concurrently catch that.
    """
    values = _state_values(case)
    result = conn.execute(
        insert(cases).values(
            policy_id=policy_id,
            user_id=user_id,
            cycle=case.cycle,
            verdict=verdict,
            reason=reason,
            last_used=last_used,
            failures=0,
            remove_key=case.key(Action.REMOVE),
            next_due_at=next_due_at,
            version=1,
            opened_at=to_ts(case.opened_at),
            **values,
        )
    )
    case_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    _insert_events(conn, case_id, case.history, 0)
    return StoredCase(
        id=case_id,
        policy_id=policy_id,
        user_id=user_id,
        case=case,
        version=1,
        verdict=verdict,
        reason=reason,
        authorized_key=None,
        plan_id=None,
        next_due_at=next_due_at,
        failures=0,
        last_error=None,
        lease_owner=None,
        lease_until=None,
    )


def save_case(
    conn: Connection,
    stored: StoredCase,
    case: Case,
    **changes: Any,
) -> StoredCase:
    """Write ``case`` (a successor of ``stored.case``) and any column ``changes``.

    Appends the new history events and bumps the version; raises :class:`StaleCase`
    when the row changed since ``stored`` was loaded.
    """
    known = len(stored.case.history)
    if case.history[:known] != stored.case.history:
        raise ValueError("a saved case must extend the history it was loaded with")
    values = {**_state_values(case), **changes, "version": stored.version + 1}
    result = conn.execute(_SAVE, {**values, "_id": stored.id, "_version": stored.version})
    if result.rowcount != 1:
        raise StaleCase(f"case {stored.id} changed since it was loaded")
    _insert_events(conn, stored.id, case.history[known:], known)
    if case.state is CaseState.REMOVED and stored.case.state is not CaseState.REMOVED:
        left_group(
            conn,
            policy_id=stored.policy_id,
            user_id=stored.user_id,
            now=to_ts(case.updated_at) or 0,
        )
    kept = {k: v for k, v in changes.items() if k in _BOOKKEEPING}
    return replace(stored, case=case, version=stored.version + 1, **kept)


# Built once: the SET clause follows the keys of the parameters passed, and SQLAlchemy
# caches the compiled form per set of keys (building the update each time cost more).
_SAVE = update(cases).where(
    cases.c.id == bindparam("_id"), cases.c.version == bindparam("_version")
)

_BOOKKEEPING = frozenset(
    {
        "authorized_key",
        "plan_id",
        "next_due_at",
        "failures",
        "last_error",
        "lease_owner",
        "lease_until",
    }
)


def set_columns(conn: Connection, stored: StoredCase, **changes: Any) -> None:
    """Change bookkeeping columns only (no transition), with the version check."""
    result = conn.execute(
        update(cases)
        .where(cases.c.id == stored.id, cases.c.version == stored.version)
        .values(**changes, version=stored.version + 1)
    )
    if result.rowcount != 1:
        raise StaleCase(f"case {stored.id} changed since it was loaded")


def next_cycles(conn: Connection, policy_id: int) -> dict[int, int]:
    """user id → the cycle number a new case for them would get."""
    rows = conn.execute(
        select(cases.c.user_id, func.max(cases.c.cycle))
        .where(cases.c.policy_id == policy_id)
        .group_by(cases.c.user_id)
    )
    return {int(u): int(c) + 1 for u, c in rows}


def last_closed(conn: Connection, policy_id: int, states: Iterable[CaseState]) -> dict[int, int]:
    """user id → when their latest case in one of ``states`` closed (epoch seconds)."""
    rows = conn.execute(
        select(cases.c.user_id, func.max(cases.c.closed_at))
        .where(cases.c.policy_id == policy_id, cases.c.state.in_([s.value for s in states]))
        .group_by(cases.c.user_id)
    )
    return {int(u): int(t) for u, t in rows if t is not None}


def case_counts(conn: Connection) -> dict[tuple[int, str], int]:
    """(policy id, state) → number of cases."""
    rows = conn.execute(
        select(cases.c.policy_id, cases.c.state, func.count()).group_by(
            cases.c.policy_id, cases.c.state
        )
    )
    return {(int(p), str(s)): int(n) for p, s, n in rows}


def reclaimed_since(conn: Connection, policy_id: int, since: int) -> int:
    """Cases of this policy in ``removed`` that closed at or after ``since``."""
    return int(
        conn.execute(
            select(func.count()).where(
                cases.c.policy_id == policy_id,
                cases.c.state == CaseState.REMOVED.value,
                cases.c.closed_at >= since,
            )
        ).scalar()
        or 0
    )


def remove_key_for(*, policy: str, user: str, cycle: int) -> str:
    """The removal key of a (policy, user, cycle), for cases not stored yet."""
    return idempotency_key(policy=policy, user=user, cycle=cycle, action=Action.REMOVE)


def left_group(conn: Connection, *, policy_id: int, user_id: int, now: int) -> None:
    """Record that a reclaimed user is out of the group, as the directory sync will
    confirm later: until then the stale member list must not make them a candidate."""
    conn.execute(
        update(memberships)
        .where(
            memberships.c.policy_id == policy_id,
            memberships.c.user_id == user_id,
            memberships.c.active.is_(True),
        )
        .values(active=False, left_at=now)
    )
