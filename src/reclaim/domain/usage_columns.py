"""A whole policy's members judged at once, as columns.

A run judges a million members. Their facts travel as :class:`FactColumns` (one list
per field, no tuple per member) and as :class:`DayNumbers` (the same facts as numpy
arrays of day numbers, as the store reads them); :class:`Judgement` finds every
member's verdict with array comparisons, rule by rule in
:data:`~reclaim.domain.usage.PRECEDENCE` order, as :meth:`Evaluator.judge
<reclaim.domain.usage.Evaluator.judge>` does for one member. Reasons that name a date
or an amount are formatted once per distinct value (a run meets a few hundred distinct
days), with the evaluator's own texts (:class:`~reclaim.domain.usage.Reasons`). Two
steps stay member by member: members an exclusion may apply to (few), and the seasonal
rule, run only for the members it could explain
(:meth:`~reclaim.domain.seasonal.SeasonalRule.may_explain`). The tests prove the batch
equal to :meth:`Evaluator.evaluate <reclaim.domain.usage.Evaluator.evaluate>` member
by member.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from reclaim.domain.usage import EPOCH, Evaluator, MemberFacts, UsageFacts, VerdictKind

#: Stands for "no day" (``None``) in :class:`DayNumbers`, below every real day.
NO_DAY = int(np.iinfo(np.int64).min)

Days = npt.NDArray[np.int64]
_new = tuple.__new__


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


class DayNumbers(NamedTuple):
    """The fields of :class:`FactColumns` the rules compare, as arrays: the dates as day
    numbers (days since :data:`~reclaim.domain.usage.EPOCH`, :data:`NO_DAY` for
    ``None``) and ``minutes_in_window`` as floats (NaN for ``None``). The store has
    them as numbers already; :meth:`of` derives them from the columns otherwise."""

    granted_on: Days
    last_used: Days
    minutes_in_window: npt.NDArray[np.float64]
    first_observed: Days
    last_observed: Days

    @classmethod
    def of(cls, facts: FactColumns) -> DayNumbers:
        """The arrays of ``facts``."""

        def days(col: list[dt.date | None]) -> Days:
            return np.array([NO_DAY if d is None else (d - EPOCH).days for d in col], np.int64)

        minutes = [np.nan if m is None else m for m in facts.minutes_in_window]
        return cls(
            days(facts.granted_on),
            days(facts.last_used),
            np.array(minutes, np.float64),
            days(facts.first_observed),
            days(facts.last_observed),
        )


class DateTable:
    """Day numbers back to dates (:data:`NO_DAY` to ``None``), for building
    :class:`FactColumns` from arrays: a table of the days met so far, one date object
    each (a run meets a few hundred distinct days a million times), so that a column is
    one gather, no Python-level call per member."""

    SPAN = 40_000  # days (about 110 years) a table may cover; wider: distinct days only

    def __init__(self) -> None:
        self._lo = 0
        self._table: npt.NDArray[Any] = np.array([None], object)  # the last entry: None

    def of(self, days: Days) -> list[dt.date | None]:
        """The dates of an array of day numbers."""
        known = days != NO_DAY
        if not known.any():
            return [None] * len(days)
        real = days[known]
        lo, hi = int(real.min()), int(real.max())
        size = len(self._table) - 1
        if size:
            lo, hi = min(lo, self._lo), max(hi, self._lo + size - 1)
        if hi - lo >= self.SPAN:
            distinct, where = np.unique(days, return_inverse=True)
            dates = [None if d == NO_DAY else _date(d) for d in distinct.tolist()]
            found: list[dt.date | None] = np.array(dates, object)[where.reshape(-1)].tolist()
            return found
        if lo != self._lo or hi - lo + 1 != size:
            self._table = np.array([*map(_date, range(lo, hi + 1)), None], object)
            self._lo = lo
        at = np.where(known, days - self._lo, len(self._table) - 1)
        table: list[dt.date | None] = self._table[at].tolist()
        return table


def _date(n: int) -> dt.date:
    return EPOCH + dt.timedelta(days=n)


class Rule(IntEnum):
    """Where a member's verdict is found, in precedence order, before exclusions and
    the seasonal rule (which can only turn ``LAST_USED`` or ``UNDERUSED`` into
    ``seasonal``)."""

    GRACE = 0
    IN_USE = 1
    IN_USE_NO_DURATIONS = 2
    NOTHING_REPORTED = 3
    STALE = 4
    TOO_NEW = 5
    SHORT_WINDOW = 6
    NEVER_USED = 7
    LAST_USED = 8
    UNDERUSED = 9


_K = VerdictKind
#: The verdict kind of each :class:`Rule`.
_KINDS: npt.NDArray[Any] = np.array(
    [_K.GRACE, _K.IN_USE, _K.IN_USE, *[_K.NO_DATA] * 4, _K.UNUSED, _K.UNUSED, _K.UNDERUSED],
    object,
)


class Judgement:
    """One policy's members, each classified by :class:`Rule` with array comparisons,
    then judged (:meth:`verdicts`) once ``facts.active_months`` holds the seasonal
    history of the members who need it (:meth:`history_wanted`)."""

    __slots__ = ("_days", "_facts", "_judge", "_maybe_seasonal", "rules")

    def __init__(
        self, judge: Evaluator, facts: FactColumns, days: DayNumbers | None = None
    ) -> None:
        n = len(facts)
        if days is None:
            days = DayNumbers.of(facts)
        elif any(len(a) != n for a in days):
            raise ValueError("days must have one value per member of facts")
        self._judge, self._facts, self._days = judge, facts, days
        c = judge.cutoffs
        last, minutes, first, seen = (
            days.last_used,
            days.minutes_in_window,
            days.first_observed,
            days.last_observed,
        )
        # NO_DAY is below every cutoff: never recent, never in grace, always stale.
        recent = last >= c.unused
        no_minutes = np.isnan(minutes)
        enough = recent
        if judge.min_minutes is not None:
            enough = recent & (minutes >= judge.min_minutes)  # NaN is never >=
        never = last == NO_DAY
        conditions = {  # the first that holds is the member's rule
            Rule.GRACE: days.granted_on > c.grace,
            Rule.IN_USE_NO_DURATIONS: recent & no_minutes,  # no durations: floor not judged
            Rule.IN_USE: enough,
            Rule.NOTHING_REPORTED: (seen == NO_DAY) | (first == NO_DAY),
            Rule.STALE: seen < c.fresh,
            Rule.TOO_NEW: never & (first > c.never),
            Rule.SHORT_WINDOW: recent & (first > c.window),
            Rule.NEVER_USED: never,
            Rule.LAST_USED: ~recent,
        }
        #: Each member's :class:`Rule`; anyone left is underused.
        self.rules: npt.NDArray[np.int8] = np.select(
            list(conditions.values()), [int(r) for r in conditions], int(Rule.UNDERUSED)
        ).astype(np.int8)
        # The seasonal rule comes between the no-data rules and the last three; it needs
        # a last use, and is asked only for the members it could explain.
        maybe = np.flatnonzero((self.rules == Rule.LAST_USED) | (self.rules == Rule.UNDERUSED))
        could = judge.seasonal.may_explain(judge.as_of, last[maybe], first[maybe])
        self._maybe_seasonal = maybe[could]

    def history_wanted(self) -> list[int]:
        """Indexes of the members whose verdict may depend on ``active_months``."""
        wanted: list[int] = self._maybe_seasonal.tolist()
        return wanted

    def verdicts(self) -> tuple[list[VerdictKind], list[str]]:
        """Every member's verdict kind and reason, in member order: what
        :meth:`Evaluator.evaluate <reclaim.domain.usage.Evaluator.evaluate>` says of
        each."""
        judge, facts, days, rules = self._judge, self._facts, self._days, self.rules
        says = judge.reasons
        kinds = _KINDS[rules]
        reasons = np.empty(len(rules), object)
        reasons[rules == Rule.IN_USE] = says.in_use[False]
        reasons[rules == Rule.IN_USE_NO_DURATIONS] = says.in_use[True]
        reasons[rules == Rule.NOTHING_REPORTED] = says.NOTHING_REPORTED
        for rule, values, text in (
            (Rule.GRACE, days.granted_on, _of_day(says.grace)),
            (Rule.STALE, days.last_observed, _of_day(says.stale)),
            (Rule.TOO_NEW, days.first_observed, _of_day(says.too_new)),
            (Rule.SHORT_WINDOW, days.first_observed, _of_day(says.short_window)),
        ):
            _fill(reasons, rules == rule, values, text)
        granted = days.granted_on != NO_DAY
        for known in (True, False):
            which = granted if known else ~granted
            for rule, column, fmt in (
                (Rule.NEVER_USED, days.first_observed, _of_day(says.never_used, known)),
                (Rule.LAST_USED, days.last_used, _of_day(says.last_used, known)),
                (
                    Rule.UNDERUSED,
                    days.minutes_in_window,
                    partial(says.underused, grant_known=known),
                ),
            ):
                _fill(reasons, which & (rules == rule), column, fmt)
        explain = judge.seasonal.explain
        for i in self._maybe_seasonal.tolist():
            active = facts.active_months[i]
            last, first = facts.last_used[i], facts.first_observed[i]
            if active and last is not None and first is not None:
                pattern = explain(judge.as_of, last, first, active)
                if pattern:
                    kinds[i], reasons[i] = VerdictKind.SEASONAL, pattern
        for i in _maybe_excluded(judge, facts):
            kinds[i], reasons[i] = judge.judge(facts.member(i), facts.usage(i))
        return kinds.tolist(), reasons.tolist()


def judge_columns(
    judge: Evaluator, facts: FactColumns, days: DayNumbers | None = None
) -> tuple[list[VerdictKind], list[str]]:
    """Every member's verdict kind and reason, in member order, from ``facts`` as they
    are (``active_months`` included); ``days``: the same facts as arrays (derived from
    ``facts`` when not given)."""
    return Judgement(judge, facts, days).verdicts()


def _of_day(text: Callable[..., str], *flags: bool) -> Callable[[int], str]:
    """A reason text of a date, to be called with the date's day number."""

    def of_day(n: int) -> str:
        return text(_date(n), *flags)

    return of_day


def _fill(
    reasons: npt.NDArray[Any],
    where: npt.NDArray[np.bool_],
    values: npt.NDArray[Any],
    text: Callable[[Any], str],
) -> None:
    """Set ``reasons`` where ``where`` holds to the ``text`` of each member's value,
    formatted once per distinct value."""
    at = np.flatnonzero(where)
    if not len(at):
        return
    distinct, which = np.unique(values[at], return_inverse=True)
    texts = np.array([text(v) for v in distinct.tolist()], object)
    reasons[at] = texts[which.reshape(-1)]


def _maybe_excluded(judge: Evaluator, facts: FactColumns) -> list[int]:
    """Indexes of members an exclusion may apply to (a superset is fine: they are
    judged member by member)."""
    out = []
    users = facts.users
    for user in judge.excluded_users.intersection(users):
        at = -1
        with suppress(ValueError):  # list.index scans in C; a user may be listed twice
            while True:
                at = users.index(user, at + 1)
                out.append(at)
    ex = judge.excluded_groups
    if ex:
        out += [i for i, g in enumerate(facts.groups) if g and not ex.isdisjoint(g)]
    return out
