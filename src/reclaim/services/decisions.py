"""Verdicts for every member of a policy's group, as of a date.

Loads the facts in a few set-based queries (``store.facts``) and runs the domain's
:class:`~reclaim.domain.usage.Evaluator` over them. The seasonal rule needs two years
of monthly history; it is loaded in a second pass only for the members who would
otherwise be candidates. That gives the same verdicts as loading it for everyone (the
rule is never consulted for anyone else) at a fraction of the reads.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, select

from reclaim.domain.policy import Policy
from reclaim.domain.usage import (
    DEFAULT_FRESHNESS_DAYS,
    Evaluator,
    MemberFacts,
    SeasonalRule,
    UsageFacts,
    Verdict,
    VerdictKind,
)
from reclaim.store.facts import active_months, load_facts
from reclaim.store.summaries import ensure_usage_summaries
from reclaim.store.tables import policies as policies_table


class MemberVerdict(NamedTuple):
    """One member's verdict with the facts behind it."""

    user_id: int
    member: MemberFacts
    usage: UsageFacts
    verdict: Verdict

    @property
    def user(self) -> str:
        """The member's UPN (lower-case)."""
        return self.member.user


@dataclass(frozen=True, slots=True)
class PolicyVerdicts:
    """Every member's verdict for one policy, as of one date (in user id order)."""

    policy: Policy
    policy_id: int
    as_of: dt.date
    window_days: int
    app_ids: tuple[int, ...]
    user_ids: list[int]
    members: list[MemberFacts]
    usage: list[UsageFacts]
    verdicts: list[Verdict]

    @property
    def group_size(self) -> int:
        """Active members of the license group."""
        return len(self.user_ids)

    def rows(self) -> Iterator[MemberVerdict]:
        """Every member with their verdict."""
        for row in zip(self.user_ids, self.members, self.usage, self.verdicts, strict=True):
            yield MemberVerdict(*row)

    def candidates(self) -> list[MemberVerdict]:
        """Members whose verdict makes them reclamation candidates."""
        return [r for r in self.rows() if r.verdict.kind.is_candidate]

    def breakdown(self) -> dict[str, int]:
        """How many members got each verdict (every kind listed, zeros included)."""
        counts = Counter(v.kind for v in self.verdicts)
        return {k.value: counts.get(k, 0) for k in VerdictKind}


def stored_policy_ids(conn: Connection) -> dict[str, int]:
    """Policy name → stored id (policies are synced from the config at startup)."""
    rows = conn.execute(select(policies_table.c.id, policies_table.c.name))
    return {str(n): int(i) for i, n in rows}


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """A run builds about a million small tuples and none of them form cycles: the
    cyclic collector would only walk them again and again (measured ~5-10 % of a run)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def evaluate_with(
    conn: Connection,
    policies: Sequence[Policy],
    *,
    as_of: dt.date,
    freshness_days: int = DEFAULT_FRESHNESS_DAYS,
    configured: Sequence[Policy] = (),
    seasonal: SeasonalRule | None = None,
    engine: Engine | None = None,
) -> list[PolicyVerdicts]:
    """Verdicts for ``policies`` on an open connection (summaries must be current).

    ``engine`` lets the fact loader read per-user facts on a second connection.
    """
    with _without_cyclic_gc():
        return _evaluate(
            conn,
            policies,
            as_of=as_of,
            freshness_days=freshness_days,
            configured=configured,
            seasonal=seasonal,
            engine=engine,
        )


def _evaluate(
    conn: Connection,
    policies: Sequence[Policy],
    *,
    as_of: dt.date,
    freshness_days: int,
    configured: Sequence[Policy],
    seasonal: SeasonalRule | None,
    engine: Engine | None,
) -> list[PolicyVerdicts]:
    ids = stored_policy_ids(conn)
    unknown = [p.name for p in policies if p.name not in ids]
    if unknown:
        raise KeyError(f"policies not in the store yet: {', '.join(unknown)}")
    everyone = [(p, ids[p.name]) for p in configured if p.name in ids]
    rule = seasonal or SeasonalRule()
    pairs = [(p, ids[p.name]) for p in policies]
    out = []
    for facts in load_facts(conn, pairs, as_of=as_of, all_policies=everyone, engine=engine):
        judge = Evaluator(
            facts.policy, as_of=as_of, freshness_days=freshness_days, seasonal=rule
        ).evaluate
        usage = facts.usage
        verdicts = list(map(judge, facts.members, usage))
        # Second pass: the seasonal rule, only where it can change the verdict. (Read on
        # this connection: read on the side one while the next policies were judged, it
        # measured slower, its rows waiting for the GIL.)
        again = [
            i for i, v in enumerate(verdicts) if v.kind in _CANDIDATES and v.last_used is not None
        ]
        if again:
            months = active_months(
                conn,
                app_ids=facts.app_ids,
                user_ids=[facts.user_ids[i] for i in again],
                as_of=as_of,
                months=rule.history_months,
            )
            for i in again:
                bits = months.get(facts.user_ids[i], 0)
                if bits:
                    usage[i] = usage[i]._replace(active_months=bits)
                    verdicts[i] = judge(facts.members[i], usage[i])
        out.append(
            PolicyVerdicts(
                facts.policy,
                facts.policy_id,
                as_of,
                facts.window_days,
                facts.app_ids,
                facts.user_ids,
                facts.members,
                usage,
                verdicts,
            )
        )
    return out


_CANDIDATES = frozenset(k for k in VerdictKind if k.is_candidate)


def evaluate(
    engine: Engine,
    policies: Sequence[Policy],
    *,
    as_of: dt.date,
    now: dt.datetime,
    freshness_days: int = DEFAULT_FRESHNESS_DAYS,
    configured: Sequence[Policy] = (),
) -> list[PolicyVerdicts]:
    """Verdicts for every member of each policy, as of ``as_of``.

    Brings the usage summary up to date first (a no-op unless an import skipped it).
    """
    ensure_usage_summaries(engine, now=int(now.timestamp()))
    with engine.connect() as conn:
        return evaluate_with(
            conn,
            policies,
            as_of=as_of,
            freshness_days=freshness_days,
            configured=configured,
            engine=engine,
        )


def verdict_row(policy: str, m: MemberVerdict, *, window_days: int) -> dict[str, Any]:
    """One member's verdict as a JSON-able dict (``reclaim candidates --json``)."""
    v, u = m.verdict, m.usage
    minutes = v.minutes_in_window
    return {
        "policy": policy,
        "user": m.user,
        "verdict": v.kind.value,
        "last_used": v.last_used.isoformat() if v.last_used else None,
        "minutes_in_window": None if minutes is None else round(minutes, 1),
        "window_days": window_days,
        "reason": v.reason,
        "granted_on": m.member.granted_on.isoformat() if m.member.granted_on else None,
        "last_observed": u.last_observed.isoformat() if u.last_observed else None,
    }
