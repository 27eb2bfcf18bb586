"""Importing a policy's group membership from a CSV file (``user,granted_at``).

This is the offline path for ``manual`` policies and for tests; Entra ID and Active
Directory sync feed the same table later. The file is the group's whole member
list: people missing from it have left the group. A file with no valid member at
all is refused rather than read as "everyone left".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.domain.names import user_key
from reclaim.domain.policy import Policy
from reclaim.store.keys import KeyCache
from reclaim.store.policies import sync_policies
from reclaim.store.tables import memberships, summary_state


class MembersFileError(ValueError):
    """The members file can't be used at all; nothing was changed."""


@dataclass
class MembersReport:
    """What a members import changed."""

    policy: str
    members: int = 0
    joined: int = 0
    left: int = 0
    rejected: list[str] = field(default_factory=list)


def _parse_time(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp())
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"granted_at {text[:40]!r} is not an ISO date or date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def read_members_file(path: Path) -> tuple[dict[str, int | None], list[str]]:
    """Read ``user,granted_at`` rows; returns (user key → grant time, rejects)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MembersFileError(f"{path}: cannot be read ({exc})") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if "user" not in header:
        raise MembersFileError(
            f"{path}:1: not a members CSV: the header has no 'user' column "
            f"(found: {', '.join(header) or 'nothing'}; expected user[,granted_at])"
        )
    unknown = [h for h in header if h not in ("user", "granted_at")]
    if unknown:
        raise MembersFileError(f"{path}:1: unknown column(s) {', '.join(unknown)}")
    ui = header.index("user")
    gi = header.index("granted_at") if "granted_at" in header else None
    members: dict[str, int | None] = {}
    rejects: list[str] = []
    for line_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        user = row[ui].strip() if ui < len(row) else ""
        if not user:
            rejects.append(f"{path}:{line_no}: missing user")
            continue
        try:
            granted = _parse_time(row[gi]) if gi is not None and gi < len(row) else None
        except ValueError as exc:
            rejects.append(f"{path}:{line_no}: {exc}")
            continue
        members[user_key(user)] = granted
    return members, rejects


def import_members(
    engine: Engine, policy: Policy, path: Path, *, configured: tuple[Policy, ...], now: dt.datetime
) -> MembersReport:
    """Replace the policy's member list with the file's (see module docstring)."""
    members, rejects = read_members_file(path)
    report = MembersReport(policy=policy.name, rejected=rejects)
    now_s = int(now.timestamp())
    with engine.begin() as conn:
        pid = sync_policies(conn, configured, now=now_s)[policy.name]
        active = _active_members(conn, pid)
        if not members and active:
            raise MembersFileError(
                f"{path}: no valid member rows; refusing to record all {len(active)} "
                f"current members of {policy.name!r} as having left the group"
            )
        keys = KeyCache()
        ids = dict(
            keys.add_users(conn, pl.Series(list(members), dtype=pl.String), now=now_s).iter_rows()
        )
        apply_membership(
            conn,
            pid,
            {ids[k]: g for k, g in members.items()},
            now=now_s,
            source="file",
            report=report,
        )
    return report


def _active_members(conn: Connection, pid: int) -> set[int]:
    rows = conn.execute(
        select(memberships.c.user_id).where(
            memberships.c.policy_id == pid, memberships.c.active.is_(True)
        )
    )
    return {int(r[0]) for r in rows}


def apply_membership(
    conn: Connection,
    pid: int,
    current: dict[int, int | None],
    *,
    now: int,
    source: str,
    report: MembersReport,
) -> None:
    """Make ``current`` (user id → grant time or None) the policy's active members.

    Grant time, best known first: the source's own (directory or file), else what an
    earlier import recorded, else the first time Reclaim saw the membership.
    """
    known = {
        int(r.user_id): r
        for r in conn.execute(select(memberships).where(memberships.c.policy_id == pid))
    }
    inserts = []
    unchanged: list[int] = []  # still members, nothing new but "seen now": one batched UPDATE
    changed = False  # a member joined, rejoined, left, or got another grant time
    for uid, granted in current.items():
        row = known.get(uid)
        if row is None:
            inserts.append(
                {
                    "policy_id": pid,
                    "user_id": uid,
                    "granted_at": granted if granted is not None else now,
                    "granted_source": source if granted is not None else "first_seen",
                    "first_seen": now,
                    "last_seen": now,
                    "active": True,
                    "left_at": None,
                }
            )
            report.joined += 1
            continue
        values: dict[str, object] = {"last_seen": now}
        if not row.active:  # rejoined: a new grant
            values.update(
                active=True,
                left_at=None,
                granted_at=granted or now,
                granted_source=source if granted else "first_seen",
            )
            report.joined += 1
        elif granted is not None and (row.granted_at != granted or row.granted_source != source):
            values.update(granted_at=granted, granted_source=source)
        else:
            unchanged.append(uid)
            continue
        conn.execute(
            update(memberships)
            .where(memberships.c.policy_id == pid, memberships.c.user_id == uid)
            .values(**values)
        )
        changed = True
    for i in range(0, len(unchanged), 900):
        conn.execute(
            update(memberships)
            .where(
                memberships.c.policy_id == pid, memberships.c.user_id.in_(unchanged[i : i + 900])
            )
            .values(last_seen=now)
        )
    if inserts:
        conn.execute(memberships.insert(), inserts)
    gone = [uid for uid, row in known.items() if row.active and uid not in current]
    for i in range(0, len(gone), 900):
        conn.execute(
            update(memberships)
            .where(memberships.c.policy_id == pid, memberships.c.user_id.in_(gone[i : i + 900]))
            .values(active=False, left_at=now)
        )
    report.left += len(gone)
    report.members = len(current)
    if changed or inserts or gone:
        _members_changed(conn, pid, now=now)


def members_state(policy_id: int) -> str:
    """The ``summary_state`` row counting changes of a policy's members."""
    return f"memberships:{policy_id}"


def _members_changed(conn: Connection, pid: int, *, now: int) -> None:
    """Count one change of the policy's members (``summary_state``, see
    :func:`members_state`). The pages' cached figures are keyed by these counters
    (``web/savings_cache.py``): reading them is a few rows, where aggregating the
    memberships themselves took ~0.2 s a page view at 1.5 million."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(summary_state).values(name=members_state(pid), events=1, updated=now)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"], set_={"events": summary_state.c.events + 1, "updated": now}
        )
    )
