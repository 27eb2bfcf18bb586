"""Active Directory sync: an ``onprem_ad`` policy's members, read from the DC.

For each policy the license group's direct members are read in ranges
(``member;range=…``, :meth:`LdapConnector.list_members`), with each user's
sAMAccountName, UPN and enabled flag, and the time the membership was granted where
AD keeps it (``msDS-ReplValueMetaData``; Samba keeps none: then the first time Reclaim
saw the membership counts). The list replaces the policy's memberships in the store
(``source="directory"``), and the users' AD identities (SID, SAM) are recorded so
endpoint usage that names a SID or ``DOMAIN\\user`` finds its person.

Members that hold no seat Reclaim can act on are skipped and counted: nested groups
(their members are not direct members), computers, and accounts without a UPN.
An empty read while the store has members is refused, as a members file is: a
group that lost everyone at once is far likelier a wrong DN or a permission problem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, select

from reclaim.connectors.ldap import GroupMember
from reclaim.domain.names import user_key
from reclaim.domain.policy import Policy, Workflow
from reclaim.services.members_import import MembersReport, apply_membership
from reclaim.store.keys import resolve_keys
from reclaim.store.policies import sync_policies
from reclaim.store.tables import memberships
from reclaim.workflows.onprem_ad import OnPremAdDirectory


class AdSyncError(RuntimeError):
    """The sync of one policy was refused; nothing was changed for it."""


@dataclass
class AdSyncReport:
    """What one policy's AD sync found and changed."""

    policy: str
    group_dn: str
    members: int = 0
    joined: int = 0
    left: int = 0
    with_grant_time: int = 0
    identities: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Seat:
    upn: str
    sam: str | None
    sid: str | None
    granted: int | None


def _seats(members: Sequence[GroupMember], report: AdSyncReport) -> list[_Seat]:
    seats: list[_Seat] = []
    for m in members:
        if not m.is_user:
            report.skipped.append(f"{m.dn}: not a user account (nested group, computer, contact)")
        elif not m.upn:
            report.skipped.append(f"{m.dn}: no userPrincipalName")
        else:
            sid = m.sid
            granted = int(m.added_at.timestamp()) if m.added_at else None
            seats.append(_Seat(user_key(m.upn), m.sam.lower() if m.sam else None, sid, granted))
    return seats


def _active_count(conn: Connection, pid: int) -> int:
    rows = conn.execute(
        select(memberships.c.user_id).where(
            memberships.c.policy_id == pid, memberships.c.active.is_(True)
        )
    )
    return len(rows.fetchall())


def record_identities(conn: Connection, seats: Sequence[_Seat], *, now: int) -> int:
    """Store the members' AD identities (``source="ad"``); returns how many were written.

    Kept in one function: ``reclaim.store.identities`` is being written alongside this
    module, and this is the only place that depends on it.
    """
    from reclaim.store.identities import Identity, upsert_identities

    rows = [
        Identity(upn=s.upn, on_prem_sid=s.sid.upper() if s.sid else None, sam_account_name=s.sam)
        for s in seats
    ]
    return upsert_identities(conn, rows, source="ad", now=now)


def sync_policy(
    engine: Engine,
    policy: Policy,
    *,
    directory: OnPremAdDirectory,
    configured: tuple[Policy, ...],
    now: dt.datetime,
) -> AdSyncReport:
    """Read the policy's AD group and make it the policy's member list (module doc)."""
    if policy.workflow is not Workflow.ONPREM_AD:
        raise AdSyncError(f"policy {policy.name!r} uses workflow {policy.workflow.value}")
    group = directory.group_for(policy)
    report = AdSyncReport(policy=policy.name, group_dn=group.dn)
    seats = _seats(directory.ldap.list_members(group.dn, with_added_time=True), report)
    report.with_grant_time = sum(1 for s in seats if s.granted is not None)
    now_s = int(now.timestamp())
    with engine.begin() as conn:
        pid = sync_policies(conn, configured, now=now_s)[policy.name]
        if not seats and _active_count(conn, pid):
            raise AdSyncError(
                f"{group.dn} has no user members in AD; refusing to record every current "
                f"member of {policy.name!r} as having left (check the group and permissions)"
            )
        ids = dict(resolve_keys(conn, users=[s.upn for s in seats], apps={}, now=now_s)[0])
        members = MembersReport(policy=policy.name)
        apply_membership(
            conn,
            pid,
            {ids[s.upn]: s.granted for s in seats},
            now=now_s,
            source="directory",
            report=members,
        )
        report.members, report.joined, report.left = members.members, members.joined, members.left
        report.identities = record_identities(conn, seats, now=now_s)
    return report


def sync_all(
    engine: Engine,
    policies: tuple[Policy, ...],
    *,
    directory: OnPremAdDirectory,
    only: str | None = None,
    now: dt.datetime,
) -> list[AdSyncReport]:
    """Sync every enabled ``onprem_ad`` policy (or just ``only``)."""
    chosen = [
        p
        for p in policies
        if p.workflow is Workflow.ONPREM_AD and p.enabled and (only is None or p.name == only)
    ]
    if only is not None and not chosen:
        raise AdSyncError(f"no enabled onprem_ad policy named {only!r}")
    return [
        sync_policy(engine, p, directory=directory, configured=policies, now=now) for p in chosen
    ]
