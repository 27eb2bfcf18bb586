"""Verdicts for every member of a policy's group, as of a date.

Loads the facts in a few set-based queries (``store.facts``, as columns) and has the
domain judge each policy's members in one batch (``domain.usage_columns``: the
:class:`~reclaim.domain.usage.Evaluator`'s rules as array comparisons). The seasonal
rule needs two years of monthly history; it is read only for the members the batch
says it could explain (a last use whose verdict would otherwise be unused or
underused, recent enough and with enough history observed before it). That gives the
same verdicts as reading it for everyone (the rule is never consulted for anyone
else) at a fraction of the reads.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, select

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
from reclaim.domain.usage_columns import FactColumns, Judgement
from reclaim.store.facts import active_months, load_facts
from reclaim.store.summaries import ensure_usage_summaries
from reclaim.store.tables import memberships
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
    # The facts stay columns; the per-member tuples are built by rows() and
    # candidates() (most callers want the candidates only, a small part of the members).
    facts: FactColumns
    verdicts: list[Verdict]

    @property
    def group_size(self) -> int:
        """Active members of the license group."""
        return len(self.user_ids)

    def rows(self) -> Iterator[MemberVerdict]:
        """Every member with their verdict."""
        f = self.facts
        for row in zip(self.user_ids, f.members(), f.usages(), self.verdicts, strict=True):
            yield MemberVerdict(*row)

    def candidates(self) -> list[MemberVerdict]:
        """Members whose verdict makes them reclamation candidates."""
        f = self.facts
        return [
            MemberVerdict(self.user_ids[i], f.member(i), f.usage(i), v)
            for i, v in enumerate(self.verdicts)
            if v.kind.is_candidate
        ]

    def breakdown(self) -> dict[str, int]:
        """How many members got each verdict (every kind listed, zeros included)."""
        counts = Counter(v.kind for v in self.verdicts)
        return {k.value: counts.get(k, 0) for k in VerdictKind}


_new = tuple.__new__
_CANDIDATES = frozenset(k for k in VerdictKind if k.is_candidate)


def stored_policy_ids(conn: Connection) -> dict[str, int]:
    """Policy name → stored id (policies are synced from the config at startup)."""
    rows = conn.execute(select(policies_table.c.id, policies_table.c.name))
    return {str(n): int(i) for i, n in rows}


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """A run builds about half a million small tuples and none of them form cycles:
    the cyclic collector would only walk them again and again (measured ~5-10 % of a
    run), and all of them at once as soon as it is enabled again (~15 %, measured).
    So it is off during the run, and what the run built then goes straight to the
    oldest generation, which only the rare full collections visit: ``gc.freeze()``
    and ``gc.unfreeze()`` are two list splices, no walk. Skipped when the process
    keeps objects frozen on purpose (a pre-fork server): unfreeze would thaw those."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
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
    loaded = load_facts(conn, pairs, as_of=as_of, all_policies=everyone, engine=engine)
    judges = [
        Evaluator(pf.policy, as_of=as_of, freshness_days=freshness_days, seasonal=rule)
        for pf in loaded
    ]
    out = []
    for pf, judge in zip(loaded, judges, strict=True):
        f = pf.facts
        judgement = Judgement(judge, f, pf.days)
        # The seasonal rule needs month history, and only the members it could explain
        # are asked for it. (Read on the side connection while the next policies were
        # judged, it measured no faster: its rows wait for the GIL.)
        wanted = judgement.history_wanted()
        if wanted:
            bits = active_months(
                conn,
                app_ids=pf.app_ids,
                user_ids=[pf.user_ids[i] for i in wanted],
                as_of=as_of,
                months=rule.history_months,
            )
            for i in wanted:
                f.active_months[i] = bits.get(pf.user_ids[i], 0)
        kinds, reasons = judgement.verdicts()
        # Every member's verdict tuple, built in C (tuple.__new__ over zipped columns).
        verdicts = list(
            map(
                partial(_new, Verdict),
                zip(kinds, reasons, f.last_used, f.minutes_in_window, strict=True),
            )
        )
        out.append(
            PolicyVerdicts(
                pf.policy,
                pf.policy_id,
                as_of,
                pf.window_days,
                pf.app_ids,
                pf.user_ids,
                f,
                verdicts,
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
            conn,
            policies,
            as_of=as_of,
            freshness_days=freshness_days,
            configured=configured,
            engine=engine,
        )


#: Active memberships judged per call by :func:`evaluate_in_runs`: all of a large
#: tenant's policies in one call hold every member's facts and verdicts at once (about
#: 1.5 GB at 500,000 people and 1.5 million memberships); one policy a call repeats
#: the per-call reads for each of hundreds of policies (measured about three times
#: slower, bench/scale.py).
RUN_MEMBERS = 200_000


def policy_runs(
    conn: Connection, policies: Sequence[Policy], *, members: int = RUN_MEMBERS
) -> list[list[Policy]]:
    """``policies`` in order, cut into runs of at most ``members`` active memberships
    (a policy with more is a run of its own)."""
    rows = conn.execute(
        select(policies_table.c.name, func.count())
        .join(memberships, memberships.c.policy_id == policies_table.c.id)
        .where(memberships.c.active.is_(True))
        .group_by(policies_table.c.name)
    )
    sizes = {str(name): int(n) for name, n in rows}
    runs: list[list[Policy]] = []
    held = 0
    for policy in policies:
        size = sizes.get(policy.name, 0)
        if not runs or (runs[-1] and held + size > members):
            runs.append([])
            held = 0
        runs[-1].append(policy)
        held += size
    return runs


def evaluate_in_runs(
    engine: Engine,
    policies: Sequence[Policy],
    *,
    as_of: dt.date,
    now: dt.datetime,
    freshness_days: int = DEFAULT_FRESHNESS_DAYS,
    configured: Sequence[Policy] = (),
    members: int | None = None,
) -> Iterator[PolicyVerdicts]:
    """The verdicts of :func:`evaluate`, policy by policy, judged in runs of about
    ``members`` memberships (default :data:`RUN_MEMBERS`; :func:`policy_runs`): a
    caller that keeps only what it needs from each policy holds one run's verdicts at
    a time, not the tenant's.

    Each run is handed over and dropped before the next is judged.
    """
    ensure_usage_summaries(engine, now=int(now.timestamp()))
    with engine.connect() as conn:
        runs = policy_runs(conn, policies, members=members or RUN_MEMBERS)
    for run in runs:
        with engine.connect() as conn:
            judged = evaluate_with(
                conn,
                run,
                as_of=as_of,
                freshness_days=freshness_days,
                configured=configured,
                engine=engine,
            )
        judged.reverse()
        while judged:  # popped as handed over: the caller's reference is the last one
            yield judged.pop()


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
