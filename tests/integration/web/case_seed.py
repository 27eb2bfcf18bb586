"""Cases for web tests, built with the domain's own transitions and stored by the store.

``seed_case(engine, to="removed", ...)`` walks a new case through the legal moves to
the wanted state (so its history is one a real run could leave) and stores it with
``store.cases.insert_case``. Users are created on first use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine, insert, select

from reclaim.domain import case as dc
from reclaim.domain.case import Case
from reclaim.domain.policy import Campaign, NoResponse, Policy
from reclaim.store import cases as store
from reclaim.store.tables import policies, users

H = dt.timedelta(hours=1)


def _asked(c: Case, at: dt.datetime) -> Case:
    return dc.mark_asked(c, at=at + H)


def _release(c: Case, at: dt.datetime) -> Case:
    return dc.record_answer(_asked(c, at), at=at + 2 * H, keep=False, reason="not needed")


def _pending(c: Case, at: dt.datetime) -> Case:
    return dc.begin_removal(_release(c, at), at=at + 3 * H)


def _sent(c: Case, at: dt.datetime) -> Case:
    return dc.removal_sent(_pending(c, at), at=at + 4 * H)


def _removed(c: Case, at: dt.datetime) -> Case:
    return dc.mark_removed(_sent(c, at), at=at + 5 * H)


def _no_response(c: Case, at: dt.datetime) -> Case:
    keep = Policy.model_construct(campaign=Campaign(on_no_response=NoResponse.KEEP))
    return dc.apply_timeout(_asked(c, at), policy=keep, at=at + 240 * H)


PATHS: dict[str, Callable[[Case, dt.datetime], Case]] = {
    "candidate": lambda c, at: c,
    "asked": _asked,
    "reminded": lambda c, at: dc.mark_reminded(_asked(c, at), at=at + 72 * H, reminder=1),
    "answered_keep": lambda c, at: dc.record_answer(
        _asked(c, at), at=at + 2 * H, keep=True, reason="I use it monthly"
    ),
    "answered_release": _release,
    "removal_pending": _pending,
    "removed": _removed,
    "failed": lambda c, at: dc.mark_failed(_sent(c, at), at=at + 5 * H, detail="Rejected: 400"),
    "restored": lambda c, at: dc.restore(_removed(c, at), at=at + 48 * H, by="helpdesk"),
    "no_response": _no_response,
    "could_not_ask": lambda c, at: dc.mark_could_not_ask(c, at=at + H, detail="mailbox unknown"),
    "cancelled": lambda c, at: dc.cancel(c, at=at + H, cause=dc.CancelCause.USAGE_RESUMED),
}


def user_id(engine: Engine, upn: str, *, now: int = 0) -> int:
    """The id of ``upn`` in ``users``, inserting it when new."""
    with engine.begin() as conn:
        found = conn.execute(select(users.c.id).where(users.c.upn == upn)).scalar()
        if found is not None:
            return int(found)
        inserted = conn.execute(insert(users).values(upn=upn, first_seen=now)).inserted_primary_key
        assert inserted is not None
        return int(inserted[0])


def seed_case(
    engine: Engine,
    *,
    to: str,
    user: str = "ann@corp.example",
    policy: str = "Visio",
    at: dt.datetime,
    cycle: int = 1,
    reason: str = "unused for 45 days",
    due: int | None = None,
) -> int:
    """A stored case of ``policy`` for ``user`` in state ``to``; returns its id."""
    uid = user_id(engine, user.lower())
    opened = dc.open_case(policy=policy, user=user, cycle=cycle, at=at, data={"verdict": "unused"})
    case = PATHS[to](opened, at)
    with engine.begin() as conn:
        pid = conn.execute(select(policies.c.id).where(policies.c.name == policy)).scalar_one()
        stored = store.insert_case(
            conn,
            case,
            policy_id=int(pid),
            user_id=uid,
            verdict="unused",
            reason=reason,
            last_used=None,
            next_due_at=due,
        )
    return stored.id
