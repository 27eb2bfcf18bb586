"""Verdicts: for one member of a policy's group, as of a date, exactly one verdict.

The store computes compact facts per member (:class:`MemberFacts`, :class:`UsageFacts`)
in SQL; an :class:`Evaluator`, built once per (policy, as_of), turns them into a
:class:`Verdict` in a few microseconds. Precedence, rules and the seasonal rule
(``domain.seasonal``) are documented in ``docs/verdicts.md``; the one principle behind
them is that missing data can only ever *hide* use, never invent it, so "used" verdicts
may be reached on partial data and "not used" verdicts never are.

The per-member values are named tuples rather than frozen dataclasses: just as
immutable, but several times cheaper to build. A whole policy's members are judged at
once, as columns, by ``domain.usage_columns``: the same rules with array comparisons,
and the same reason texts (:class:`Reasons`), proven equal to :meth:`Evaluator.evaluate`
member by member by the tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple

from reclaim.domain.names import user_key
from reclaim.domain.policy import Policy
from reclaim.domain.seasonal import SeasonalRule, month_bits, month_index

__all__ = [
    "DEFAULT_FRESHNESS_DAYS",
    "EPOCH",
    "PRECEDENCE",
    "Cutoffs",
    "Evaluator",
    "MemberFacts",
    "Reasons",
    "SeasonalRule",
    "UsageFacts",
    "Verdict",
    "VerdictKind",
    "month_bits",
    "month_index",
    "verdict",
]

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

#: Day numbers count days since 1970-01-01, as the store keeps them.
EPOCH = dt.date(1970, 1, 1)

_NO_GRANT_DATE = "; grant date unknown, so no grace period applied"


class Reasons:
    """The reason texts of one policy's verdicts as of one date, in one place for the
    per-member rules (:meth:`Evaluator.judge`) and the columnar ones, which format each
    distinct date or amount once. ``grant_known``: whether the member's grant date is
    known (a "not used" reason says when it is not, as no grace period applied)."""

    __slots__ = ("_floor", "_window_days", "as_of", "in_use", "unused_days")

    EXCLUDED_USER = "user is on the policy's exclusion list"
    NOTHING_REPORTED = "nothing ever reported for this user"

    def __init__(self, policy: Policy, as_of: dt.date) -> None:
        self.as_of = as_of
        self.unused_days = policy.unused_days
        floor = policy.underuse
        self._floor = floor.min_minutes if floor else None
        self._window_days = floor.window_days if floor else 0
        recent = f"used within the last {policy.unused_days} days"
        #: The ``in_use`` reason, by "no durations were reported" (the same without a floor).
        self.in_use: tuple[str, str] = (recent, recent)
        if floor is not None:
            self.in_use = (
                f"{recent}, at or above {floor.min_minutes} min in {floor.window_days} days",
                f"{recent}; no durations reported, so underuse is not judged",
            )

    @staticmethod
    def excluded_groups(hits: Iterable[str]) -> str:
        """Excluded as a member of these excluded groups."""
        return f"member of excluded group {', '.join(sorted(hits))}"

    @staticmethod
    def grace(granted: dt.date) -> str:
        """In the grace period since ``granted``."""
        return f"license granted {granted}, within the grace period"

    @staticmethod
    def stale(observed: dt.date) -> str:
        """No data: nothing reported since ``observed``."""
        return f"no data from any source since {observed}"

    def too_new(self, first: dt.date) -> str:
        """No data: never used, but observed for too short a time to say so."""
        return f"observed only since {first}, not more than {self.unused_days} days"

    def short_window(self, first: dt.date) -> str:
        """No data: under the floor, but observed for less than the window."""
        return f"observed only since {first}, less than the {self._window_days}-day window"

    def never_used(self, first: dt.date, grant_known: bool) -> str:
        """Unused: no use at all since ``first`` observed."""
        why = f"never used while observed since {first} (limit {self.unused_days} days)"
        return why if grant_known else why + _NO_GRANT_DATE

    def last_used(self, last: dt.date, grant_known: bool) -> str:
        """Unused: last used on ``last``, longer ago than the policy allows."""
        why = f"last used {last}, {(self.as_of - last).days} days ago"
        why = f"{why} (limit {self.unused_days} days)"
        return why if grant_known else why + _NO_GRANT_DATE

    def underused(self, minutes: float, grant_known: bool) -> str:
        """Underused: ``minutes`` in the window, below the floor."""
        why = (
            f"used {minutes:g} min in {self._window_days} days, "
            f"below the {self._floor}-minute floor"
        )
        return why if grant_known else why + _NO_GRANT_DATE


class Cutoffs(NamedTuple):
    """An :class:`Evaluator`'s thresholds as day numbers (see :data:`EPOCH`), for the
    columnar rules: granted after ``grace``: in grace; used on or after ``unused``:
    recent; first observed after ``never``: too short to call "never used"; last
    observed before ``fresh``: stale; first observed after ``window``: less than the
    underuse window."""

    grace: int
    unused: int
    never: int
    fresh: int
    window: int


class Evaluator:
    """Verdicts for one policy as of one date; build once, call :meth:`evaluate` per member.

    Every threshold is turned into a cutoff date up front so the per-member path is a
    handful of date comparisons (a 50,000-user × 20-policy run is a million calls).
    The columnar rules (``domain.usage_columns``) read the same thresholds as
    :attr:`cutoffs`, and the public attributes below.
    """

    __slots__ = (
        "_fresh_cutoff",
        "_grace_cutoff",
        "_never_cutoff",
        "_unused_cutoff",
        "_window_cutoff",
        "as_of",
        "cutoffs",
        "excluded_groups",
        "excluded_users",
        "min_minutes",
        "reasons",
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
        self.excluded_users = frozenset(policy.exclude.users)
        self.excluded_groups = frozenset(g.strip().lower() for g in policy.exclude.groups)
        self._grace_cutoff = as_of - day * policy.grace_days  # granted after it: in grace
        self._unused_cutoff = as_of - day * policy.unused_days  # used on/after it: recent
        self._never_cutoff = self._unused_cutoff - day  # observed on/before it: long enough
        self._fresh_cutoff = as_of - day * freshness_days
        floor = policy.underuse
        #: The underuse floor in minutes; ``None``: underuse is not judged.
        self.min_minutes = floor.min_minutes if floor else None
        self._window_cutoff = as_of - day * ((floor.window_days if floor else 0) - 1)
        self.cutoffs = Cutoffs(
            *(
                (d - EPOCH).days
                for d in (
                    self._grace_cutoff,
                    self._unused_cutoff,
                    self._never_cutoff,
                    self._fresh_cutoff,
                    self._window_cutoff,
                )
            )
        )
        self.reasons = Reasons(policy, as_of)

    def evaluate(self, member: MemberFacts, usage: UsageFacts) -> Verdict:
        """The one verdict for this member; rules are tried in :data:`PRECEDENCE` order."""
        # tuple.__new__ skips the named tuple's Python-level __new__: measured ~0.3 µs
        # of the ~3 µs a member costs, and a run builds one Verdict per member and policy.
        kind, reason = self.judge(member, usage)
        return _new(Verdict, (kind, reason, usage.last_used, usage.minutes_in_window))

    def judge(self, member: MemberFacts, usage: UsageFacts) -> tuple[VerdictKind, str]:
        """This member's verdict kind and reason (:meth:`evaluate` without the tuple)."""
        last = usage.last_used
        minutes = usage.minutes_in_window
        says = self.reasons
        if member.user in self.excluded_users:
            return VerdictKind.EXCLUDED, says.EXCLUDED_USER
        ex_groups = self.excluded_groups
        if ex_groups and not ex_groups.isdisjoint(member.groups):
            return VerdictKind.EXCLUDED, says.excluded_groups(ex_groups & member.groups)
        granted = member.granted_on
        if granted is not None and granted > self._grace_cutoff:
            return VerdictKind.GRACE, says.grace(granted)
        recent = last is not None and last >= self._unused_cutoff
        floor = self.min_minutes
        if recent and (floor is None or minutes is None or minutes >= floor):
            # Constant text: the date and minutes travel in the Verdict, and most members
            # land here, so formatting them into every reason would dominate a run.
            return VerdictKind.IN_USE, says.in_use[minutes is None]
        # From here on the verdict would say "not used (enough)": only fresh data may say so.
        observed = usage.last_observed
        first = usage.first_observed
        if observed is None or first is None:
            return VerdictKind.NO_DATA, says.NOTHING_REPORTED
        if observed < self._fresh_cutoff:
            return VerdictKind.NO_DATA, says.stale(observed)
        if last is None and first > self._never_cutoff:
            return VerdictKind.NO_DATA, says.too_new(first)
        if recent and first > self._window_cutoff:
            return VerdictKind.NO_DATA, says.short_window(first)
        if last is not None and usage.active_months:
            pattern = self.seasonal.explain(self.as_of, last, first, usage.active_months)
            if pattern:
                return VerdictKind.SEASONAL, pattern
        if last is None:
            return VerdictKind.UNUSED, says.never_used(first, granted is not None)
        if not recent:
            return VerdictKind.UNUSED, says.last_used(last, granted is not None)
        assert minutes is not None  # recent and not in use: below the floor
        return VerdictKind.UNDERUSED, says.underused(minutes, granted is not None)


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
