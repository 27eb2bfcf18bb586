"""Savings: realized (seats reclaimed), potential (candidates not reclaimed yet), and
seats that can be dropped at each policy's renewal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine

from reclaim.config import Settings
from reclaim.domain.case import CaseState
from reclaim.domain.savings import (
    by_currency,
    next_renewal,
    policy_savings,
    renewal_outlook,
)
from reclaim.services.decisions import evaluate_in_runs
from reclaim.store.cases import case_counts, find_cases, reclaimed_since

#: Open states in which the license is on its way out (the person agreed, or no one asks).
REMOVING = (CaseState.ANSWERED_RELEASE, CaseState.REMOVAL_PENDING, CaseState.AWAITING_SYNC)


def _year_before(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def savings_report(engine: Engine, *, settings: Settings, now: dt.datetime) -> dict[str, Any]:
    """Per policy and in total: realized and potential savings, and the renewal outlook."""
    today = now.date()
    enabled = [p for p in settings.policies if p.enabled]
    # Judged in runs of policies, each policy's verdicts dropped once its row is made:
    # every member of a large tenant's policies at once would take gigabytes.
    verdicts = evaluate_in_runs(
        engine,
        enabled,
        as_of=today,
        now=now,
        freshness_days=settings.usage.freshness_days,
        configured=settings.policies,
    )
    rows = []
    realized, potential = [], []
    with engine.connect() as conn:
        counts = case_counts(conn)
    for pv in verdicts:
        with engine.connect() as conn:
            policy, pid = pv.policy, pv.policy_id
            states = {s: n for (p, s), n in counts.items() if p == pid}
            reclaimed = states.get(CaseState.REMOVED.value, 0)
            open_users = {s.user_id for s in find_cases(conn, policy_id=pid, open_only=True)}
            # Reclaimed people stay in a manual group's list until its next import.
            gone = {s.user_id for s in find_cases(conn, policy_id=pid, states=(CaseState.REMOVED,))}
            candidates = {r.user_id for r in pv.candidates()} - gone
            pending = len(candidates | open_users)
            saving = policy_savings(policy=policy, reclaimed=reclaimed, pending=pending)
            realized.append(saving.realized)
            potential.append(saving.potential)
            outlook = None
            if policy.renewal_date is not None:
                renews = next_renewal(policy.renewal_date, today)
                since = int(
                    dt.datetime.combine(_year_before(renews), dt.time(), tzinfo=dt.UTC).timestamp()
                )
                outlook = renewal_outlook(
                    policy=policy,
                    today=today,
                    assigned=pv.group_size,
                    purchased=None,
                    pending_removals=sum(states.get(s.value, 0) for s in REMOVING),
                    reclaimed_since_renewal=reclaimed_since(conn, pid, since),
                )
            rows.append(
                {
                    "policy": policy.name,
                    "seat_cost": {
                        "amount": str(policy.seat_cost.amount),
                        "currency": policy.seat_cost.currency,
                    },
                    "members": pv.group_size,
                    "candidates": len(candidates),
                    "seats_reclaimed": reclaimed,
                    "seats_pending": pending,
                    "realized": saving.realized.to_dict(),
                    "potential": saving.potential.to_dict(),
                    "cases": dict(sorted(states.items())),
                    "renewal": None
                    if outlook is None
                    else {
                        "renews_on": outlook.renews_on.isoformat(),
                        "days_left": outlook.days_left,
                        "seats_needed": outlook.seats_needed,
                        "seats_to_drop": outlook.seats_to_drop,
                        "saving": outlook.saving.to_dict(),
                        "basis": outlook.basis,
                    },
                }
            )
    totals = {
        cur: {"realized": r.to_dict(), "potential": by_currency(potential)[cur].to_dict()}
        for cur, r in by_currency(realized).items()
    }
    return {"as_of": today.isoformat(), "policies": rows, "totals": totals}
