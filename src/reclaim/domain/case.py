"""The reclamation case: one (policy, user, cycle), its state machine and its history.

A :class:`Case` is an immutable value; every transition function returns a new case
with one more :class:`CaseEvent` in ``history`` and raises :class:`IllegalTransition`
when the move is not in :data:`TRANSITIONS`. Time always comes in as ``at``/``now``.

State → (status, outcome), after the reference pack's execution log:

==================  ===========  ===============
state               status       outcome
==================  ===========  ===============
every state in OPEN in_progress  (none yet)
answered_keep       success      no_action_taken
no_response         expired      no_action_taken  (timed out, default keep applied)
removed             success      action_taken
failed              failed       failed
cancelled           cancelled    no_action_taken
could_not_ask       failed       other            (delivery failed: never consent)
restored            success      other            (taken, then given back)
==================  ===========  ===============

A timeout whose default is *release* goes straight from asked/reminded to
removal_pending (cause ``no_response``), so ``no_response`` is only ever "kept by
default" and can be final. ``removed`` and ``failed`` are closed but not final: an
admin may restore, or retry a failed removal. What is due next for a case is decided
in :mod:`reclaim.domain.case_steps`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from reclaim.domain.names import user_key
from reclaim.domain.policy import NoResponse, Policy


class CaseState(StrEnum):
    """Where a case stands."""

    CANDIDATE = "candidate"
    ASKED = "asked"
    REMINDED = "reminded"
    ANSWERED_KEEP = "answered_keep"
    ANSWERED_RELEASE = "answered_release"
    NO_RESPONSE = "no_response"
    COULD_NOT_ASK = "could_not_ask"
    REMOVAL_PENDING = "removal_pending"
    AWAITING_SYNC = "awaiting_sync"  # removed in AD, Entra ID not yet synced
    REMOVED = "removed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RESTORED = "restored"


class Status(StrEnum):
    """The execution status shown in the log (reference pack vocabulary)."""

    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Outcome(StrEnum):
    """What the case did to the license (reference pack vocabulary)."""

    ACTION_TAKEN = "action_taken"
    NO_ACTION_TAKEN = "no_action_taken"
    FAILED = "failed"
    OTHER = "other"


class CancelCause(StrEnum):
    """Why a case was cancelled."""

    USAGE_RESUMED = "usage_resumed"
    LEFT_GROUP = "left_group"
    EXCLUDED = "excluded"
    POLICY_DISABLED = "policy_disabled"
    ADMIN = "admin"


class Action(StrEnum):
    """Side effects that carry an idempotency key."""

    ASK = "ask"
    REMIND = "remind"
    REMOVE = "remove"
    RESTORE = "restore"


_S = CaseState
_ASKING = frozenset({_S.ASKED, _S.REMINDED})
_AFTER_ASK = frozenset(
    {
        _S.REMINDED,
        _S.ANSWERED_KEEP,
        _S.ANSWERED_RELEASE,
        _S.NO_RESPONSE,
        _S.REMOVAL_PENDING,
        _S.COULD_NOT_ASK,
        _S.CANCELLED,
    }
)

#: Every legal move. A state with no way out is final.
TRANSITIONS: Mapping[CaseState, frozenset[CaseState]] = MappingProxyType(
    {
        _S.CANDIDATE: frozenset({_S.ASKED, _S.REMOVAL_PENDING, _S.COULD_NOT_ASK, _S.CANCELLED}),
        _S.ASKED: _AFTER_ASK,
        _S.REMINDED: _AFTER_ASK,
        _S.ANSWERED_RELEASE: frozenset({_S.REMOVAL_PENDING, _S.CANCELLED}),
        _S.REMOVAL_PENDING: frozenset(
            {_S.REMOVAL_PENDING, _S.AWAITING_SYNC, _S.REMOVED, _S.FAILED, _S.CANCELLED}
        ),
        _S.AWAITING_SYNC: frozenset({_S.AWAITING_SYNC, _S.REMOVED, _S.FAILED, _S.RESTORED}),
        _S.REMOVED: frozenset({_S.RESTORED}),
        _S.FAILED: frozenset({_S.REMOVAL_PENDING}),
        _S.ANSWERED_KEEP: frozenset(),
        _S.NO_RESPONSE: frozenset(),
        _S.COULD_NOT_ASK: frozenset(),
        _S.CANCELLED: frozenset(),
        _S.RESTORED: frozenset(),
    }
)
FINAL: frozenset[CaseState] = frozenset(s for s, out in TRANSITIONS.items() if not out)
OPEN: frozenset[CaseState] = frozenset(
    {_S.CANDIDATE, _S.ASKED, _S.REMINDED, _S.ANSWERED_RELEASE, _S.REMOVAL_PENDING, _S.AWAITING_SYNC}
)
STATUS: Mapping[CaseState, tuple[Status, Outcome | None]] = MappingProxyType(
    {
        **{s: (Status.IN_PROGRESS, None) for s in OPEN},
        _S.ANSWERED_KEEP: (Status.SUCCESS, Outcome.NO_ACTION_TAKEN),
        _S.NO_RESPONSE: (Status.EXPIRED, Outcome.NO_ACTION_TAKEN),
        _S.REMOVED: (Status.SUCCESS, Outcome.ACTION_TAKEN),
        _S.FAILED: (Status.FAILED, Outcome.FAILED),
        _S.CANCELLED: (Status.CANCELLED, Outcome.NO_ACTION_TAKEN),
        _S.COULD_NOT_ASK: (Status.FAILED, Outcome.OTHER),
        _S.RESTORED: (Status.SUCCESS, Outcome.OTHER),
    }
)


class CaseError(Exception):
    """A domain rule about cases was broken; the message says which and why."""


class IllegalTransition(CaseError):
    """The requested move is not allowed from the case's current state."""

    def __init__(self, case: Case, to: CaseState, cause: str, why: str = "") -> None:
        allowed = ", ".join(sorted(TRANSITIONS[case.state])) or "nothing (final state)"
        super().__init__(
            f"case {case.policy}/{case.user}#{case.cycle}: cannot go from {case.state} to "
            f"{to} ({cause}){': ' + why if why else ''}; allowed from {case.state}: {allowed}"
        )
        self.state = case.state
        self.to = to


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One step in a case's history. ``from_state`` is ``None`` for the opening event."""

    at: dt.datetime
    from_state: CaseState | None
    to_state: CaseState
    cause: str
    data: Mapping[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """A JSON-able form for storage and the execution log."""
        return {
            "at": self.at.isoformat(),
            "from": self.from_state.value if self.from_state else None,
            "to": self.to_state.value,
            "cause": self.cause,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaseEvent:
        """Inverse of :meth:`to_dict`."""
        was = d["from"]
        return cls(
            dt.datetime.fromisoformat(d["at"]),
            CaseState(was) if was else None,
            CaseState(d["to"]),
            d["cause"],
            dict(d["data"]),
        )


@dataclass(frozen=True, slots=True)
class Case:
    """One reclamation case. Build with :func:`open_case`; change only by transitions.

    The counters beside ``history`` are what :func:`next_step` needs; they are set only
    by the transition functions here, so they cannot disagree with the history.
    """

    policy: str
    user: str
    cycle: int
    state: CaseState
    history: tuple[CaseEvent, ...]
    asked_at: dt.datetime | None = None
    reminders_sent: int = 0
    answered_at: dt.datetime | None = None
    attempts: int = 0  # removal writes sent; > 0 means the group may already have changed
    retry_at: dt.datetime | None = None

    @property
    def opened_at(self) -> dt.datetime:
        """When the case was opened."""
        return self.history[0].at

    @property
    def updated_at(self) -> dt.datetime:
        """When the last event happened."""
        return self.history[-1].at

    @property
    def status(self) -> Status:
        """The execution status for this state (see the module table)."""
        return STATUS[self.state][0]

    @property
    def outcome(self) -> Outcome | None:
        """The outcome for this state, or ``None`` while in progress."""
        return STATUS[self.state][1]

    def key(self, action: Action, step: int = 0) -> str:
        """The idempotency key for ``action`` in this case (``step``: reminder number)."""
        return idempotency_key(
            policy=self.policy, user=self.user, cycle=self.cycle, action=action, step=step
        )


def idempotency_key(*, policy: str, user: str, cycle: int, action: Action, step: int = 0) -> str:
    """A deterministic key for one side effect, so a retried tick never repeats it."""
    raw = "\x1f".join(("reclaim/1", policy, user_key(user), str(cycle), action.value, str(step)))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise CaseError(f"times must be timezone-aware (got naive {at.isoformat()})")
    return at


def open_case(
    *, policy: str, user: str, cycle: int, at: dt.datetime, data: Mapping[str, object] | None = None
) -> Case:
    """A new case in ``candidate``; ``data`` records why (e.g. the verdict and reason)."""
    event = CaseEvent(_aware(at), None, _S.CANDIDATE, "opened", dict(data or {}))
    return Case(
        policy=policy, user=user_key(user), cycle=cycle, state=_S.CANDIDATE, history=(event,)
    )


def _move(
    case: Case,
    to: CaseState,
    *,
    at: dt.datetime,
    cause: str,
    data: Mapping[str, object] | None = None,
    **changes: Any,
) -> Case:
    if to not in TRANSITIONS[case.state]:
        raise IllegalTransition(case, to, cause)
    event = CaseEvent(_aware(at), case.state, to, cause, dict(data or {}))
    return replace(case, state=to, history=(*case.history, event), **changes)


def mark_asked(case: Case, *, at: dt.datetime, channel: str = "email") -> Case:
    """The ask was delivered to at least one channel."""
    return _move(case, _S.ASKED, at=at, cause="asked", data={"channel": channel}, asked_at=at)


def mark_reminded(case: Case, *, at: dt.datetime, reminder: int) -> Case:
    """Reminder number ``reminder`` (1-based) was sent; skipped ones count as sent."""
    if reminder <= case.reminders_sent:
        why = f"{case.reminders_sent} reminder(s) already sent"
        raise IllegalTransition(case, _S.REMINDED, f"reminder {reminder}", why)
    data = {"reminder": reminder}
    return _move(case, _S.REMINDED, at=at, cause="reminded", data=data, reminders_sent=reminder)


def record_answer(case: Case, *, at: dt.datetime, keep: bool, reason: str | None = None) -> Case:
    """The employee answered; only an open ask can be answered (expired links cannot)."""
    to = _S.ANSWERED_KEEP if keep else _S.ANSWERED_RELEASE
    if case.state not in _ASKING:
        raise IllegalTransition(case, to, "answer", "no open question to answer")
    data = {"reason": reason} if reason else {}
    return _move(case, to, at=at, cause="answered", data=data, answered_at=at, retry_at=None)


def apply_timeout(case: Case, *, policy: Policy, at: dt.datetime) -> Case:
    """No answer in time: apply the policy's default (keep → no_response, release → removal)."""
    release = policy.campaign.on_no_response is NoResponse.RELEASE
    to = _S.REMOVAL_PENDING if release else _S.NO_RESPONSE
    if case.state not in _ASKING:
        raise IllegalTransition(case, to, "no_response", "only an open ask can time out")
    default = policy.campaign.on_no_response.value
    return _move(case, to, at=at, cause="no_response", data={"default": default})


def mark_could_not_ask(case: Case, *, at: dt.datetime, detail: str) -> Case:
    """Delivery failed permanently (bounce, unknown mailbox). Never read as consent."""
    return _move(case, _S.COULD_NOT_ASK, at=at, cause="delivery_failed", data={"detail": detail})


_REMOVAL_CAUSE = {
    _S.CANDIDATE: "ask_permission_off",
    _S.ANSWERED_RELEASE: "released",
    _S.FAILED: "admin_retry",
}


def begin_removal(case: Case, *, at: dt.datetime) -> Case:
    """Queue the removal; the cause follows from where the case stands."""
    cause = _REMOVAL_CAUSE.get(case.state)
    if cause is None:
        raise IllegalTransition(case, _S.REMOVAL_PENDING, "begin_removal")
    # ``attempts`` is kept on an admin retry: an earlier write may have landed after all.
    return _move(case, _S.REMOVAL_PENDING, at=at, cause=cause, retry_at=None)


def removal_sent(case: Case, *, at: dt.datetime) -> Case:
    """Record, *before* the directory write, that it is being sent (write-ahead).

    After a crash the case shows ``attempts > 0``, so a retry that finds the member
    gone records ``already_removed`` (success), not ``left_group``.
    """
    if case.state is not _S.REMOVAL_PENDING:
        raise IllegalTransition(case, _S.REMOVAL_PENDING, "removal_sent")
    key = case.key(Action.REMOVE)
    return _move(
        case,
        _S.REMOVAL_PENDING,
        at=at,
        cause="removal_sent",
        data={"idempotency_key": key, "attempt": case.attempts + 1},
        attempts=case.attempts + 1,
        retry_at=None,
    )


def retry_later(case: Case, *, at: dt.datetime, retry_at: dt.datetime, detail: str) -> Case:
    """A transient failure (or sync not seen yet): stay put and look again at ``retry_at``."""
    if case.state not in (_S.REMOVAL_PENDING, _S.AWAITING_SYNC):
        raise IllegalTransition(case, case.state, "retry_later")
    return _move(
        case,
        case.state,
        at=at,
        cause="retry_later",
        data={"detail": detail, "retry_at": retry_at.isoformat()},
        retry_at=_aware(retry_at),
    )


def _require_sent(case: Case, to: CaseState, cause: str) -> None:
    if case.state is _S.REMOVAL_PENDING and not case.attempts:
        raise IllegalTransition(case, to, cause, "no removal was recorded as sent")


def mark_removed(
    case: Case,
    *,
    at: dt.datetime,
    already: bool = False,
    data: Mapping[str, object] | None = None,
) -> Case:
    """The member is out of the group (``already``: a retry found them gone: AlreadyDone).

    ``data`` records how (e.g. which manual task, and who marked it done).
    """
    if case.state is _S.AWAITING_SYNC:
        cause = "sync_confirmed"
    else:
        cause = "already_removed" if already else "removed"
    _require_sent(case, _S.REMOVED, cause)
    return _move(case, _S.REMOVED, at=at, cause=cause, data=data, retry_at=None)


def mark_awaiting_sync(
    case: Case, *, at: dt.datetime, first_look: dt.datetime | None = None
) -> Case:
    """Removed in on-prem AD; wait for directory sync to show it in Entra ID.

    ``first_look``: when to look at Entra ID first (a sync takes its time: looking at
    once only costs a request); None looks at once.
    """
    _require_sent(case, _S.AWAITING_SYNC, "removed_in_ad")
    look = None if first_look is None else _aware(first_look)
    data = {} if look is None else {"first_look": look.isoformat()}
    return _move(case, _S.AWAITING_SYNC, at=at, cause="removed_in_ad", data=data, retry_at=look)


def mark_failed(case: Case, *, at: dt.datetime, detail: str) -> Case:
    """The removal failed for good (Rejected, retries exhausted, sync never came)."""
    return _move(case, _S.FAILED, at=at, cause="failed", data={"detail": detail}, retry_at=None)


def cancel(case: Case, *, at: dt.datetime, cause: CancelCause, detail: str = "") -> Case:
    """Stop the case. Refused once a removal write was sent: finish it, then restore."""
    if case.state is _S.REMOVAL_PENDING and case.attempts:
        raise IllegalTransition(
            case, _S.CANCELLED, cause.value, "a removal was already sent; resolve it, then restore"
        )
    data = {"detail": detail} if detail else {}
    return _move(case, _S.CANCELLED, at=at, cause=cause.value, data=data, retry_at=None)


def member_absent(case: Case, *, at: dt.datetime) -> Case:
    """The membership check found the user out of the group before the write.

    If we had already sent a removal, this is our own write surviving a crash
    (``already_removed``); if not, the user left the group on their own.
    """
    if case.state is _S.REMOVAL_PENDING and case.attempts:
        return mark_removed(case, at=at, already=True)
    return cancel(case, at=at, cause=CancelCause.LEFT_GROUP)


def restore(
    case: Case,
    *,
    at: dt.datetime,
    by: str,
    self_service: bool = False,
    reason: str | None = None,
    already: bool = False,
) -> Case:
    """The license was given back (admin, or the employee's "I need it back").

    Only a removed case (or one removed in AD and awaiting sync) can be restored.
    ``already``: the directory answered that the user was a member already (someone
    added them back by hand, or a retry after a crash): success all the same.
    """
    if case.state not in (_S.REMOVED, _S.AWAITING_SYNC):
        raise IllegalTransition(
            case, _S.RESTORED, "restore", "only a case whose removal went through can be restored"
        )
    data: dict[str, object] = {"by": by, "idempotency_key": case.key(Action.RESTORE)}
    if reason:
        data["reason"] = reason
    if already:
        data["already_member"] = True
    return _move(
        case,
        _S.RESTORED,
        at=at,
        cause="self_service" if self_service else "admin",
        data=data,
    )
