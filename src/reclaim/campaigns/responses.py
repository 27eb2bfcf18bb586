"""What a response link does: show the case, record the answer, take "I need it back".

The web page (``reclaim.web.respond``) is a thin layer over this module. Every
function takes the link's token and ``now`` and returns a :class:`LinkView` telling
the page what to show. Rules:

- the token is checked against the case's own person (:func:`tokens.verify`); any
  bad, edited or foreign token gets the same ``invalid`` view, which reveals nothing;
- opening a link never changes anything: answers are recorded by :func:`answer` only
  (the page calls it on POST), as the same record as ``reclaim answer``
  (:func:`reclaim.services.cases.answer`: the domain's ``record_answer`` on the stored
  case), in one write transaction that also checks the token, so the first answer
  counts whichever way it came, and a second one shows the recorded answer;
- after a release, the same link offers "I need it back" for
  ``campaigns.restore_window_days`` (even once the link's answer deadline has passed):
  before the removal was sent, that cancels the case (the seat never left); after it,
  the request is recorded in the case's history (``restore_requested``) and the
  restore service (``services.restore``) gives the seat back through the policy's
  workflow and the write gate; when it cannot now (manual workflow, paused, directory
  refused) the recorded request waits for an operator.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import partial

from sqlalchemy import Engine

from reclaim.campaigns.response_writes import (
    RESTORE_REQUESTED,
    AnswerOutcome,
    PendingAnswer,
    change_case,
    clean_reason,
    record_answer,
    record_answers,
    sqlite_retry,
    with_restore_request,
    writing,
)
from reclaim.campaigns.settings import CampaignSettings
from reclaim.campaigns.tokens import Expired, TokenError, TokenKeys, peek_case_id, verify
from reclaim.config import Settings
from reclaim.domain import case as dc
from reclaim.domain.case import CaseState
from reclaim.domain.policy import Policy
from reclaim.services.restore import RESTORABLE, RestoreError, restore_case
from reclaim.store import cases as store
from reclaim.workflows.directory import DirectoryFactory

log = logging.getLogger(__name__)

_SELF_SERVICE = "self-service:"  # starts the detail of a case the employee took back
_S = CaseState
_TAKEN = frozenset({_S.ANSWERED_RELEASE, _S.REMOVAL_PENDING, _S.AWAITING_SYNC, _S.REMOVED})


class LinkState(StrEnum):
    """Which page the link leads to."""

    ASK = "ask"  # the question, with Keep it / Release it
    ANSWERED = "answered"  # answered (now or before): shows the recorded answer
    EXPIRED = "expired"  # the deadline passed without an answer
    CLOSED = "closed"  # nothing to answer any more (cancelled, could not ask, ...)
    RESTORE_REQUESTED = "restore_requested"  # "I need it back" recorded, restore pending
    RESTORED = "restored"  # the license was given back
    INVALID = "invalid"  # not a link we issued for this case and person


@dataclass(frozen=True, slots=True)
class LinkView:
    """Everything the page shows (``case_id`` is None for an invalid link)."""

    state: LinkState
    case_id: int | None = None
    product: str = ""
    user: str = ""
    last_used: dt.date | None = None
    why: str = ""
    respond_by: dt.datetime | None = None
    on_no_response: str = "keep"
    answer: str | None = None  # keep | release
    answered_at: dt.datetime | None = None
    answer_reason: str | None = None
    restore_until: dt.datetime | None = None  # "I need it back" offered until then
    closed_why: str = ""
    just_now: bool = False  # this request recorded the answer / the restore request

    @property
    def can_restore(self) -> bool:
        """True when the page should offer "I need it back"."""
        return self.restore_until is not None


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer as a link's page sends it (see :meth:`Responder.answer`)."""

    token: str
    keep: bool
    reason: str | None
    now: dt.datetime


@dataclass(frozen=True)
class Responder:
    """The response-link service for one store and configuration."""

    engine: Engine
    settings: Settings
    keys: TokenKeys
    directories: DirectoryFactory | None = None  # default: the configured directories

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> Responder:
        """Resolve the link keys from ``campaigns.token_keys`` (SecretError if missing)."""
        if settings.campaigns is None:
            raise ValueError("no campaigns: section is configured, so no link can be checked")
        return cls(engine, settings, settings.campaigns.keys())

    @property
    def campaigns(self) -> CampaignSettings | None:
        """The campaign settings (None: defaults apply)."""
        return self.settings.campaigns

    # ----- the three things a link does --------------------------------------------

    def view(self, token: str, *, now: dt.datetime) -> LinkView:
        """What the link shows now. Reads only."""
        found = self._load(token, now=now, expired_ok=True)
        if found is None:
            return LinkView(LinkState.INVALID)
        stored, expired = found
        return self._describe(stored, now=now, expired=expired)

    def answer(self, token: str, *, keep: bool, reason: str | None, now: dt.datetime) -> LinkView:
        """Record the answer unless the case was answered already (the first counts)."""
        case_id = _case_id(token)
        if case_id is None:
            return LinkView(LinkState.INVALID)
        # One write transaction: the token is checked against the case's person as
        # loaded in it, and the answer recorded there (no read beforehand).
        with writing(self.engine):
            pending = self._pending(Answer(token, keep, reason, now), case_id)
            outcome = sqlite_retry(lambda: record_answer(self.engine, self.settings, pending))
        return self._answered(outcome, now=now)

    def answer_many(self, answers: Sequence[Answer], *, wait: bool = True) -> list[LinkView]:
        """Record several answers in one write transaction; each view is what
        :meth:`answer` would have returned for it alone (in order).

        The caller holds the writers' turn (``store.engine.writers_turn``). Raises,
        with none of them recorded, when the transaction fails (then record each with
        :meth:`answer`, so one bad answer costs the others nothing); ``wait=False``:
        ``WriteBusy`` at once when another connection holds SQLite's write lock.
        """
        ids = [_case_id(a.token) for a in answers]
        pending = [
            self._pending(a, case_id)
            for a, case_id in zip(answers, ids, strict=True)
            if case_id is not None
        ]
        found = record_answers(self.engine, self.settings, pending, wait=wait) if pending else []
        outcomes = iter(found)
        return [
            LinkView(LinkState.INVALID)
            if case_id is None
            else self._answered(next(outcomes), now=a.now)
            for a, case_id in zip(answers, ids, strict=True)
        ]

    def request_restore(self, token: str, *, reason: str | None, now: dt.datetime) -> LinkView:
        """ "I need it back": cancel a removal not sent yet, else restore or record it."""
        found = self._load(token, now=now, expired_ok=True)
        if found is None:
            return LinkView(LinkState.INVALID)
        stored, expired = found
        current = self._describe(stored, now=now, expired=expired)
        if not current.can_restore:
            return current
        note = clean_reason(reason)
        case = stored.case
        if case.state is _S.ANSWERED_RELEASE or (
            case.state is _S.REMOVAL_PENDING and not case.attempts
        ):
            detail = f"{_SELF_SERVICE} the employee asked to keep it before it was removed"
            with writing(self.engine):
                moved = change_case(
                    self.engine,
                    self.settings,
                    stored.id,
                    lambda c: dc.cancel(
                        c,
                        at=now,
                        cause=dc.CancelCause.ADMIN,
                        detail=detail + (f" ({note})" if note else ""),
                    ),
                    now=now,
                )
            return replace(self._describe(moved, now=now, expired=expired), just_now=True)
        with writing(self.engine):
            moved = change_case(
                self.engine,
                self.settings,
                stored.id,
                lambda c: with_restore_request(c, at=now, reason=note),
                now=now,
            )
        restored = self._restore_now(moved, reason=note, now=now)
        final = restored or moved
        return replace(self._describe(final, now=now, expired=expired), just_now=True)

    # ----- internals ------------------------------------------------------------------

    def _load(
        self, token: str, *, now: dt.datetime, expired_ok: bool
    ) -> tuple[store.StoredCase, bool] | None:
        """The case behind an authentic token, and whether the token has expired."""
        case_id = _case_id(token)
        if case_id is None:
            return None
        with self.engine.connect() as conn:
            stored = store.load_case(conn, case_id)
        if stored is None:
            return None
        expired = self._check(token, stored.case.user, case_id=case_id, now=now)
        if expired is None or (expired and not expired_ok):
            return None
        return stored, expired

    def _pending(self, answer: Answer, case_id: int) -> PendingAnswer:
        """The answer to record: its token is checked against the case's person as
        loaded in the write transaction (no read beforehand)."""
        return PendingAnswer(
            case_id,
            check=partial(self._check, answer.token, case_id=case_id, now=answer.now),
            keep=answer.keep,
            reason=clean_reason(answer.reason),
            now=answer.now,
        )

    def _answered(self, outcome: AnswerOutcome | None, *, now: dt.datetime) -> LinkView:
        if outcome is None:
            return LinkView(LinkState.INVALID)
        stored, expired, recorded = outcome
        view = self._describe(stored, now=now, expired=expired)
        return replace(view, just_now=True) if recorded else view

    def _check(self, token: str, upn: str, *, case_id: int, now: dt.datetime) -> bool | None:
        """True: authentic but expired; False: valid; None: not valid for this case."""
        try:
            verify(token, keys=self.keys, upn=upn, purpose="answer", now=now, case_id=str(case_id))
        except Expired:
            return True
        except TokenError:
            return None
        return False

    def _describe(self, stored: store.StoredCase, *, now: dt.datetime, expired: bool) -> LinkView:
        case = stored.case
        policy = self._policy(case.policy)
        timeout_days = policy.campaign.response_timeout_days if policy else 10
        respond_by = case.asked_at + dt.timedelta(days=timeout_days) if case.asked_at else None
        last = case.history[0].data.get("last_used")
        base = LinkView(
            state=LinkState.ASK,
            case_id=stored.id,
            product=case.policy,
            user=case.user,
            last_used=dt.date.fromisoformat(str(last)) if last else None,
            why=stored.reason,
            respond_by=respond_by,
            on_no_response=policy.campaign.on_no_response.value if policy else "keep",
        )
        answered = next((e for e in reversed(case.history) if e.cause == "answered"), None)
        if answered is not None:
            base = replace(
                base,
                answer="keep" if answered.to_state is _S.ANSWERED_KEEP else "release",
                answered_at=answered.at,
                answer_reason=str(answered.data.get("reason") or "") or None,
            )
        if case.state is _S.RESTORED:
            return replace(base, state=LinkState.RESTORED)
        if case.state is _S.CANCELLED and str(case.history[-1].data.get("detail", "")).startswith(
            _SELF_SERVICE
        ):
            why = "The release was stopped before it happened: you keep the license."
            return replace(base, state=LinkState.RESTORED, closed_why=why)
        if any(e.cause == RESTORE_REQUESTED for e in case.history) and case.state in _TAKEN:
            return replace(base, state=LinkState.RESTORE_REQUESTED)
        if case.state in _TAKEN:
            until = self._restore_until(case)
            offered = until if until is not None and now < until else None
            if answered is None:  # released by the policy's default after silence
                why = "We did not hear from you in time, so the license is being released."
                return replace(base, state=LinkState.CLOSED, closed_why=why, restore_until=offered)
            return replace(base, state=LinkState.ANSWERED, restore_until=offered)
        if case.state is _S.ANSWERED_KEEP:
            return replace(base, state=LinkState.ANSWERED)
        if case.state in (_S.ASKED, _S.REMINDED):
            return replace(base, state=LinkState.EXPIRED if expired else LinkState.ASK)
        if case.state is _S.NO_RESPONSE:
            return replace(base, state=LinkState.EXPIRED)
        return replace(base, state=LinkState.CLOSED, closed_why=_closed_why(case))

    def _restore_until(self, case: dc.Case) -> dt.datetime | None:
        days = self.campaigns.restore_window_days if self.campaigns else 14
        if not days:
            return None
        taken = case.answered_at or next(
            (e.at for e in case.history if e.cause == "no_response"), None
        )
        return None if taken is None else taken + dt.timedelta(days=days)

    def _policy(self, name: str) -> Policy | None:
        try:
            return self.settings.policy(name)
        except KeyError:
            return None

    def _restore_now(
        self, stored: store.StoredCase, *, reason: str | None, now: dt.datetime
    ) -> store.StoredCase | None:
        """Give the seat back through the restore service (the policy's workflow, the
        write gate); None when it could not now (manual workflow, paused, directory
        refused): the recorded request then waits for an operator."""
        if stored.case.state not in RESTORABLE:
            return None
        try:
            restore_case(
                self.engine,
                self.settings,
                stored.id,
                now=now,
                by=f"self-service:{stored.case.user}",
                reason=reason or "I need it back (response page)",
                directories=self.directories,
            )
        except RestoreError as exc:
            log.warning("case %s: self-service restore left to an operator: %s", stored.id, exc)
            return None
        with self.engine.connect() as conn:
            return store.load_case(conn, stored.id)


def _case_id(token: str) -> int | None:
    """The case id inside a token (unverified), or None when it cannot be one."""
    try:
        case_id = int(peek_case_id(token))
    except (TokenError, ValueError):
        return None
    return case_id if 0 < case_id <= 2**62 else None


def _closed_why(case: dc.Case) -> str:
    last = case.history[-1]
    if case.state is _S.CANCELLED:
        if last.cause == dc.CancelCause.USAGE_RESUMED.value:
            return "You have used it again, so there is nothing to answer: you keep it."
        if last.cause == dc.CancelCause.LEFT_GROUP.value:
            return "You no longer have this license, so there is nothing to answer."
        return "This question was withdrawn: you keep the license and need to do nothing."
    if case.state is _S.FAILED:
        return "The license could not be released; IT has been told. You need to do nothing."
    return "There is nothing to answer on this link any more."
