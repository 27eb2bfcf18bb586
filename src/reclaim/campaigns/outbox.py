"""The ``notifications`` table as campaigns use it: what was sent, to whom, and when.

One row per step idempotency key (an ask, or reminder *n*, of one case). The
:class:`~reclaim.campaigns.asker.CampaignAsker` writes a ``sent`` row for every case a
message covered, in the case's own transaction, so a retried step finds its row and
sends nothing, and a case that rode along in another case's batched message is not
mailed again when the worker reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.domain.case import CaseState
from reclaim.store.tables import cases, notifications

SENT = "sent"
# The first key of PostgreSQL advisory locks taken per recipient (the second is the
# user id): a number of Reclaim's own, so other users of the database do not collide.
_RECIPIENT_LOCK = 0x52434C4D  # "RCLM"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One recorded question."""

    idempotency_key: str
    case_id: int
    kind: str  # ask | remind
    reminder: int
    status: str
    channel: str | None
    created_at: int


def lock_recipient(conn: Connection, user_id: int) -> None:
    """Hold this person's turn for messages until the transaction ends.

    Two workers (or two threads of one) asking two cases of the same person would each
    find nothing sent today and each send a message. On PostgreSQL the second waits
    here for the first's transaction, then sees its ``sent`` rows. SQLite needs nothing:
    the asking transaction begins IMMEDIATE, which already lets one writer at a time.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :uid)"), {"ns": _RECIPIENT_LOCK, "uid": user_id}
        )


def find(conn: Connection, idempotency_key: str) -> OutboxRow | None:
    """The row recorded for this step key, if any."""
    row = conn.execute(
        select(
            notifications.c.idempotency_key,
            notifications.c.case_id,
            notifications.c.kind,
            notifications.c.reminder,
            notifications.c.status,
            notifications.c.channel,
            notifications.c.created_at,
        ).where(notifications.c.idempotency_key == idempotency_key)
    ).first()
    return None if row is None else OutboxRow(*row)


def keys_recorded(conn: Connection, keys: list[str]) -> set[str]:
    """Which of ``keys`` already have a row."""
    if not keys:
        return set()
    rows = conn.execute(
        select(notifications.c.idempotency_key).where(notifications.c.idempotency_key.in_(keys))
    )
    return {str(k) for k in rows.scalars()}


def last_sent_to(conn: Connection, user_id: int) -> int | None:
    """When this person was last sent any campaign message (epoch seconds), or None."""
    found = conn.execute(
        select(func.max(notifications.c.created_at))
        .select_from(notifications.join(cases, cases.c.id == notifications.c.case_id))
        .where(cases.c.user_id == user_id, notifications.c.status == SENT)
    ).scalar()
    return None if found is None else int(found)


def record_sent(
    conn: Connection,
    *,
    idempotency_key: str,
    case_id: int,
    reminder: int,
    channel: str,
    now: int,
) -> None:
    """Record that the step ``idempotency_key`` went out on ``channel`` (once)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {
        "idempotency_key": idempotency_key,
        "case_id": case_id,
        "kind": "remind" if reminder else "ask",
        "reminder": reminder,
        "created_at": now,
        "status": SENT,
        "channel": channel,
    }
    inserted = conn.execute(
        dialect.insert(notifications)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    if inserted.rowcount == 0:  # a row recorded by the outbox asker: it is sent now
        conn.execute(
            update(notifications)
            .where(
                notifications.c.idempotency_key == idempotency_key,
                notifications.c.status != SENT,
            )
            .values(status=SENT, channel=channel, created_at=now)
        )


def open_asking_cases(conn: Connection, user_id: int, *, exclude: int) -> list[int]:
    """Ids of this person's other cases that may have an ask or reminder due."""
    wanted = [CaseState.CANDIDATE.value, CaseState.ASKED.value, CaseState.REMINDED.value]
    rows = conn.execute(
        select(cases.c.id)
        .where(cases.c.user_id == user_id, cases.c.state.in_(wanted), cases.c.id != exclude)
        .order_by(cases.c.id)
    )
    return [int(i) for i in rows.scalars()]
