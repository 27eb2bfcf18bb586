"""Counts behind the dashboard, the campaigns page and ``/api/v1/reports``.

Every figure is one aggregate query over ``cases`` (and ``notifications``), never a
row per case in Python, so the dashboard costs about the same with 100,000 cases as
with 100. Definitions, used the same way everywhere:

- **asked**: a question was delivered (``asked_at`` set); **reminded**: at least one
  reminder went out;
- **answered**: the person answered (``answered_at``); *kept* if the case ended in
  ``answered_keep``, *released* otherwise;
- **no response**: asked, never answered, and the question is over (timed out, then
  kept or removed by the policy's default);
- **awaiting answer**: asked or reminded now;
- **could not ask**: delivery failed for good;
- **response rate**: answered ÷ asked (as ``services.campaign_report`` counts it);
- **regret rate**: restored ÷ (removed + restored): seats taken, then given back.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from reclaim.config import Settings
from reclaim.domain.case import CaseState
from reclaim.services.halt_alerts import halted_policies
from reclaim.store.leases import PAUSED, get_control
from reclaim.store.plans import PlanStatus
from reclaim.store.tables import cases, notifications, plans, policies, sources

_S = CaseState
_WAITING = (_S.ASKED.value, _S.REMINDED.value)
_NOT_TIMED_OUT = (*_WAITING, _S.CANCELLED.value, _S.COULD_NOT_ASK.value)


def _count(cond: Any) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def funnel_by_policy(conn: Connection) -> dict[str, dict[str, int]]:
    """Per policy name: opened, asked, reminded, answered, kept, released, no_response,
    awaiting, could_not_ask, removed, restored, failed, open."""
    asked = cases.c.asked_at.is_not(None)
    answered = cases.c.answered_at.is_not(None)
    query = (
        select(
            policies.c.name,
            func.count().label("opened"),
            _count(asked).label("asked"),
            _count(cases.c.reminders_sent > 0).label("reminded"),
            _count(answered).label("answered"),
            _count(cases.c.state == _S.ANSWERED_KEEP.value).label("kept"),
            _count(and_(answered, cases.c.state != _S.ANSWERED_KEEP.value)).label("released"),
            _count(
                and_(asked, cases.c.answered_at.is_(None), cases.c.state.not_in(_NOT_TIMED_OUT))
            ).label("no_response"),
            _count(cases.c.state.in_(_WAITING)).label("awaiting"),
            _count(cases.c.state == _S.COULD_NOT_ASK.value).label("could_not_ask"),
            _count(cases.c.state == _S.REMOVED.value).label("removed"),
            _count(cases.c.state == _S.RESTORED.value).label("restored"),
            _count(cases.c.state == _S.FAILED.value).label("failed"),
            _count(cases.c.is_open.is_(True)).label("open"),
        )
        .join(policies, policies.c.id == cases.c.policy_id)
        .group_by(policies.c.name)
        .order_by(policies.c.name)
    )
    return {
        r[0]: {k: int(v) for k, v in r._mapping.items() if k != "name"} for r in conn.execute(query)
    }


FUNNEL_KEYS = (
    "opened",
    "asked",
    "reminded",
    "answered",
    "kept",
    "released",
    "no_response",
    "awaiting",
    "could_not_ask",
    "removed",
    "restored",
    "failed",
    "open",
)


def with_rates(counts: dict[str, int]) -> dict[str, Any]:
    """Counts plus response and regret rates (None when nothing to divide by)."""
    taken = counts["removed"] + counts["restored"]
    return {
        **counts,
        "response_rate": round(counts["answered"] / counts["asked"], 4)
        if counts["asked"]
        else None,
        "regret_rate": round(counts["restored"] / taken, 4) if taken else None,
    }


def funnel(conn: Connection) -> dict[str, Any]:
    """The campaign funnel: in total and per policy, with rates."""
    per = funnel_by_policy(conn)
    total = {k: sum(p[k] for p in per.values()) for k in FUNNEL_KEYS}
    return {
        "total": with_rates(total),
        "policies": {name: with_rates(c) for name, c in per.items()},
    }


def answer_times(conn: Connection) -> dict[str, float | None]:
    """Hours from question to answer: mean, and the count it is over."""
    gap = cases.c.answered_at - cases.c.asked_at
    row = conn.execute(
        select(func.count(), func.avg(gap), func.min(gap), func.max(gap)).where(
            cases.c.answered_at.is_not(None), cases.c.asked_at.is_not(None)
        )
    ).one()
    n, avg, lo, hi = row
    return {
        "answers": int(n or 0),
        "mean_hours": None if avg is None else round(float(avg) / 3600, 1),
        "min_hours": None if lo is None else round(float(lo) / 3600, 1),
        "max_hours": None if hi is None else round(float(hi) / 3600, 1),
    }


def notification_counts(conn: Connection) -> dict[str, int]:
    """Questions and reminders recorded, sent and failed."""
    rows = conn.execute(
        select(notifications.c.kind, notifications.c.status, func.count()).group_by(
            notifications.c.kind, notifications.c.status
        )
    )
    out: dict[str, int] = defaultdict(int)
    for kind, status, n in rows:
        out[f"{kind}_{status}"] += int(n)
    return dict(out)


def month_key(day: dt.date) -> str:
    """``YYYY-MM``."""
    return f"{day.year:04d}-{day.month:02d}"


def last_months(today: dt.date, n: int) -> list[str]:
    """The ``n`` months up to and including ``today``'s, oldest first."""
    y, m = today.year, today.month
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def _month_start(key: str) -> dt.datetime:
    return dt.datetime(int(key[:4]), int(key[5:7]), 1, tzinfo=dt.UTC)


def reclaimed_by_month(
    conn: Connection, settings: Settings, *, today: dt.date, months: int = 12
) -> dict[str, Any]:
    """Seats reclaimed per month (cases that reached ``removed`` and stayed there), and
    the monthly saving those seats added, per currency; the last ``months`` months."""
    keys = last_months(today, months)
    since = int(_month_start(keys[0]).timestamp())
    # Grouped by day in SQL (integer division is the same on both databases), then
    # bucketed into calendar months here: at most months × 31 × policies rows.
    day = (cases.c.closed_at / 86400).label("day")
    rows = conn.execute(
        select(policies.c.name, day, func.count())
        .join(policies, policies.c.id == cases.c.policy_id)
        .where(cases.c.state == _S.REMOVED.value, cases.c.closed_at >= since)
        .group_by(policies.c.name, day)
    )
    cost = {p.name: p.seat_cost for p in settings.policies}
    seats = dict.fromkeys(keys, 0)
    per_policy: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(keys, 0))
    money: dict[str, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(keys, Decimal(0)))
    for name, d, n in rows:
        key = month_key(dt.date(1970, 1, 1) + dt.timedelta(days=int(d)))
        if key not in seats:
            continue
        seats[key] += int(n)
        per_policy[name][key] += int(n)
        if name in cost:
            money[cost[name].currency][key] += cost[name].amount * int(n)
    return {
        "months": keys,
        "seats": [seats[k] for k in keys],
        "per_policy": {p: [v[k] for k in keys] for p, v in sorted(per_policy.items())},
        "monthly_saving_added": {
            cur: [str(v[k]) for k in keys] for cur, v in sorted(money.items())
        },
    }


def reclaimed_counts(conn: Connection, *, now: dt.datetime) -> dict[str, int]:
    """Seats reclaimed (and still reclaimed) this month, this year and all time."""
    month = int(dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC).timestamp())
    year = int(dt.datetime(now.year, 1, 1, tzinfo=dt.UTC).timestamp())
    row = conn.execute(
        select(
            func.count(),
            _count(cases.c.closed_at >= month),
            _count(cases.c.closed_at >= year),
        ).where(cases.c.state == _S.REMOVED.value)
    ).one()
    return {"all_time": int(row[0]), "this_month": int(row[1]), "this_year": int(row[2])}


@dataclass(frozen=True, slots=True)
class Attention:
    """Something an operator should look at, with where to look."""

    kind: str
    message: str
    link: str


def attention(conn: Connection, settings: Settings, *, now: dt.datetime) -> list[Attention]:
    """The kill switch, policies halted by the mass-removal guard, failed cases, plans
    awaiting approval, stale usage sources."""
    out: list[Attention] = []
    control = get_control(conn, PAUSED)
    if settings.safety.paused:
        out.append(
            Attention(
                "paused",
                "Kill switch on (safety.paused in the configuration file): no directory writes.",
                "/control",
            )
        )
    elif control is not None and control[0] == "1":
        out.append(
            Attention(
                "paused",
                f"Kill switch on since {_fmt(control[1])} by {control[2]}: no directory writes.",
                "/control",
            )
        )
    for halt in halted_policies(conn, settings):
        out.append(
            Attention(
                "halted",
                f"Policy {halt.policy!r} halted by the mass-removal guard since "
                f"{_fmt(halt.since)}: nothing is asked or removed for it. {halt.alert}",
                f"/plans/{halt.plan_id}" if halt.plan_id is not None else "/plans",
            )
        )
    failed = conn.execute(select(func.count()).where(cases.c.state == _S.FAILED.value)).scalar_one()
    if failed:
        out.append(
            Attention("failed", f"{failed:,} failed case(s) need a look.", "/cases?state=failed")
        )
    waiting = conn.execute(
        select(func.count()).where(plans.c.status == PlanStatus.AWAITING_APPROVAL)
    ).scalar_one()
    if waiting:
        out.append(
            Attention(
                "approval",
                f"{waiting:,} plan(s) awaiting approval.",
                "/plans?status=awaiting_approval",
            )
        )
    cutoff = int(now.timestamp()) - settings.usage.freshness_days * 86400
    for name, last in conn.execute(
        select(sources.c.name, sources.c.last_received).order_by(sources.c.name)
    ):
        if last is None or int(last) < cutoff:
            out.append(
                Attention(
                    "stale",
                    f"Usage source {name!r} delivered nothing in the last "
                    f"{settings.usage.freshness_days} days (last: {_fmt(last)}).",
                    "/",
                )
            )
    return out


def _fmt(ts: int | None) -> str:
    if ts is None:
        return "never"
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
