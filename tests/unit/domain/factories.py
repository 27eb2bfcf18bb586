"""Small builders shared by the domain tests: a policy, aware times, usage histories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from reclaim.domain.policy import Policy
from reclaim.domain.usage import UsageFacts, month_bits

UTC = dt.UTC
GROUP_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday


def make_policy(**overrides: Any) -> Policy:
    """A valid Entra ID policy; keyword arguments replace top-level keys."""
    base: dict[str, Any] = {
        "name": "Visio",
        "apps": ("visio",),
        "group": {"entra_id": GROUP_ID},
        "workflow": "entra_id",
        "seat_cost": {"amount": "15.50"},
        "unused_days": 30,
        "underuse": {"min_minutes": 120, "window_days": 90},
        "grace_days": 14,
        "exclude": {"users": ["ceo@example.com"], "groups": ["VIP"]},
    }
    base.update(overrides)
    return Policy.model_validate(base)


def day(n: float, hour: int = 0) -> dt.datetime:
    """``n`` days after T0 (plus ``hour`` hours): explicit times, no clock."""
    return T0 + dt.timedelta(days=n, hours=hour)


def facts(
    uses: Mapping[dt.date, float],
    observed: Iterable[dt.date],
    *,
    as_of: dt.date,
    window_days: int = 90,
    durations: bool = True,
) -> UsageFacts:
    """What the store would compute from daily roll-ups: uses (day → minutes) of the
    policy's apps, plus the days anything at all was reported for the user."""
    seen = sorted({*observed, *uses})
    past = [d for d in uses if d <= as_of]
    start = as_of - dt.timedelta(days=window_days - 1)
    minutes = sum(m for d, m in uses.items() if start <= d <= as_of)
    return UsageFacts(
        last_used=max(past) if past else None,
        minutes_in_window=float(minutes) if durations else None,
        first_observed=seen[0] if seen else None,
        last_observed=max((d for d in seen if d <= as_of), default=None),
        active_months=month_bits(past, as_of=as_of),
    )


def daily(start: dt.date, end: dt.date, step: int = 1) -> list[dt.date]:
    """Every ``step``-th day from ``start`` to ``end`` inclusive."""
    return [start + dt.timedelta(days=i) for i in range(0, (end - start).days + 1, step)]
