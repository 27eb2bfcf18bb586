"""Reading cases for the API and the pages: filtered keyset pages, and one case in full.

The list reads one row per case (no history) so that a page costs the same at case
100,000 as at case 1; the case page reads the case with its whole history and what
Reclaim sent or recorded for it (directory writes, questions, manual tasks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, select

from reclaim.domain.case import CaseState, Status
from reclaim.store import cases as store
from reclaim.store.tables import (
    cases,
    directory_writes,
    manual_tasks,
    notifications,
    policies,
    users,
)
from reclaim.web.paging import cursor_int, decode_cursor, encode_cursor

#: Causes whose event data carries an error worth a column of its own.
ERROR_CAUSES = frozenset({"failed", "retry_later", "delivery_failed"})


class UnknownFilter(ValueError):
    """A filter value that names nothing (an unknown state or status)."""


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """What a cases list is narrowed to. Every field is optional."""

    policy: str | None = None
    state: str | None = None
    status: str | None = None
    open_only: bool = False
    user: str | None = None  # part of the UPN, case-insensitive

    def checked(self) -> CaseFilter:
        """This filter, or UnknownFilter naming the bad value and the known ones."""
        if self.state and self.state not in CaseState.__members__.values():
            known = ", ".join(s.value for s in CaseState)
            raise UnknownFilter(f"unknown state {self.state!r} (known: {known})")
        if self.status and self.status not in Status.__members__.values():
            known = ", ".join(s.value for s in Status)
            raise UnknownFilter(f"unknown status {self.status!r} (known: {known})")
        return self

    def as_query(self) -> dict[str, str]:
        """The filter as query parameters (for links that keep it)."""
        out = {
            "policy": self.policy or "",
            "state": self.state or "",
            "status": self.status or "",
            "user": self.user or "",
        }
        if self.open_only:
            out["open"] = "1"
        return {k: v for k, v in out.items() if v}


def iso(ts: int | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with a Z, or None."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).isoformat().replace("+00:00", "Z")


_LIST_COLUMNS = (
    cases.c.id,
    policies.c.name.label("policy"),
    users.c.upn.label("user"),
    cases.c.cycle,
    cases.c.state,
    cases.c.status,
    cases.c.outcome,
    cases.c.verdict,
    cases.c.reason,
    cases.c.opened_at,
    cases.c.updated_at,
    cases.c.next_due_at,
    cases.c.attempts,
    cases.c.last_error,
)


def _filtered(query: Select[Any], f: CaseFilter) -> Select[Any]:
    if f.policy:
        query = query.where(policies.c.name == f.policy)
    if f.state:
        query = query.where(cases.c.state == f.state)
    if f.status:
        query = query.where(cases.c.status == f.status)
    if f.open_only:
        query = query.where(cases.c.is_open.is_(True))
    if f.user:
        # UPNs are stored lower-case (user_key), so a lower-cased needle is a
        # case-insensitive match on both databases.
        query = query.where(users.c.upn.contains(f.user.strip().lower(), autoescape=True))
    return query


def _row(r: Any) -> dict[str, Any]:
    return {
        "id": int(r.id),
        "policy": r.policy,
        "user": r.user,
        "cycle": int(r.cycle),
        "state": r.state,
        "status": r.status,
        "outcome": r.outcome,
        "verdict": r.verdict,
        "reason": r.reason,
        "opened_at": iso(r.opened_at),
        "updated_at": iso(r.updated_at),
        "next_due_at": iso(r.next_due_at),
        "attempts": int(r.attempts),
        "last_error": r.last_error,
    }


def case_rows(
    conn: Connection, f: CaseFilter, *, limit: int, before: int | None = None
) -> list[dict[str, Any]]:
    """Up to ``limit`` cases matching ``f``, newest first, older than id ``before``."""
    query = (
        select(*_LIST_COLUMNS)
        .join(policies, policies.c.id == cases.c.policy_id)
        .join(users, users.c.id == cases.c.user_id)
        .order_by(cases.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(cases.c.id < before)
    return [_row(r) for r in conn.execute(_filtered(query, f))]


def case_page(
    engine: Engine, f: CaseFilter, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of cases and the cursor of the next (None at the end)."""
    before = cursor_int(decode_cursor(cursor), "before")
    with engine.connect() as conn:
        # One row more than asked tells whether another page exists, without a count.
        rows = case_rows(conn, f, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor({"before": rows[-1]["id"]}) if more and rows else None


def iter_cases(engine: Engine, f: CaseFilter, *, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """Every case matching ``f``, newest first, read ``chunk`` rows per query (CSV export)."""
    before: int | None = None
    while True:
        with engine.connect() as conn:
            rows = case_rows(conn, f, limit=chunk, before=before)
        yield from rows
        if len(rows) < chunk:
            return
        before = rows[-1]["id"]


def _step(event: dict[str, Any]) -> dict[str, Any]:
    """A history event as a line of the execution log: step, time, input, outcome, error."""
    data = dict(event["data"])
    error = None
    if event["cause"] in ERROR_CAUSES:
        error = data.pop("detail", None)
    return {
        "step": event["cause"],
        "at": event["at"],
        "from": event["from"],
        "to": event["to"],
        "input": data,
        "outcome": event["to"],
        "error": error,
    }


def case_detail(engine: Engine, case_id: int) -> dict[str, Any] | None:
    """One case with its full history and what was sent or recorded for it, or None."""
    with engine.connect() as conn:
        stored = store.load_case(conn, case_id)
        if stored is None:
            return None
        writes = conn.execute(
            select(directory_writes)
            .where(directory_writes.c.case_id == case_id)
            .order_by(directory_writes.c.id)
        ).all()
        asks = conn.execute(
            select(notifications)
            .where(notifications.c.case_id == case_id)
            .order_by(notifications.c.id)
        ).all()
        tasks = conn.execute(
            select(manual_tasks)
            .where(manual_tasks.c.case_id == case_id)
            .order_by(manual_tasks.c.id)
        ).all()
    c = stored.case
    history = [_step(e.to_dict()) for e in c.history]
    for h in history:
        h["at"] = iso(int(dt.datetime.fromisoformat(h["at"]).timestamp()))
    return {
        "id": stored.id,
        "policy": c.policy,
        "user": c.user,
        "cycle": c.cycle,
        "state": c.state.value,
        "status": c.status.value,
        "outcome": c.outcome.value if c.outcome else None,
        "verdict": stored.verdict,
        "reason": stored.reason,
        "opened_at": iso(int(c.opened_at.timestamp())),
        "updated_at": iso(int(c.updated_at.timestamp())),
        "next_due_at": iso(stored.next_due_at),
        "attempts": c.attempts,
        "reminders_sent": c.reminders_sent,
        "last_error": stored.last_error,
        "plan_id": stored.plan_id,
        "can_answer": c.state in (CaseState.ASKED, CaseState.REMINDED),
        "can_restore": c.state in (CaseState.REMOVED, CaseState.AWAITING_SYNC),
        "history": history,
        "directory_writes": [
            {
                "idempotency_key": w.idempotency_key,
                "action": w.action,
                "workflow": w.workflow,
                "plan_id": w.plan_id,
                "sends": int(w.sends),
                "sent_at": iso(w.sent_at),
                "finished_at": iso(w.finished_at),
                "result": w.result,
                "detail": w.detail,
            }
            for w in writes
        ],
        "notifications": [
            {
                "kind": n.kind,
                "reminder": int(n.reminder),
                "created_at": iso(n.created_at),
                "status": n.status,
                "channel": n.channel,
            }
            for n in asks
        ],
        "tasks": [
            {
                "id": int(t.id),
                "action": t.action,
                "group": t.group_label,
                "status": t.status,
                "created_at": iso(t.created_at),
                "done_at": iso(t.done_at),
                "done_by": t.done_by,
                "note": t.note,
            }
            for t in tasks
        ],
    }
