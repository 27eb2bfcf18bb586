"""Answers recorded before a kill run, and the store-side checks after it.

A seeded share of the asked people release their seat, the others keep it; each answer
carries a reason naming its case, so "no recorded answer lost" can be checked exactly:
after the run every case still holds its answer, its reason and its time.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from reclaim.config import Settings
from reclaim.domain.case import OPEN, CaseState
from reclaim.services.cases import answer
from reclaim.store import cases as store
from reclaim.store.tables import cases

S = CaseState


@dataclass(frozen=True)
class Answer:
    """What one person said, as recorded before the run."""

    case_id: int
    user: str
    keep: bool
    at: dt.datetime

    @property
    def reason(self) -> str:
        return f"kill-run answer for case {self.case_id}"


def all_cases(engine: Engine) -> list[store.StoredCase]:
    """Every case in the store, oldest first."""
    with engine.connect() as conn:
        ids = [int(i) for i in conn.execute(select(cases.c.id).order_by(cases.c.id)).scalars()]
        return store.load_cases(conn, ids)


def record_answers(
    engine: Engine, settings: Settings, *, now: dt.datetime, seed: int, keep_share: float = 0.15
) -> list[Answer]:
    """Every asked case gets an answer (seeded: ``keep_share`` of them keep)."""
    rng = random.Random(seed)
    recorded = []
    for stored in all_cases(engine):
        assert stored.case.state is S.ASKED, (stored.case.user, stored.case.state)
        keep = rng.random() < keep_share
        made = Answer(stored.id, stored.case.user, keep, now)
        answer(engine, settings, stored.id, keep=keep, now=now, reason=made.reason)
        recorded.append(made)
    return recorded


def count_in(engine: Engine, *states: CaseState) -> int:
    """How many cases are in one of ``states``."""
    with engine.connect() as conn:
        found = conn.execute(
            select(func.count())
            .select_from(cases)
            .where(cases.c.state.in_([s.value for s in states]))
        ).scalar_one()
    return int(found)


def claimable(engine: Engine, now: int) -> int:
    """Open cases due now that no live lease holds: work a running worker would pick up."""
    with engine.connect() as conn:
        found = conn.execute(
            select(func.count())
            .select_from(cases)
            .where(
                cases.c.state.in_([s.value for s in OPEN]),
                cases.c.next_due_at <= now,
                (cases.c.lease_until.is_(None)) | (cases.c.lease_until < now),
            )
        ).scalar_one()
    return int(found)


def lost_answers(engine: Engine, answers: list[Answer]) -> list[str]:
    """Answers recorded before the run that the store no longer shows, one line each."""
    by_id = {s.id: s for s in all_cases(engine)}
    lost = []
    for a in answers:
        stored = by_id.get(a.case_id)
        if stored is None:
            lost.append(f"case {a.case_id}: gone")
            continue
        wanted = S.ANSWERED_KEEP if a.keep else S.ANSWERED_RELEASE
        events = [e for e in stored.case.history if e.cause == "answered"]
        if len(events) != 1 or events[0].to_state is not wanted:
            lost.append(f"case {a.case_id}: answer events {[e.to_state for e in events]}")
        elif events[0].data.get("reason") != a.reason or stored.case.answered_at != a.at:
            lost.append(f"case {a.case_id}: answer changed to {events[0].data}")
    return lost
