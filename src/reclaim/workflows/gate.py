"""The write gate: the one way a directory write happens.

Every removal (and restore) goes through :meth:`WriteGate.remove` / :meth:`WriteGate.add`,
which in order:

1. refuses in dry-run (``safety.dry_run``, or ``reclaim run --dry-run``), while paused
   (``safety.paused`` or ``reclaim pause``), a removal from a protected user or group
   (``safety.protected_users`` / ``protected_groups``), or when the authorizing plan's
   cap of removals is already used up: :class:`~reclaim.connectors.errors.WriteRefused`;
2. records the write in ``directory_writes`` with its idempotency key *before* sending,
   in the same transaction as the case's ``removal_sent`` step (write-ahead);
3. reads the kill switch once more, at the moment of the write;
4. hands the request to the directory port, with the idempotency key.

The caller records the outcome (:func:`reclaim.store.writes.finish_write`) together
with the case's next transition. A crash between 4 and that record leaves the write
``sending``: the retry re-reads membership instead of assuming, so a removal is never
sent twice once it landed, and a lost outcome is never read as a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import Connection

from reclaim.config import SafetySettings
from reclaim.connectors.errors import WriteRefused
from reclaim.domain.policy import Policy
from reclaim.domain.protection import protected_group_reason, protected_user_reason
from reclaim.store.leases import paused_in_store
from reclaim.store.plans import lock_plan, plan_cap
from reclaim.store.writes import (
    NewWrite,
    begin_new_writes,
    begin_write,
    finish_write,
    get_write,
    removals_sent,
)
from reclaim.workflows.directory import DirectoryPort, RemoveOutcome

Tx = Callable[[], AbstractContextManager[Connection]]


@dataclass(frozen=True, slots=True)
class Write:
    """One directory write: who, which group, under which key, for which case."""

    policy: Policy
    user: str
    key: str
    case_id: int
    plan_id: int | None


class WriteGate:
    """Checks, records and sends directory writes (see the module docstring)."""

    def __init__(self, *, safety: SafetySettings, dry_run: bool = False) -> None:
        self.safety = safety
        self.dry_run = dry_run or safety.dry_run
        self._caps: dict[tuple[int, str], int | None] = {}  # a stored plan never changes

    def paused(self, conn: Connection) -> bool:
        """The kill switch: the config's ``safety.paused`` or ``reclaim pause``."""
        return self.safety.paused or paused_in_store(conn)

    def refusal(self, conn: Connection, write: Write, *, action: str = "remove") -> str | None:
        """Why this write would be refused right now, or None if it may go ahead."""
        if self.dry_run:
            return "dry run: directory writes are refused"
        if self.paused(conn):
            return "paused: the kill switch is on (reclaim resume, or safety.paused: false)"
        if action == "remove":
            protected = protected_group_reason(
                self.safety.protected_groups, write.policy
            ) or protected_user_reason(self.safety.protected_users, write.user)
            if protected:
                return protected
        if action == "remove" and write.plan_id is not None:
            cap = self._cap(conn, write.plan_id, write.policy.name)
            retry = get_write(conn, write.key) is not None  # already counted once
            if cap is not None and not retry:
                lock_plan(conn, write.plan_id)  # count and record under one lock
            if cap is not None and not retry and removals_sent(conn, write.plan_id) >= cap:
                return f"the cap of {cap} removal(s) for plan {write.plan_id} is used up"
        return None

    def admit_removals(
        self, conn: Connection, writes: Sequence[Write], *, workflow: str, now: int
    ) -> tuple[list[Write], dict[str, str]]:
        """Check and record many *first* removals at once (no write yet under their keys):
        the admitted writes are recorded as ``sending``; refused keys map to the reason.

        The same rules as :meth:`refusal`, with each plan's cap counted once for the
        group under the plan's lock, and the admitted writes recorded in the same
        transaction, so the count stays true. The caller records each case's
        ``removal_sent`` in this transaction too, then reads the kill switch again
        (:meth:`paused`) right before sending.
        """
        everyone = None
        if self.dry_run:
            everyone = "dry run: directory writes are refused"
        elif self.paused(conn):
            everyone = "paused: the kill switch is on (reclaim resume, or safety.paused: false)"
        if everyone:
            return [], dict.fromkeys((w.key for w in writes), everyone)
        admitted: list[Write] = []
        refused: dict[str, str] = {}
        left: dict[int, int] = {}  # plan id → removals its cap still allows
        for write in writes:
            why: str | None = protected_group_reason(
                self.safety.protected_groups, write.policy
            ) or protected_user_reason(self.safety.protected_users, write.user)
            plan = write.plan_id
            cap = None if plan is None else self._cap(conn, plan, write.policy.name)
            if not why and plan is not None and cap is not None:
                if plan not in left:
                    lock_plan(conn, plan)  # count and record under one lock
                    left[plan] = cap - removals_sent(conn, plan)
                if left[plan] <= 0:
                    why = f"the cap of {cap} removal(s) for plan {plan} is used up"
                else:
                    left[plan] -= 1
            if why:
                refused[write.key] = why
            else:
                admitted.append(write)
        begin_new_writes(
            conn,
            [NewWrite(w.key, w.case_id, w.plan_id, "remove", workflow) for w in admitted],
            now=now,
        )
        return admitted, refused

    def _cap(self, conn: Connection, plan_id: int, policy: str) -> int | None:
        where = (plan_id, policy)
        if where not in self._caps:
            self._caps[where] = plan_cap(conn, plan_id, policy)
        return self._caps[where]

    def check(self, conn: Connection, write: Write, *, action: str = "remove") -> None:
        """Raise :class:`WriteRefused` when :meth:`refusal` has a reason."""
        why = self.refusal(conn, write, action=action)
        if why:
            raise WriteRefused(why)

    def _send(
        self,
        tx: Tx,
        write: Write,
        *,
        action: str,
        workflow: str,
        mark_sent: Callable[[Connection], None],
        now: int,
    ) -> None:
        with tx() as conn:
            self.check(conn, write, action=action)
            begin_write(
                conn,
                key=write.key,
                case_id=write.case_id,
                plan_id=write.plan_id,
                action=action,
                workflow=workflow,
                now=now,
            )
            mark_sent(conn)
        with tx() as conn:  # the kill switch, read again at the moment of the write
            if self.paused(conn):
                why = "paused at the moment of the write; not sent"
                finish_write(conn, write.key, result="refused", detail=why, now=now)
                raise WriteRefused(why)

    def remove(
        self,
        tx: Tx,
        write: Write,
        *,
        port: DirectoryPort,
        mark_sent: Callable[[Connection], None],
        now: int,
    ) -> RemoveOutcome:
        """Record, then send a removal; returns the port's outcome or raises its error."""
        self._send(tx, write, action="remove", workflow=port.name, mark_sent=mark_sent, now=now)
        return port.remove_member(policy=write.policy, user=write.user, idempotency_key=write.key)

    def add(
        self,
        tx: Tx,
        write: Write,
        *,
        port: DirectoryPort,
        mark_sent: Callable[[Connection], None],
        now: int,
    ) -> None:
        """Record, then send an add (a restore); raises the port's error if any."""
        self._send(tx, write, action="add", workflow=port.name, mark_sent=mark_sent, now=now)
        port.add_member(policy=write.policy, user=write.user, idempotency_key=write.key)


def no_op(_conn: Connection) -> None:
    """A ``mark_sent`` for writes with no case transition to record."""
