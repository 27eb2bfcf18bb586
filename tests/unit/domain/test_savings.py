"""Savings: realized, potential, totals per currency, and seats to drop at renewal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from reclaim.domain.policy import SeatCost
from reclaim.domain.savings import (
    Savings,
    by_currency,
    next_renewal,
    policy_savings,
    renewal_outlook,
    seat_savings,
)

from .factories import make_policy

TODAY = dt.date(2025, 8, 12)


def test_seat_savings_and_totals() -> None:
    usd = seat_savings(3, SeatCost(amount=Decimal("15.50")))
    assert (usd.monthly, usd.yearly) == (Decimal("46.50"), Decimal("558.00"))
    eur = Savings("EUR", Decimal("10"))
    assert by_currency([usd, eur, usd]) == {"EUR": eur, "USD": Savings("USD", Decimal("93.00"))}
    with pytest.raises(ValueError, match="cannot add EUR to USD"):
        _ = usd + eur
    with pytest.raises(ValueError, match="negative"):
        seat_savings(-1, SeatCost(amount=Decimal(1)))


def test_realized_and_potential() -> None:
    s = policy_savings(policy=make_policy(), reclaimed=12, pending=30)
    assert s.realized.monthly == Decimal("186.00")
    assert s.potential.yearly == Decimal("5580.00")


@pytest.mark.parametrize(
    ("renewal", "expected"),
    [
        (dt.date(2025, 9, 1), dt.date(2025, 9, 1)),
        (dt.date(2023, 9, 1), dt.date(2025, 9, 1)),
        (dt.date(2024, 3, 1), dt.date(2026, 3, 1)),
        (dt.date(2024, 8, 12), TODAY),
        (dt.date(2024, 2, 29), dt.date(2026, 2, 28)),
    ],
)
def test_next_renewal(renewal: dt.date, expected: dt.date) -> None:
    assert next_renewal(renewal, TODAY) == expected
    assert next_renewal(dt.date(2024, 2, 29), dt.date(2027, 12, 1)) == dt.date(2028, 2, 29)


def test_renewal_outlook_with_purchased_seats() -> None:
    policy = make_policy(renewal_date=dt.date(2024, 10, 1))
    out = renewal_outlook(
        policy=policy,
        today=TODAY,
        assigned=180,
        purchased=250,
        pending_removals=20,
        headroom_percent=5,
    )
    assert out is not None
    assert (out.renews_on, out.days_left) == (dt.date(2025, 10, 1), 50)
    assert (out.seats_needed, out.seats_to_drop) == (168, 82)  # 160 + ceil(8.0)
    assert out.saving.yearly == Decimal("15252.00")  # 82 x 15.50 x 12


def test_renewal_outlook_estimate_and_no_date() -> None:
    policy = make_policy(renewal_date=dt.date(2025, 12, 31))
    out = renewal_outlook(
        policy=policy,
        today=TODAY,
        assigned=100,
        purchased=None,
        pending_removals=4,
        reclaimed_since_renewal=11,
    )
    assert out is not None
    assert out.seats_to_drop == 15
    assert out.basis.startswith("estimate")
    assert renewal_outlook(policy=make_policy(), today=TODAY, assigned=1, purchased=1) is None
    full = renewal_outlook(policy=policy, today=TODAY, assigned=300, purchased=250)
    assert full is not None
    assert full.seats_to_drop == 0


def test_headroom_is_exact() -> None:
    policy = make_policy(renewal_date=dt.date(2025, 12, 31))
    # 375 x 8.8 % is exactly 33 seats; float arithmetic would make it 33.000...01 → 34.
    out = renewal_outlook(
        policy=policy, today=TODAY, assigned=375, purchased=420, headroom_percent=8.8
    )
    assert out is not None
    assert out.seats_needed == 408
