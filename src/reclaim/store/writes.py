"""The record of directory writes: written before each send, completed after.

``directory_writes`` has one row per idempotency key. A row still saying ``sending``
means a write was handed to the directory and its outcome never recorded (a crash):
whoever retries must find out from the directory, not assume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update

from reclaim.store.tables import directory_writes

SENDING = "sending"


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One directory write as recorded."""

    idempotency_key: str
    case_id: int
    plan_id: int | None
    action: str
    sends: int
    result: str
    detail: str | None


def get_write(conn: Connection, key: str) -> WriteRecord | None:
    """The record for ``key``, if a write with it was ever started."""
    row = conn.execute(
        select(
            directory_writes.c.idempotency_key,
            directory_writes.c.case_id,
            directory_writes.c.plan_id,
            directory_writes.c.action,
            directory_writes.c.sends,
            directory_writes.c.result,
            directory_writes.c.detail,
        ).where(directory_writes.c.idempotency_key == key)
    ).first()
    return None if row is None else WriteRecord(*row)


def begin_write(
    conn: Connection,
    *,
    key: str,
    case_id: int,
    plan_id: int | None,
    action: str,
    workflow: str,
    now: int,
) -> int:
    """Record that a write is about to be sent; returns how many sends this makes."""
    found = get_write(conn, key)
    if found is None:
        conn.execute(
            insert(directory_writes).values(
                idempotency_key=key,
                case_id=case_id,
                plan_id=plan_id,
                action=action,
                workflow=workflow,
                sends=1,
                sent_at=now,
                result=SENDING,
            )
        )
        return 1
    conn.execute(
        update(directory_writes)
        .where(directory_writes.c.idempotency_key == key)
        .values(sends=found.sends + 1, sent_at=now, result=SENDING, finished_at=None)
    )
    return found.sends + 1


def finish_write(conn: Connection, key: str, *, result: str, detail: str | None, now: int) -> None:
    """Record how a write ended (``done``, ``already_done``, ``queued``, ``failed`` …)."""
    conn.execute(
        update(directory_writes)
        .where(directory_writes.c.idempotency_key == key)
        .values(result=result, detail=detail, finished_at=now)
    )


def removals_sent(conn: Connection, plan_id: int) -> int:
    """Removal writes authorized by this plan that were handed to a directory."""
    return int(
        conn.execute(
            select(func.count()).where(
                directory_writes.c.plan_id == plan_id, directory_writes.c.action == "remove"
            )
        ).scalar()
        or 0
    )


def existing_writes(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` already have a write record (a write was started with them)."""
    found: set[str] = set()
    for i in range(0, len(keys), 900):
        chunk = list(keys[i : i + 900])
        found.update(
            conn.execute(
                select(directory_writes.c.idempotency_key).where(
                    directory_writes.c.idempotency_key.in_(chunk)
                )
            ).scalars()
        )
    return found


def begin_new_writes(conn: Connection, rows: Sequence[NewWrite], *, now: int) -> None:
    """:func:`begin_write` for many keys never written before, in one statement."""
    if rows:
        conn.execute(
            insert(directory_writes),
            [
                {
                    "idempotency_key": r.key,
                    "case_id": r.case_id,
                    "plan_id": r.plan_id,
                    "action": r.action,
                    "workflow": r.workflow,
                    "sends": 1,
                    "sent_at": now,
                    "result": SENDING,
                }
                for r in rows
            ],
        )


@dataclass(frozen=True, slots=True)
class NewWrite:
    """A first write under a key (see :func:`begin_new_writes`)."""

    key: str
    case_id: int
    plan_id: int | None
    action: str
    workflow: str
