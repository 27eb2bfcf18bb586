"""Verdicts for every member of a policy's group, as of a date.

Loads the facts in a few set-based queries (``store.facts``) and runs the domain's
:class:`~reclaim.domain.usage.Evaluator` over them. The seasonal rule needs two years
of monthly history; it is loaded in a second pass only for the members who would
otherwise be candidates, which gives the same verdicts as loading it for everyone
(the rule is never consulted for anyone else) at a fraction of the reads.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from reclaim.domain.policy import Policy
from reclaim.domain.usage import (
    DEFAULT_FRESHNESS_DAYS,
    Evaluator,
    SeasonalRule,
    Verdict,
    VerdictKind,
)
from reclaim.store.facts import MemberRow, active_months, load_facts
from reclaim.store.summaries import ensure_usage_summaries
from reclaim.store.tables import policies as policies_table


@dataclass(frozen=True, slots=True)
class PolicyVerdicts:
    """Every member's verdict for one policy, as of one date."""

    policy: Policy
    policy_id: int
    as_of: dt.date
    window_days: int
    app_ids: tuple[int, ...]
    members: list[MemberRow]  # every row has its ``verdict`` set

    @property
    def group_size(self) -> int:
        """Active members of the license group."""
        return len(self.members)

    def candidates(self) -> list[MemberRow]:
        """Members whose verdict makes them reclamation candidates."""
        return [m for m in self.members if verdict_of(m).kind.is_candidate]

    def breakdown(self) -> dict[str, int]:
        """How many members got each verdict (every kind listed, zeros included)."""
        counts = Counter(verdict_of(m).kind for m in self.members)
        return {k.value: counts.get(k, 0) for k in VerdictKind}


def verdict_of(row: MemberRow) -> Verdict:
    """The verdict of an evaluated member row."""
    if row.verdict is None:
        raise ValueError(f"{row.user} has not been evaluated")
    return row.verdict


def stored_policy_ids(conn: Connection) -> dict[str, int]:
    """Policy name → stored id (policies are synced from the config at startup)."""
    return {
        str(n): int(i) for i, n in conn.execute(select(policies_table.c.id, policies_table.c.name))
    }


def evaluate_with(
    conn: Connection,
    policies: Sequence[Policy],
    *,
    as_of: dt.date,
    freshness_days: int = DEFAULT_FRESHNESS_DAYS,
    configured: Sequence[Policy] = (),
    seasonal: SeasonalRule | None = None,
) -> list[PolicyVerdicts]:
    """Verdicts for ``policies`` on an open connection (summaries must be current)."""
    ids = stored_policy_ids(conn)
    unknown = [p.name for p in policies if p.name not in ids]
    if unknown:
        raise KeyError(f"policies not in the store yet: {', '.join(unknown)}")
    pairs = [(p, ids[p.name]) for p in policies]
    everyone = [(p, ids[p.name]) for p in configured if p.name in ids]
    rule = seasonal or SeasonalRule()
    out = []
    for facts in load_facts(conn, pairs, as_of=as_of, all_policies=everyone):
        evaluator = Evaluator(
            facts.policy, as_of=as_of, freshness_days=freshness_days, seasonal=rule
        )
        judge = evaluator.evaluate
        rows = facts.rows
        for r in rows:
            r.verdict = judge(r.member, r.usage)
        # Second pass: the seasonal rule, only where it can change the verdict.
        again = [
            r
            for r in rows
            if r.verdict.kind.is_candidate and r.verdict.last_used is not None  # type: ignore[union-attr]
        ]
        if again:
            months = active_months(
                conn,
                app_ids=facts.app_ids,
                user_ids=[r.user_id for r in again],
                as_of=as_of,
                months=rule.history_months,
            )
            for r in again:
                bits = months.get(r.user_id, 0)
                if bits:
                    r.usage = r.usage._replace(active_months=bits)
                    r.verdict = judge(r.member, r.usage)
        out.append(
            PolicyVerdicts(
                facts.policy, facts.policy_id, as_of, facts.window_days, facts.app_ids, rows
            )
        )
    return out


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
            conn, policies, as_of=as_of, freshness_days=freshness_days, configured=configured
        )


def verdict_row(policy: str, m: MemberRow, *, window_days: int) -> dict[str, Any]:
    """One member's verdict as a JSON-able dict (``reclaim candidates --json``)."""
    v, u = verdict_of(m), m.usage
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
