"""Verdicts: for one member of a policy's group, as of a date, exactly one verdict.

The store computes compact facts per member (:class:`MemberFacts`, :class:`UsageFacts`)
in SQL; an :class:`Evaluator`, built once per (policy, as_of), turns them into a
:class:`Verdict` in a few microseconds. Precedence, rules and the seasonal rule are
documented in ``docs/verdicts.md``; the one principle behind them is that missing data
can only ever *hide* use, never invent it, so "used" verdicts may be reached on partial
data and "not used" verdicts never are.

The per-member values are named tuples rather than frozen dataclasses: just as
immutable, but several times cheaper to build. A whole policy's members travel as
:class:`FactColumns` (one list per field, no tuple per member) and are judged in one
call (:meth:`Evaluator.judge_columns`): most members are plainly in use, and that is
decided for all of them at once by comparing day numbers; everyone else goes through
the same per-member rules as :meth:`Evaluator.evaluate`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache, partial
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from reclaim.domain.names import user_key
from reclaim.domain.policy import Policy

DEFAULT_FRESHNESS_DAYS = 7


class VerdictKind(StrEnum):
    """The verdict on one member. Only ``unused`` and ``underused`` make a candidate."""

    EXCLUDED = "excluded"
    GRACE = "grace"
    IN_USE = "in_use"
    NO_DATA = "no_data"
    SEASONAL = "seasonal"
    UNUSED = "unused"
    UNDERUSED = "underused"

    @property
    def is_candidate(self) -> bool:
        """Whether this verdict makes the member a reclamation candidate."""
        return self in _CANDIDATE_KINDS


_CANDIDATE_KINDS = frozenset({VerdictKind.UNUSED, VerdictKind.UNDERUSED})

#: The order in which rules are tried; the first that matches is the verdict.
PRECEDENCE: tuple[VerdictKind, ...] = tuple(VerdictKind)


class MemberFacts(NamedTuple):
    """Who the member is. ``user`` is a :func:`user_key`; ``groups`` are lower-cased
    group ids and names. ``granted_on`` is when they got the license, or when Reclaim
    first saw the membership; ``None`` means unknown (no grace period applies)."""

    user: str
    groups: frozenset[str] = frozenset()
    granted_on: dt.date | None = None

    @classmethod
    def of(
        cls, user: str, groups: Iterable[str] = (), granted_on: dt.date | None = None
    ) -> MemberFacts:
        """Build facts from raw directory values, normalizing the keys."""
        return cls(user_key(user), frozenset(g.strip().lower() for g in groups), granted_on)


class UsageFacts(NamedTuple):
    """What Reclaim knows about one member's use of one policy's apps, as of a date.

    - ``last_used``: the last day any of the policy's apps was used;
    - ``minutes_in_window``: minutes of use in the ``window_days`` days ending at as_of,
      or ``None`` when no source in the window reported durations (then underuse is
      not judged: zero minutes would be a guess, not a measurement);
    - ``first_observed`` / ``last_observed``: the first and last day anything at all
      (any app, any source) was reported for this user;
    - ``active_months``: bit *i* set when the apps were used in the calendar month *i*
      months before as_of's month (see :func:`month_bits`); feeds the seasonal rule.
    """

    last_used: dt.date | None = None
    minutes_in_window: float | None = None
    first_observed: dt.date | None = None
    last_observed: dt.date | None = None
    active_months: int = 0


class Verdict(NamedTuple):
    """One verdict with the human reason behind it."""

    kind: VerdictKind
    reason: str
    last_used: dt.date | None
    minutes_in_window: float | None


_new = tuple.__new__

#: Day numbers count days since 1970-01-01 (as the store keeps them); this one stands
#: for "no day" (``None``) in :class:`DayNumbers`, below every real day.
NO_DAY = int(np.iinfo(np.int64).min)
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class FactColumns:
    """The facts of many members of one policy: the fields of :class:`MemberFacts` and
    :class:`UsageFacts`, one list each, in the same member order.

    A run judges a million members; a list per field costs a few objects per policy
    where tuples cost several per member (and the cyclic collector's walk over them).
    ``active_months`` may be updated in place before judging (the seasonal pass).
    """

    users: list[str]
    groups: list[frozenset[str]]
    granted_on: list[dt.date | None]
    last_used: list[dt.date | None]
    minutes_in_window: list[float | None]
    first_observed: list[dt.date | None]
    last_observed: list[dt.date | None]
    active_months: list[int]

    def __post_init__(self) -> None:
        n = len(self.users)
        if any(len(getattr(self, f)) != n for f in self.__slots__):
            raise ValueError("every column of FactColumns must have one value per member")

    def __len__(self) -> int:
        return len(self.users)

    def member(self, i: int) -> MemberFacts:
        """The ``i``-th member's :class:`MemberFacts`."""
        return _new(MemberFacts, (self.users[i], self.groups[i], self.granted_on[i]))

    def usage(self, i: int) -> UsageFacts:
        """The ``i``-th member's :class:`UsageFacts`."""
        return _new(
            UsageFacts,
            (
                self.last_used[i],
                self.minutes_in_window[i],
                self.first_observed[i],
                self.last_observed[i],
                self.active_months[i],
            ),
        )

    def members(self) -> list[MemberFacts]:
        """Every member's :class:`MemberFacts` (built now, in C: no Python frame each)."""
        return list(
            map(
                partial(_new, MemberFacts),
                zip(self.users, self.groups, self.granted_on, strict=True),
            )
        )

    def usages(self) -> list[UsageFacts]:
        """Every member's :class:`UsageFacts`."""
        cols = (
            self.last_used,
            self.minutes_in_window,
            self.first_observed,
            self.last_observed,
            self.active_months,
        )
        return list(map(partial(_new, UsageFacts), zip(*cols, strict=True)))

    @classmethod
    def of(cls, members: Iterable[tuple[MemberFacts, UsageFacts]]) -> FactColumns:
        """Columns from per-member facts (for callers that have tuples)."""
        rows = [(*m, *u) for m, u in members]
        cols: list[list[object]] = [list(c) for c in zip(*rows, strict=True)]
        if not rows:
            cols = [[] for _ in range(8)]
        return cls(*cols)  # type: ignore[arg-type]


Days = npt.NDArray[np.int64]


class DayNumbers(NamedTuple):
    """The fields of :class:`FactColumns` that the common verdicts depend on, as arrays:
    ``granted_on`` and ``last_used`` as day numbers (:data:`NO_DAY` for ``None``) and
    ``minutes_in_window`` as floats (NaN for ``None``). The store has them as numbers
    already; :meth:`of` derives them from the columns otherwise."""

    granted_on: Days
    last_used: Days
    minutes_in_window: npt.NDArray[np.float64]

    @classmethod
    def of(cls, facts: FactColumns) -> DayNumbers:
        """The arrays of ``facts``."""

        def days(col: list[dt.date | None]) -> Days:
            return np.array([NO_DAY if d is None else (d - EPOCH).days for d in col], np.int64)

        minutes = [np.nan if m is None else m for m in facts.minutes_in_window]
        return cls(days(facts.granted_on), days(facts.last_used), np.array(minutes, np.float64))


def month_index(day: dt.date) -> int:
    """A month as one integer (``year * 12 + month - 1``), for month arithmetic."""
    return day.year * 12 + day.month - 1


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


class Evaluator:
    """Verdicts for one policy as of one date; build once, call :meth:`evaluate` per member.

    Every threshold is turned into a cutoff date up front so the per-member path is a
    handful of date comparisons (a 50,000-user × 20-policy run is a million calls).
    """

    __slots__ = (
        "_ex_groups",
        "_ex_users",
        "_fresh_cutoff",
        "_grace_cutoff",
        "_grace_day",
        "_in_use",
        "_min_minutes",
        "_never_cutoff",
        "_unused_cutoff",
        "_unused_day",
        "_window_cutoff",
        "_window_days",
        "as_of",
        "seasonal",
        "unused_days",
    )

    def __init__(
        self,
        policy: Policy,
        *,
        as_of: dt.date,
        freshness_days: int = DEFAULT_FRESHNESS_DAYS,
        seasonal: SeasonalRule | None = None,
    ) -> None:
        if freshness_days < 0:
            raise ValueError("freshness_days must not be negative")
        day = dt.timedelta(days=1)
        self.as_of = as_of
        self.unused_days = policy.unused_days
        self.seasonal = seasonal or SeasonalRule()
        self._ex_users = frozenset(policy.exclude.users)
        self._ex_groups = frozenset(g.strip().lower() for g in policy.exclude.groups)
        self._grace_cutoff = as_of - day * policy.grace_days  # granted after it: in grace
        self._unused_cutoff = as_of - day * policy.unused_days  # used on/after it: recent
        self._never_cutoff = self._unused_cutoff - day  # observed on/before it: long enough
        self._fresh_cutoff = as_of - day * freshness_days
        self._grace_day = (self._grace_cutoff - EPOCH).days  # the same two, as day numbers
        self._unused_day = (self._unused_cutoff - EPOCH).days
        floor = policy.underuse
        self._min_minutes = floor.min_minutes if floor else None
        self._window_days = floor.window_days if floor else 0
        self._window_cutoff = as_of - day * (self._window_days - 1)
        recent = f"used within the last {policy.unused_days} days"
        if floor is None:
            self._in_use = (recent, recent)
        else:
            self._in_use = (
                f"{recent}, at or above {floor.min_minutes} min in {floor.window_days} days",
                f"{recent}; no durations reported, so underuse is not judged",
            )

    def evaluate(self, member: MemberFacts, usage: UsageFacts) -> Verdict:
        """The one verdict for this member; rules are tried in :data:`PRECEDENCE` order."""
        # tuple.__new__ skips the named tuple's Python-level __new__: measured ~0.3 µs
        # of the ~3 µs a member costs, and a run builds one Verdict per member and policy.
        kind, reason = self._judge(member, usage)
        return _new(Verdict, (kind, reason, usage.last_used, usage.minutes_in_window))

    def plainly_in_use(self, facts: FactColumns, days: DayNumbers) -> npt.NDArray[np.bool_]:
        """Which members are ``in_use`` by rule 3, reached (neither excluded nor in
        grace), found for all at once by comparing numbers; the others' verdicts need
        the per-member rules (:meth:`judge_columns`)."""
        n = len(facts)
        if any(len(a) != n for a in days):
            raise ValueError("days must have one value per member of facts")
        # NO_DAY is never recent, and an unknown grant date (NO_DAY) is never in grace.
        plain = (days.last_used >= self._unused_day) & (days.granted_on <= self._grace_day)
        if self._min_minutes is not None:
            minutes = days.minutes_in_window
            plain &= np.isnan(minutes) | (minutes >= self._min_minutes)
        plain[self._excluded(facts)] = False
        return plain

    def judge_columns(
        self,
        facts: FactColumns,
        days: DayNumbers | None = None,
        *,
        plain: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[list[VerdictKind], list[str]]:
        """Every member's verdict kind and reason, in member order. ``days``: the same
        facts as arrays (derived from ``facts`` when not given); ``plain``: what
        :meth:`plainly_in_use` says of them, when already known.

        The same verdicts as :meth:`evaluate` member by member: the plainly ``in_use``
        get the constant ``in_use`` reason, and everyone else, a minority, goes through
        the per-member rules (:meth:`_judge`), so no rule is written twice past the
        common case.
        """
        n = len(facts)
        if days is None:
            days = DayNumbers.of(facts)
        if plain is None:
            plain = self.plainly_in_use(facts, days)
        elif len(plain) != n:
            raise ValueError("plain must have one value per member of facts")
        kinds = [VerdictKind.IN_USE] * n
        reasons = [self._in_use[False]] * n
        if self._min_minutes is not None:  # the two reasons differ only with a floor
            for i in np.flatnonzero(plain & np.isnan(days.minutes_in_window)).tolist():
                reasons[i] = self._in_use[True]
        slow = np.flatnonzero(~plain).tolist()
        if not slow:
            return kinds, reasons
        # The others' facts gathered and rebuilt as tuples in C (itemgetter, tuple.__new__).
        get = itemgetter(*slow)

        def pick(col: list[Any]) -> tuple[Any, ...]:
            return get(col) if len(slow) > 1 else (get(col),)  # one index: no tuple

        f = facts
        members = map(
            partial(_new, MemberFacts),
            zip(pick(f.users), pick(f.groups), pick(f.granted_on), strict=True),
        )
        cols: tuple[list[Any], ...] = (
            f.last_used,
            f.minutes_in_window,
            f.first_observed,
            f.last_observed,
        )
        usages = map(
            partial(_new, UsageFacts), zip(*map(pick, cols), pick(f.active_months), strict=True)
        )
        for i, (kind, reason) in zip(slow, map(self._judge, members, usages), strict=True):
            kinds[i] = kind
            reasons[i] = reason
        return kinds, reasons

    def _excluded(self, facts: FactColumns) -> list[int]:
        """Indexes of members an exclusion may apply to (a superset is fine: they are
        judged member by member)."""
        out = []
        hits = self._ex_users.intersection(facts.users)
        if hits:
            out = [i for i, u in enumerate(facts.users) if u in hits]
        if self._ex_groups:
            ex = self._ex_groups
            out += [i for i, g in enumerate(facts.groups) if g and not ex.isdisjoint(g)]
        return out

    def _judge(self, member: MemberFacts, usage: UsageFacts) -> tuple[VerdictKind, str]:
        last = usage.last_used
        minutes = usage.minutes_in_window
        if member.user in self._ex_users:
            return VerdictKind.EXCLUDED, "user is on the policy's exclusion list"
        if self._ex_groups and not self._ex_groups.isdisjoint(member.groups):
            hit = ", ".join(sorted(self._ex_groups & member.groups))
            return VerdictKind.EXCLUDED, f"member of excluded group {hit}"
        granted = member.granted_on
        if granted is not None and granted > self._grace_cutoff:
            return VerdictKind.GRACE, f"license granted {granted}, within the grace period"
        recent = last is not None and last >= self._unused_cutoff
        floor = self._min_minutes
        if recent and (floor is None or minutes is None or minutes >= floor):
            # Constant text: the date and minutes travel in the Verdict, and most members
            # land here, so formatting them into every reason would dominate a run.
            return VerdictKind.IN_USE, self._in_use[minutes is None]
        # From here on the verdict would say "not used (enough)": only fresh data may say so.
        observed = usage.last_observed
        first = usage.first_observed
        if observed is None or first is None:
            return VerdictKind.NO_DATA, "nothing ever reported for this user"
        if observed < self._fresh_cutoff:
            return VerdictKind.NO_DATA, f"no data from any source since {observed}"
        if last is None and first > self._never_cutoff:
            why = f"observed only since {first}, not more than {self.unused_days} days"
            return VerdictKind.NO_DATA, why
        if recent and first > self._window_cutoff:
            why = f"observed only since {first}, less than the {self._window_days}-day window"
            return VerdictKind.NO_DATA, why
        if last is not None and usage.active_months:
            pattern = self._seasonal(last, first, usage.active_months)
            if pattern:
                return VerdictKind.SEASONAL, pattern
        note = "" if granted is not None else "; grant date unknown, so no grace period applied"
        if last is None:
            why = f"never used while observed since {first} (limit {self.unused_days} days)"
            return VerdictKind.UNUSED, why + note
        if not recent:
            why = f"last used {last}, {(self.as_of - last).days} days ago"
            return VerdictKind.UNUSED, f"{why} (limit {self.unused_days} days){note}"
        why = f"used {minutes:g} min in {self._window_days} days, below the {floor}-minute floor"
        return VerdictKind.UNDERUSED, why + note

    def _seasonal(self, last: dt.date, first: dt.date, active: int) -> str | None:
        """The seasonal reason, or ``None`` when no recurring pattern explains the quiet."""
        rule = self.seasonal
        now = month_index(self.as_of)
        start = now - month_index(last)  # months since the last active month
        observed_limit = now - month_index(first)
        if start < 0 or observed_limit <= start:  # facts from after as_of: no history to read
            return None
        width = 1
        while width < rule.max_burst_months and active >> (start + width) & 1:
            width += 1
        for period, min_cycles in rule.periods:
            if start - period > 0:
                continue  # the expected window has passed without use: the pattern broke
            # The next window opens one period after the burst's first month.
            opens = _month_start(now - (start + width - 1) + period)
            ahead = (opens - self.as_of).days
            if ahead > rule.horizon_days:
                continue
            limit = min(start + width - 1 + rule.lookback_months, observed_limit)
            cycles, off = _phase_masks(period, start, width, limit)
            hits = sum(1 for mask in cycles if active & mask)
            if hits < min_cycles:
                continue
            off_total = off.bit_count()
            off_rate = (active & off).bit_count() / off_total if off_total else 0.0
            if hits / len(cycles) - off_rate < rule.min_contrast:
                continue
            label = "quarterly" if period == 3 else "yearly" if period == 12 else f"{period}-month"
            return (
                f"{label} pattern: used in the same months in {hits} of the previous "
                f"{len(cycles)} cycles; next expected from {opens} "
                + (f"(in {ahead} days)" if ahead > 0 else "(window open now)")
            )
        return None


def verdict(
    *,
    policy: Policy,
    member: MemberFacts,
    usage: UsageFacts,
    as_of: dt.date,
    freshness_days: int = DEFAULT_FRESHNESS_DAYS,
) -> Verdict:
    """One verdict, building a throw-away :class:`Evaluator`; use an Evaluator in loops."""
    return Evaluator(policy, as_of=as_of, freshness_days=freshness_days).evaluate(member, usage)
