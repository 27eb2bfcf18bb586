"""The facts verdicts are made of, for every member of several policies, in a few queries.

For a set of policies and a date this builds the fields of the domain's
:class:`~reclaim.domain.usage.MemberFacts` and :class:`~reclaim.domain.usage.UsageFacts`
for every member, as columns (:class:`~reclaim.domain.usage.FactColumns`, and the
numbers the batch evaluator compares as arrays), with set-based queries only (never a
query per user) and array operations per policy (nothing in Python per member):

- members and grant dates from ``memberships``;
- last use and seconds in the window per (user, app) (``store.usage_window``);
- first and last day observed by any source from ``usage_observed``.

``active_months`` (the seasonal rule's input) is left at 0 and loaded by
:func:`active_months` only for the members it can matter for (``services.decisions``):
the rule is consulted only for someone who would otherwise be ``unused`` or
``underused``, and can explain only a recent enough last use with enough history
observed before it.

Membership is the current one: looking back in time (``as_of`` in the past) judges
today's members on the usage known up to that day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, func, select, text

from reclaim.domain.policy import Policy
from reclaim.domain.usage import month_index
from reclaim.domain.usage_columns import NO_DAY, DateTable, DayNumbers, FactColumns
from reclaim.store.tables import apps, memberships, usage_latest, users
from reclaim.store.usage_queries import day_number
from reclaim.store.usage_window import (
    CHUNK,
    EPOCH,
    Ints,
    PairUsage,
    bit_lengths,
    fetch,
    int_rows,
    month_starts,
    pair_usage,
)

DEFAULT_WINDOW_DAYS = 90  # minutes are shown for policies without an underuse floor too


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """Every active member of one policy, as of one date, in user id order.

    Columns rather than one object per member (:class:`FactColumns`, and the same
    facts as arrays for the batch evaluator): a run holds hundreds of thousands of
    members, and the per-object cost showed in profiles.
    """

    policy: Policy
    policy_id: int
    as_of: dt.date
    window_days: int
    app_ids: tuple[int, ...]
    user_ids: list[int]
    facts: FactColumns
    days: DayNumbers


def window_days_of(policy: Policy) -> int:
    """The window minutes are counted over: the underuse window, else 90 days."""
    return policy.underuse.window_days if policy.underuse else DEFAULT_WINDOW_DAYS


def group_labels(policy: Policy) -> frozenset[str]:
    """Every way an exclusion may name this policy's group, lower-case."""
    g = policy.group
    return frozenset(
        v.strip().lower() for v in (g.entra_id, g.name, g.ad_dn, g.ad_sid, g.ad_sam) if v
    )


def app_ids_by_policy(conn: Connection, policies: Sequence[Policy]) -> dict[str, tuple[int, ...]]:
    """Stored app ids per policy (its aliases); apps never seen in usage have none."""
    keys = sorted({k for p in policies for k in p.app_keys()})
    found: dict[str, int] = {}
    for i in range(0, len(keys), CHUNK):
        found.update(
            (k, int(v))
            for v, k in fetch(
                conn, select(apps.c.id, apps.c.key).where(apps.c.key.in_(keys[i : i + CHUNK]))
            )
        )
    return {p.name: tuple(sorted(found[k] for k in p.app_keys() if k in found)) for p in policies}


def _in_list(ids: Sequence[int]) -> str:
    return ",".join(str(int(i)) for i in ids)


class Observed(NamedTuple):
    """First and last day seen by any source, per user (arrays, by user id)."""

    user_ids: Ints
    first: Ints
    last: Ints


def _observed(conn: Connection, as_of: dt.date, member_filter: str) -> Observed:
    """First and last day seen by any source, on or before ``as_of``, per user seen.

    One row per user, whatever the length of the history: a user's first day is the
    lowest day bit of their earliest month (``mask & -mask``, the least such bit over
    its rows), the last the highest of their latest (a greater mask has no lower top
    bit), each packed with its month so that one MIN and one MAX find them.
    """
    top = month_index(as_of)
    rows = fetch(
        conn,
        text(
            "SELECT user_id, MIN(month * 4294967296 + (m & -m)), MAX(month * 4294967296 + m) "
            "FROM (SELECT user_id, month, CASE WHEN month = :top THEN days_mask & :keep "
            f"ELSE days_mask END AS m FROM usage_observed WHERE month <= :top {member_filter}"
            # Days after as_of this month do not count yet.
            ") AS o WHERE m != 0 GROUP BY user_id ORDER BY user_id"
        ),
        {"top": top, "keep": (1 << as_of.day) - 1},
    )
    uid, lo, hi = int_rows(rows, 3).T
    first = month_starts(lo >> 32) + bit_lengths(lo & 0xFFFFFFFF) - 1
    last = month_starts(hi >> 32) + bit_lengths(hi & 0xFFFFFFFF) - 1
    return Observed(uid, first, last)


def _group_map(
    conn: Connection, user_ids: set[int], labels: dict[int, frozenset[str]]
) -> dict[int, frozenset[str]]:
    """The license groups (ids and names, lower-case) each user is an active member of.

    Only Reclaim's own license groups are known until the directory sync lands, so an
    ``exclude.groups`` entry works today when it names another policy's group.
    """
    found: dict[int, set[str]] = defaultdict(set)
    for uid, pid in fetch(
        conn,
        select(memberships.c.user_id, memberships.c.policy_id).where(
            memberships.c.active.is_(True), memberships.c.policy_id.in_(list(labels))
        ),
    ):
        if uid in user_ids:
            found[uid] |= labels[pid]
    return {uid: frozenset(g) for uid, g in found.items()}


def load_facts(
    conn: Connection,
    policies: Sequence[tuple[Policy, int]],
    *,
    as_of: dt.date,
    all_policies: Sequence[tuple[Policy, int]] = (),
    engine: Engine | None = None,
) -> list[PolicyFacts]:
    """Facts for every active member of each (policy, stored id), as of ``as_of``.

    ``all_policies`` (every configured policy with its id) lets group exclusions see
    memberships of the other license groups. With ``engine``, the per-user reads run
    on a second connection while this one reads usage: the database works on both
    cores (the driver releases the GIL while a query runs).
    """
    if not policies:
        return []
    ids = [pid for _, pid in policies]
    per_user = _per_user_reader(as_of, ids)
    with ThreadPoolExecutor(max_workers=1) as side:
        later = None if engine is None else side.submit(_on_own_connection, engine, per_user)
        app_map = app_ids_by_policy(conn, [p for p, _ in policies])
        hi = day_number(as_of)
        pairs_by_window: dict[int, PairUsage | None] = {}
        for window in sorted({window_days_of(p) for p, _ in policies}):
            wanted = sorted(
                {a for p, _ in policies if window_days_of(p) == window for a in app_map[p.name]}
            )
            pairs_by_window[window] = (
                pair_usage(conn, wanted, lo=hi - window + 1, hi=hi) if wanted else None
            )
        members, upns, observed = per_user(conn) if later is None else later.result()
    groups: dict[int, frozenset[str]] = {}
    if any(p.exclude.groups for p, _ in policies):
        labels = {pid: group_labels(p) for p, pid in (*all_policies, *policies)}
        groups = _group_map(conn, set(members.user_ids.tolist()), labels)

    date = DateTable()
    out = []
    for policy, pid in policies:
        window = window_days_of(policy)
        app_ids = app_map[policy.name]
        pairs = pairs_by_window[window]
        at = np.searchsorted(members.policy_ids, [pid, pid + 1]).tolist()
        uids = members.user_ids[at[0] : at[1]]
        user_ids = uids.tolist()
        facts, days = _facts(
            uids,
            members.granted_at[at[0] : at[1]],
            [pairs.of_app(a) for a in app_ids] if pairs is not None else [],
            lo=hi - window + 1,
            user_ids=user_ids,
            upns=upns,
            groups=groups,
            observed=observed,
            date=date,
        )
        out.append(PolicyFacts(policy, pid, as_of, window, app_ids, user_ids, facts, days))
    return out


class Members(NamedTuple):
    """Active memberships (arrays, by policy id then user id); NO_DAY for no grant time."""

    policy_ids: Ints
    user_ids: Ints
    granted_at: Ints


class Upns(NamedTuple):
    """User ids (sorted) and their UPNs (an object array, in the same order)."""

    user_ids: Ints
    upns: npt.NDArray[Any]

    def of(self, user_ids: Ints) -> list[str]:
        """The UPNs of these users (a gather: no Python-level call per user)."""
        if not len(user_ids):
            return []
        at = np.minimum(np.searchsorted(self.user_ids, user_ids), len(self.user_ids) - 1)
        if not len(self.user_ids) or (self.user_ids[at] != user_ids).any():
            raise KeyError("a membership names a user id without a user")
        found: list[str] = self.upns[at].tolist()
        return found


PerUser = tuple[Members, Upns, Observed]


def _distinct(ids: Ints, total: int) -> int:
    """How many distinct ids (non-negative): counted in a table when they are dense
    enough, else by sorting them (ids may leave gaps, as PostgreSQL's sequences do)."""
    if not len(ids):
        return 0
    if int(ids.max()) < 4 * total + 1024:
        return int(np.count_nonzero(np.bincount(ids)))
    return len(np.unique(ids))


def _per_user_reader(as_of: dt.date, ids: Sequence[int]) -> Callable[[Connection], PerUser]:
    """Reads the members (policy id, user id, grant time; by policy and user id), their
    UPNs and when each was observed: the side connection's share of a run, so that the
    members are read while the usage is (not before it, as they once were)."""
    in_ids = _in_list(ids)

    def read(conn: Connection) -> PerUser:
        # The index probe and its ORDER BY measured cheaper in CPU than a full scan
        # sorted here, even with every policy judged.
        rows = fetch(
            conn,
            text(
                "SELECT policy_id, user_id, COALESCE(granted_at, :none) FROM memberships "
                f"WHERE active = TRUE AND policy_id IN ({in_ids}) ORDER BY policy_id, user_id"
            ),
            {"none": NO_DAY},
        )
        members = Members(*int_rows(rows, 3).T)
        total_users = conn.execute(select(func.count()).select_from(users)).scalar() or 0
        # Reading every user's rows beats an IN filter unless the members are few.
        narrow = 2 * _distinct(members.user_ids, total_users) < total_users
        in_members = (
            f"(SELECT user_id FROM memberships WHERE active = TRUE AND policy_id IN ({in_ids}))"
        )
        upn_sql = "SELECT id, upn FROM users" + (f" WHERE id IN {in_members}" if narrow else "")
        member_filter = f"AND user_id IN {in_members}" if narrow else ""
        named = fetch(conn, text(upn_sql))
        ids, names = zip(*named, strict=True) if named else ((), ())
        by_id = np.argsort(np.array(ids, np.int64))
        upns = Upns(np.array(ids, np.int64)[by_id], np.array(names, object)[by_id])
        return members, upns, _observed(conn, as_of, member_filter)

    return read


def _on_own_connection(engine: Engine, read: Callable[[Connection], PerUser]) -> PerUser:
    with engine.connect() as conn:
        return read(conn)


def _lookup(keys: Ints, found: Ints, columns: Sequence[tuple[Ints, int]]) -> list[Ints]:
    """For each of ``keys``, per (values, default) of ``columns``: the entry of values
    (parallel to the sorted ``found``) where the key is found, else the default."""
    if not len(found):
        return [np.full(len(keys), default, np.int64) for _, default in columns]
    at = np.minimum(np.searchsorted(found, keys), len(found) - 1)
    hit = found[at] == keys
    return [np.where(hit, values[at], default) for values, default in columns]


def _facts(
    uids: Ints,
    granted_at: Ints,
    per_app: list[tuple[Ints, Ints, Ints]],
    *,
    lo: int,
    user_ids: list[int],
    upns: Upns,
    groups: dict[int, frozenset[str]],
    observed: Observed,
    date: DateTable,
) -> tuple[FactColumns, DayNumbers]:
    """One policy's facts, in the order of ``uids`` (its members' user ids, sorted; and
    the same as the list ``user_ids``): array operations per policy and app, and a
    C-level map per column, so nothing runs in Python once per member."""
    n = len(uids)
    last = np.full(n, NO_DAY, np.int64)
    secs = np.zeros(n, np.int64)
    for app_users, app_last, app_secs in per_app:  # the policy's apps (aliases)
        app_day, app_seconds = _lookup(uids, app_users, [(app_last, NO_DAY), (app_secs, 0)])
        last = np.maximum(last, app_day)
        secs += app_seconds
    # Not used in the window: 0 minutes; used in it with no duration reported at all:
    # None (underuse is not judged).
    used = last >= lo
    unknown = used & (secs == 0)
    minutes = np.where(used, secs / 60, 0.0)
    minutes_list: list[float | None] = minutes.tolist()
    for i in np.flatnonzero(unknown).tolist():
        minutes_list[i] = None
    minutes[unknown] = np.nan
    first, last_seen = _lookup(
        uids, observed.user_ids, [(observed.first, NO_DAY), (observed.last, NO_DAY)]
    )
    granted = np.where(granted_at == NO_DAY, NO_DAY, granted_at // 86_400)
    none: frozenset[str] = frozenset()
    facts = FactColumns(
        users=upns.of(uids),
        groups=list(map(groups.get, user_ids, repeat(none, n))) if groups else [none] * n,
        granted_on=date.of(granted),
        last_used=date.of(last),
        minutes_in_window=minutes_list,
        first_observed=date.of(first),
        last_observed=date.of(last_seen),
        active_months=[0] * n,
    )
    return facts, DayNumbers(granted, last, minutes, first, last_seen)


def active_months(
    conn: Connection,
    *,
    app_ids: Sequence[int],
    user_ids: Sequence[int],
    as_of: dt.date,
    months: int = 26,
) -> dict[int, int]:
    """``UsageFacts.active_months`` for these users over these apps (bit 0 = as_of's month).

    Folded in SQL to one row per user: the distinct month bits (several apps can mark
    the same month) summed, which is their OR; a month's days after as_of do not count.
    """
    if not app_ids or not user_ids:
        return {}
    top = month_index(as_of)
    out: dict[int, int] = {}
    for i in range(0, len(user_ids), _USERS_PER_QUERY):
        out.update(
            fetch(
                conn,
                text(
                    "SELECT user_id, SUM(bit) FROM (SELECT DISTINCT user_id, "
                    "CAST(1 AS BIGINT) << (:top - month) AS bit FROM usage_monthly "
                    f"WHERE user_id IN ({_in_list(user_ids[i : i + _USERS_PER_QUERY])}) "
                    f"AND app_id IN ({_in_list(app_ids)}) AND month BETWEEN :lo AND :top "
                    "AND (CASE WHEN month = :top THEN days_mask & :keep ELSE days_mask END) != 0"
                    ") AS used GROUP BY user_id"
                ),
                {"top": top, "lo": top - months + 1, "keep": (1 << as_of.day) - 1},
            )
        )
    return {int(u): int(b) for u, b in out.items()}


_USERS_PER_QUERY = 10_000  # ids inlined as literals (no bound-parameter limit applies)


def last_use(conn: Connection, *, app_ids: Sequence[int], user_id: int) -> dt.date | None:
    """The latest day the store knows this user used any of ``app_ids`` (for re-checks)."""
    if not app_ids:
        return None
    day = conn.execute(
        select(func.max(usage_latest.c.last_day)).where(
            usage_latest.c.user_id == user_id, usage_latest.c.app_id.in_(list(app_ids))
        )
    ).scalar()
    return None if day is None else EPOCH + dt.timedelta(days=int(day))
