"""Shared by the verdict tests: a small organization whose truth is known by
construction (personas and the verdict each must get)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from reclaim.domain.usage import MemberFacts, UsageFacts, VerdictKind

from .factories import daily, facts, make_policy

AS_OF = dt.date(2025, 11, 10)
SINCE = dt.date(2023, 6, 1)
OBSERVED = daily(SINCE, AS_OF - dt.timedelta(days=1))
LONG_AGO = dt.date(2023, 1, 1)
POLICY = make_policy()
K = VerdictKind

Persona = Callable[[random.Random], tuple[MemberFacts, UsageFacts]]


def _member(rng: random.Random, granted: dt.date | None = LONG_AGO, *groups: str) -> MemberFacts:
    return MemberFacts.of(f"U{rng.randrange(10**9)}@Example.com", ("staff", *groups), granted)


def in_use(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    uses = {d: 30.0 for d in daily(AS_OF - dt.timedelta(days=200), AS_OF - dt.timedelta(days=1))}
    return _member(rng), facts(uses, OBSERVED, as_of=AS_OF)


def new_joiner(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    granted = AS_OF - dt.timedelta(days=rng.randrange(0, 14))
    return _member(rng, granted), facts({}, daily(granted, AS_OF), as_of=AS_OF)


def on_leave(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    left = AS_OF - dt.timedelta(days=rng.randrange(40, 120))
    uses = {d: 45.0 for d in daily(SINCE, left)}
    return _member(rng), facts(uses, daily(SINCE, left), as_of=AS_OF)


def quarter_end(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    uses: dict[dt.date, float] = {}
    for year in (2023, 2024, 2025):
        for month in (3, 6, 9, 12):
            for d in range(28 - rng.randrange(3), 31):
                uses[dt.date(year, month, d)] = 90.0
            if month != 12:  # closing spills into the next month's first days
                uses[dt.date(year, month + 1, 1 + rng.randrange(2))] = 60.0
    uses = {d: m for d, m in uses.items() if SINCE <= d <= AS_OF}
    return _member(rng), facts(uses, OBSERVED, as_of=AS_OF)


def year_end(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    uses = {
        dt.date(y, 12, d): 120.0 for y in (2023, 2024) for d in range(10 + rng.randrange(5), 31)
    }
    return _member(rng), facts(uses, OBSERVED, as_of=AS_OF)


def underuser(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    uses = {d: 5.0 for d in daily(AS_OF - dt.timedelta(days=300 + rng.randrange(7)), AS_OF, 7)}
    return _member(rng), facts(uses, OBSERVED, as_of=AS_OF)


def vip(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    return _member(rng, LONG_AGO, "VIP"), facts({}, OBSERVED, as_of=AS_OF)


def ceo_on_leave(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    member = MemberFacts.of("CEO@example.com", ("staff",), LONG_AGO)
    return member, facts({}, daily(SINCE, AS_OF - dt.timedelta(days=60)), as_of=AS_OF)


def stopped(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    # A steady user who stopped: their history is dense, so no "pattern" explains it.
    end = AS_OF - dt.timedelta(days=rng.randrange(31, 200))
    uses = {d: 40.0 for d in daily(SINCE, end, 1 + rng.randrange(3))}
    return _member(rng), facts(uses, OBSERVED, as_of=AS_OF)


def never_used(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    return _member(rng), facts({}, OBSERVED, as_of=AS_OF)


def newly_observed(rng: random.Random) -> tuple[MemberFacts, UsageFacts]:
    start = AS_OF - dt.timedelta(days=rng.randrange(1, 30))
    return _member(rng), facts({}, daily(start, AS_OF), as_of=AS_OF)


ORG: dict[str, tuple[Persona, VerdictKind]] = {
    "in_use": (in_use, K.IN_USE),
    "new_joiner": (new_joiner, K.GRACE),
    "on_leave": (on_leave, K.NO_DATA),
    "quarter_end": (quarter_end, K.SEASONAL),
    "year_end": (year_end, K.SEASONAL),
    "underuser": (underuser, K.UNDERUSED),
    "vip": (vip, K.EXCLUDED),
    "ceo_on_leave": (ceo_on_leave, K.EXCLUDED),
    "stopped": (stopped, K.UNUSED),
    "never_used": (never_used, K.UNUSED),
    "newly_observed": (newly_observed, K.NO_DATA),
}
