"""The facts verdicts are made of, for every member of several policies, in a few queries.

For a set of policies and a date this builds, per member, the domain's
:class:`~reclaim.domain.usage.MemberFacts` and :class:`~reclaim.domain.usage.UsageFacts`
with set-based queries only (never a query per user):

- members and grant dates from ``memberships``;
- last use and seconds in the window per (user, app) (``store.usage_window``);
- first and last day observed by any source from ``usage_observed``.

``active_months`` (the seasonal rule's input) is left at 0 and loaded by
:func:`active_months` only for the members it can matter for: the rule is consulted
only for someone who would otherwise be ``unused`` or ``underused``.

Membership is the current one: looking back in time (``as_of`` in the past) judges
today's members on the usage known up to that day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

from sqlalchemy import Connection, Engine, func, select, text

from reclaim.domain.policy import Policy
from reclaim.domain.usage import MemberFacts, UsageFacts, month_index
from reclaim.store.tables import apps, memberships, usage_latest, users
from reclaim.store.usage_queries import day_number
from reclaim.store.usage_window import CHUNK, EPOCH, Pairs, fetch, month_bounds, pair_usage

DEFAULT_WINDOW_DAYS = 90  # minutes are shown for policies without an underuse floor too


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """Every active member of one policy, as of one date, in user id order.

    Parallel lists rather than one object per member: a run holds hundreds of
    thousands of members, and the per-object cost showed in profiles.
    """

    policy: Policy
    policy_id: int
    as_of: dt.date
    window_days: int
    app_ids: tuple[int, ...]
    user_ids: list[int]
    members: list[MemberFacts]
    usage: list[UsageFacts]


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


def _observed(conn: Connection, as_of: dt.date, member_filter: str) -> dict[int, tuple[int, int]]:
    """user id → (first, last) day seen by any source, on or before ``as_of``."""
    top = month_index(as_of)
    keep = (1 << as_of.day) - 1
    rows = fetch(
        conn,
        text(
            "WITH b AS (SELECT user_id, MIN(month) AS lo, MAX(month) AS hi FROM usage_observed "
            "WHERE (month < :top OR (month = :top AND (days_mask & :keep) != 0)) "
            f"{member_filter} GROUP BY user_id) "
            "SELECT o.user_id, o.month, o.days_mask, b.lo, b.hi FROM usage_observed o "
            "JOIN b ON o.user_id = b.user_id AND (o.month = b.lo OR o.month = b.hi)"
        ),
        {"top": top, "keep": keep},
    )
    lo_mask: dict[int, int] = defaultdict(int)
    hi_mask: dict[int, int] = defaultdict(int)
    months: dict[int, tuple[int, int]] = {}
    for uid, month, mask, lo, hi in rows:
        if month == top:
            mask &= keep  # days after as_of this month do not count yet
        if month == lo:
            lo_mask[uid] |= mask
        if month == hi:
            hi_mask[uid] |= mask
        months[uid] = (lo, hi)
    starts = {m: month_bounds(m)[0] for m in {m for pair in months.values() for m in pair}}
    out = {}
    for uid, (lo, hi) in months.items():
        first = lo_mask[uid]
        out[uid] = (
            starts[lo] + (first & -first).bit_length() - 1,
            starts[hi] + hi_mask[uid].bit_length() - 1,
        )
    return out


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
        pairs_by_window: dict[int, Pairs] = {}
        for window in sorted({window_days_of(p) for p, _ in policies}):
            wanted = sorted(
                {a for p, _ in policies if window_days_of(p) == window for a in app_map[p.name]}
            )
            pairs_by_window[window] = (
                pair_usage(conn, wanted, lo=hi - window + 1, hi=hi) if wanted else {}
            )
        members, upns, observed = per_user(conn) if later is None else later.result()
    groups: dict[int, frozenset[str]] = {}
    if any(p.exclude.groups for p, _ in policies):
        labels = {pid: group_labels(p) for p, pid in (*all_policies, *policies)}
        groups = _group_map(conn, {uid for _, uid, _ in members}, labels)

    date = _Dates()
    seen = {uid: (date[first], date[last]) for uid, (first, last) in observed.items()}

    # The rows come by policy: each policy's run of them, as they are (no new tuples).
    by_policy = {pid: list(rows) for pid, rows in groupby(members, key=itemgetter(0))}
    out = []
    for policy, pid in policies:
        window = window_days_of(policy)
        app_ids = app_map[policy.name]
        people = by_policy.get(pid, [])
        member_facts, usage = _facts(
            people,
            [pairs_by_window[window][a] for a in app_ids],
            lo=hi - window + 1,
            upns=upns,
            groups=groups,
            seen=seen,
            date=date,
        )
        user_ids = list(map(itemgetter(1), people))
        out.append(PolicyFacts(policy, pid, as_of, window, app_ids, user_ids, member_facts, usage))
    return out


class _Dates(dict[int, dt.date]):
    """Day numbers to dates, each converted once (a run meets a few hundred distinct
    days a million times; a missing key is the only Python-level call)."""

    def __missing__(self, n: int) -> dt.date:
        found = self[n] = EPOCH + dt.timedelta(days=n)
        return found


PerUser = tuple[list[tuple[int, int, int | None]], dict[int, str], dict[int, tuple[int, int]]]


def _per_user_reader(as_of: dt.date, ids: Sequence[int]) -> Callable[[Connection], PerUser]:
    """Reads the members (policy id, user id, grant time; by policy and user id), their
    UPNs and when each was observed: the side connection's share of a run, so that the
    members are read while the usage is (not before it, as they once were)."""
    in_ids = _in_list(ids)

    def read(conn: Connection) -> PerUser:
        # The index probe and its ORDER BY measured cheaper in CPU than a full scan
        # sorted here, even with every policy judged.
        members = fetch(
            conn,
            text(
                "SELECT policy_id, user_id, granted_at FROM memberships WHERE active = TRUE "
                f"AND policy_id IN ({in_ids}) ORDER BY policy_id, user_id"
            ),
        )
        total_users = conn.execute(select(func.count()).select_from(users)).scalar() or 0
        # Reading every user's rows beats an IN filter unless the members are few.
        narrow = 2 * len({uid for _, uid, _ in members}) < total_users
        in_members = (
            f"(SELECT user_id FROM memberships WHERE active = TRUE AND policy_id IN ({in_ids}))"
        )
        upn_sql = "SELECT id, upn FROM users" + (f" WHERE id IN {in_members}" if narrow else "")
        member_filter = f"AND user_id IN {in_members}" if narrow else ""
        return members, dict(fetch(conn, text(upn_sql))), _observed(conn, as_of, member_filter)

    return read


def _on_own_connection(engine: Engine, read: Callable[[Connection], PerUser]) -> PerUser:
    with engine.connect() as conn:
        return read(conn)


_new = tuple.__new__  # builds the named tuples without their Python-level __new__ frame


def _facts(
    members: list[tuple[int, int, int | None]],
    per_app: list[dict[int, tuple[int, int]]],
    *,
    lo: int,
    upns: dict[int, str],
    groups: dict[int, frozenset[str]],
    seen: dict[int, tuple[dt.date, dt.date]],
    date: _Dates,
) -> tuple[list[MemberFacts], list[UsageFacts]]:
    """One policy's facts, in the order of ``members`` (policy id, user id, grant time).
    The hot loop of a decision run (once per member and policy): dict reads and two
    tuples per member, nothing else."""
    none: frozenset[str] = frozenset()
    no_usage = (None, 0)
    no_seen = (None, None)
    member_facts: list[MemberFacts] = []
    usage: list[UsageFacts] = []
    single = per_app[0] if len(per_app) == 1 else None
    for _, uid, granted in members:
        if single is not None:
            last, secs = single.get(uid, no_usage)
        else:
            last, secs = None, 0
            for by_user in per_app:
                pair = by_user.get(uid)
                if pair is not None:
                    if last is None or pair[0] > last:
                        last = pair[0]
                    secs += pair[1]
        if last is None or last < lo:
            minutes: float | None = 0.0
        else:  # used in the window; no duration reported at all: underuse not judged
            minutes = secs / 60 if secs else None
        first, last_seen = seen.get(uid, no_seen)
        member_facts.append(
            _new(
                MemberFacts,
                (
                    upns[uid],
                    groups.get(uid, none),
                    None if granted is None else date[granted // 86_400],
                ),
            )
        )
        usage.append(
            _new(
                UsageFacts,
                (
                    None if last is None else date[last],
                    minutes,
                    first,
                    last_seen,
                    0,
                ),
            )
        )
    return member_facts, usage


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
