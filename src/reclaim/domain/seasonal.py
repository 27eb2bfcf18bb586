"""The seasonal rule: when a quiet period is explained by a recurring pattern of use.

Documented in ``docs/verdicts.md`` ("The seasonal rule"). Months are counted back from
as_of's month (0 = this month) as bits of ``UsageFacts.active_months``
(:func:`month_bits`). :meth:`SeasonalRule.explain` judges one member;
:meth:`SeasonalRule.may_explain` says, for many members at once and from their first
and last days alone, whom it could possibly explain, so that the month history is read
only for them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt


def month_index(day: dt.date) -> int:
    """A month as one integer (``year * 12 + month - 1``), for month arithmetic."""
    return day.year * 12 + day.month - 1


def month_indexes(days: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """:func:`month_index` of each day number (days since 1970-01-01, every one a real day)."""
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return months + 1970 * 12


def month_bits(days: Iterable[dt.date], *, as_of: dt.date, months: int = 26) -> int:
    """Pack days of use into ``UsageFacts.active_months`` (bit 0 = as_of's month)."""
    top = month_index(as_of)
    bits = 0
    for day in days:
        ago = top - month_index(day)
        if 0 <= ago < months:
            bits |= 1 << ago
    return bits


def _month_start(index: int) -> dt.date:
    return dt.date(index // 12, index % 12 + 1, 1)


@lru_cache(maxsize=4096)
def _phase_masks(period: int, start: int, width: int, limit: int) -> tuple[tuple[int, ...], int]:
    """In-phase masks, one per earlier cycle, and the off-phase mask.

    Indexes are months ago. The burst is months ``start .. start+width-1``; history is
    the months after it up to ``limit``. Cycle *c* is the burst shifted *c* periods back.
    """
    cycles: list[int] = []
    in_phase = 0
    c = 1
    while start + c * period <= limit:
        mask = 0
        for j in range(width):
            if start + c * period + j <= limit:
                mask |= 1 << (start + c * period + j)
        cycles.append(mask)
        in_phase |= mask
        c += 1
    history = ((1 << (limit + 1)) - 1) & ~((1 << (start + width)) - 1)
    return tuple(cycles), history & ~in_phase


@dataclass(frozen=True, slots=True)
class SeasonalRule:
    """When a quiet period is explained by a recurring pattern (``docs/verdicts.md``).

    - ``periods``: ``(months, min_cycles)`` pairs, tried in order: a period length and
      how many earlier cycles must show use in the same phase as the last burst;
    - ``lookback_months``: how far before the last burst history is read;
    - ``max_burst_months``: how many consecutive active months ending at the last use
      make up the burst (quarter-end work often spills into the next month);
    - ``horizon_days``: the next expected window must start within this many days;
    - ``min_contrast``: in-phase activity rate minus off-phase activity rate must reach
      this, so a steady user who stopped is not mistaken for a seasonal one.
    """

    periods: tuple[tuple[int, int], ...] = ((3, 2), (12, 1))
    lookback_months: int = 12
    max_burst_months: int = 2
    horizon_days: int = 62
    min_contrast: float = 0.5

    def __post_init__(self) -> None:
        for months, cycles in self.periods:
            if months < 2 or cycles < 1 or months * cycles > self.lookback_months:
                raise ValueError(
                    f"seasonal period ({months}, {cycles}) needs months >= 2, cycles >= 1 "
                    f"and months * cycles <= lookback_months ({self.lookback_months})"
                )
        shortest = min((m for m, _ in self.periods), default=2)
        if not 1 <= self.max_burst_months < shortest:
            raise ValueError("max_burst_months must be at least 1 and shorter than every period")

    @property
    def history_months(self) -> int:
        """How many months of ``active_months`` bits the store must provide."""
        longest = max((m for m, _ in self.periods), default=0)
        return longest + self.max_burst_months + self.lookback_months

    def explain(self, as_of: dt.date, last: dt.date, first: dt.date, active: int) -> str | None:
        """The seasonal reason for a member last using the apps on ``last``, observed
        since ``first``, with ``active`` month bits; ``None`` when no recurring pattern
        explains the quiet."""
        now = month_index(as_of)
        start = now - month_index(last)  # months since the last active month
        observed_limit = now - month_index(first)
        if start < 0 or observed_limit <= start:  # facts from after as_of: no history to read
            return None
        width = 1
        while width < self.max_burst_months and active >> (start + width) & 1:
            width += 1
        for period, min_cycles in self.periods:
            if start - period > 0:
                continue  # the expected window has passed without use: the pattern broke
            # The next window opens one period after the burst's first month.
            opens = _month_start(now - (start + width - 1) + period)
            ahead = (opens - as_of).days
            if ahead > self.horizon_days:
                continue
            limit = min(start + width - 1 + self.lookback_months, observed_limit)
            cycles, off = _phase_masks(period, start, width, limit)
            hits = sum(1 for mask in cycles if active & mask)
            if hits < min_cycles:
                continue
            off_total = off.bit_count()
            off_rate = (active & off).bit_count() / off_total if off_total else 0.0
            if hits / len(cycles) - off_rate < self.min_contrast:
                continue
            label = "quarterly" if period == 3 else "yearly" if period == 12 else f"{period}-month"
            return (
                f"{label} pattern: used in the same months in {hits} of the previous "
                f"{len(cycles)} cycles; next expected from {opens} "
                + (f"(in {ahead} days)" if ahead > 0 else "(window open now)")
            )
        return None

    def may_explain(
        self, as_of: dt.date, last: npt.NDArray[np.int64], first: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """Whom :meth:`explain` could explain, whatever their month bits, given their
        last use and first day observed as day numbers (every one a real day).

        A necessary condition only, checked per period: the last use is recent enough
        for the period's next window not to have passed, that window can open within
        the horizon (with the widest burst, the earliest it can), and the member was
        observed long enough before the last use for ``min_cycles`` earlier cycles to
        fit. A store holding a short history (a new deployment) gets "no one" here.
        """
        now = month_index(as_of)
        start = now - month_indexes(last)
        limit = now - month_indexes(first)
        found = np.zeros(len(last), np.bool_)
        for period, min_cycles in self.periods:
            # Whether the next window can open within the horizon, per start 0 .. period.
            soon = np.array(
                [
                    (_month_start(now - s - self.max_burst_months + 1 + period) - as_of).days
                    <= self.horizon_days
                    for s in range(period + 1)
                ],
                np.bool_,
            )
            fits = (start >= 0) & (start <= period) & (start + min_cycles * period <= limit)
            found |= fits & soon[np.clip(start, 0, period)]
        return found
