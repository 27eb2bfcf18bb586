"""Asking an employee: the port campaigns plug into, and the record-only default.

The runner calls an :class:`Asker` when a case is due to ask or remind. The default,
:class:`OutboxAsker`, records the question in the ``notifications`` table (an outbox,
keyed by the step's idempotency key) and says it was asked on channel ``outbox``:
until campaign channels deliver those rows, answers are given with
``reclaim answer CASE_ID keep|release``.

An asker returns the channel that took the question, or raises ``Transient`` (try
later), ``Rejected`` (this person cannot be reached: the case becomes
``could_not_ask``, never read as consent) or ``StopRun`` (no channel works now).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.domain.policy import Policy
from reclaim.store.tables import notifications


@dataclass(frozen=True, slots=True)
class Question:
    """One question to one person about one case."""

    case_id: int
    policy: Policy
    user: str
    idempotency_key: str
    reminder: int = 0  # 0: the first ask; n: reminder number n
    last_used: str | None = None  # ISO date, for the message
    reason: str = ""


class Asker(Protocol):
    """Delivers questions; see the module docstring for the error contract."""

    def ask(self, conn: Connection, question: Question, *, now: int) -> str:
        """Ask (or remind); returns the channel that took it. ``conn`` is the case's
        transaction: a record written there commits with the case's transition."""
        ...


class OutboxAsker:
    """Records each question once (by idempotency key) for the campaign channels."""

    channel = "outbox"

    def ask(self, conn: Connection, question: Question, *, now: int) -> str:
        """Record the question; a retried step finds it recorded and records nothing."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(notifications)
            .values(
                idempotency_key=question.idempotency_key,
                case_id=question.case_id,
                kind="remind" if question.reminder else "ask",
                reminder=question.reminder,
                created_at=now,
                status="recorded",
                channel=None,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        return self.channel
