"""Money: realized and potential savings, and seats to drop at renewal.

Pure functions over counts the store already has (cases per state, group sizes).
Amounts are :class:`~decimal.Decimal` and never mix currencies.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from reclaim.domain.policy import Policy, SeatCost


@dataclass(frozen=True, slots=True)
class Savings:
    """A monthly amount in one currency; ``yearly`` is twelve months of it."""

    currency: str
    monthly: Decimal

    @property
    def yearly(self) -> Decimal:
        """The same saving over twelve months."""
        return self.monthly * 12

    def __add__(self, other: Savings) -> Savings:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Savings(self.currency, self.monthly + other.monthly)

    def to_dict(self) -> dict[str, str]:
        """JSON-able form; amounts as strings so no float ever touches money."""
        return {"currency": self.currency, "monthly": str(self.monthly), "yearly": str(self.yearly)}


def seat_savings(seats: int, cost: SeatCost) -> Savings:
    """What ``seats`` seats cost (and so save) per month at ``cost``."""
    if seats < 0:
        raise ValueError(f"seat count must not be negative (got {seats})")
    return Savings(cost.currency, cost.amount * seats)


@dataclass(frozen=True, slots=True)
class PolicySavings:
    """One policy's realized and potential savings."""

    policy: str
    seats_reclaimed: int
    seats_pending: int
    realized: Savings
    potential: Savings


def policy_savings(*, policy: Policy, reclaimed: int, pending: int) -> PolicySavings:
    """Realized and potential savings for one policy.

    ``reclaimed``: seats taken back and not given back (cases in ``removed``; a restored
    case leaves that state, so a regret costs its saving back by itself).
    ``pending``: candidates and open cases not yet reclaimed.
    """
    return PolicySavings(
        policy=policy.name,
        seats_reclaimed=reclaimed,
        seats_pending=pending,
        realized=seat_savings(reclaimed, policy.seat_cost),
        potential=seat_savings(pending, policy.seat_cost),
    )


def by_currency(amounts: Iterable[Savings]) -> dict[str, Savings]:
    """Totals per currency, keyed and ordered by currency code."""
    totals: dict[str, Savings] = {}
    for s in amounts:
        totals[s.currency] = totals[s.currency] + s if s.currency in totals else s
    return dict(sorted(totals.items()))


def next_renewal(renewal_date: dt.date, today: dt.date) -> dt.date:
    """The renewal on or after ``today``, rolling a past date forward by whole years.

    A 29 February renewal falls on 28 February in common years.
    """
    if renewal_date >= today:
        return renewal_date
    year = today.year
    while True:
        try:
            candidate = renewal_date.replace(year=year)
        except ValueError:
            candidate = renewal_date.replace(year=year, day=28)
        if candidate >= today:
            return candidate
        year += 1


@dataclass(frozen=True, slots=True)
class RenewalOutlook:
    """Seats one policy can drop at its next renewal, and what that saves per year."""

    policy: str
    renews_on: dt.date
    days_left: int
    seats_needed: int
    seats_to_drop: int
    saving: Savings
    basis: str


def renewal_outlook(
    *,
    policy: Policy,
    today: dt.date,
    assigned: int,
    purchased: int | None,
    pending_removals: int = 0,
    reclaimed_since_renewal: int = 0,
    headroom_percent: float = 0.0,
) -> RenewalOutlook | None:
    """Seats that can be dropped at the policy's next renewal, or ``None`` without a date.

    Seats needed = members now (``assigned``) minus removals already under way, plus
    ``headroom_percent`` for growth, rounded up. With ``purchased`` known (e.g. Graph
    ``subscribedSkus.prepaidUnits``), drop = purchased − needed. Without it, the
    estimate is the seats Reclaim freed since the last renewal plus those pending: an
    upper bound, since it assumes no freed seat was handed out again.
    """
    if policy.renewal_date is None:
        return None
    renews_on = next_renewal(policy.renewal_date, today)
    needed_now = max(0, assigned - pending_removals)
    # Decimal, not float: 7 % of 100 must be 7 seats, not ceil(7.000000000000001) = 8.
    needed = needed_now + math.ceil(needed_now * Decimal(str(headroom_percent)) / 100)
    if purchased is not None:
        drop = max(0, purchased - needed)
        basis = f"{purchased} purchased, {needed} needed ({headroom_percent:g}% headroom)"
    else:
        drop = reclaimed_since_renewal + pending_removals
        basis = "estimate: seats freed since the last renewal plus pending removals"
    return RenewalOutlook(
        policy=policy.name,
        renews_on=renews_on,
        days_left=(renews_on - today).days,
        seats_needed=needed,
        seats_to_drop=drop,
        saving=seat_savings(drop, policy.seat_cost),
        basis=basis,
    )
