"""What the LDAP connector returns, and how AD's raw attribute values become it.

ldap3 runs without the server schema (one round trip less per connection), so values
arrive as bytes and are decoded here, by name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ldap3.protocol.formatters.formatters import format_sid

from reclaim.connectors import ad_vendor as ad

USER_ATTRIBUTES = ["sAMAccountName", "userPrincipalName", "userAccountControl", "objectSid"]
GROUP_ATTRIBUTES = ["sAMAccountName", "objectSid"]


@dataclass(frozen=True)
class DirectoryUser:
    """A user account as AD holds it."""

    dn: str
    sam: str
    upn: str | None
    sid: str | None
    enabled: bool


@dataclass(frozen=True)
class DirectoryGroup:
    """A group as AD holds it."""

    dn: str
    sam: str | None
    sid: str | None


@dataclass(frozen=True)
class GroupMember:
    """One direct member of a group.

    ``sam``/``upn``/``enabled`` are None for members that are not user accounts
    (nested groups, contacts) or not found under ``base_dn``. ``added_at`` comes from
    AD's ``msDS-ReplValueMetaData``; Samba does not return it, so there it is None.
    """

    dn: str
    is_user: bool
    sam: str | None = None
    upn: str | None = None
    enabled: bool | None = None
    added_at: dt.datetime | None = None
    sid: str | None = None  # the account's objectSid, so a sync can map SIDs to people


def _raw(entry: dict[str, Any], name: str) -> list[bytes]:
    return list(entry.get("raw_attributes", {}).get(name) or [])


def _text(entry: dict[str, Any], name: str) -> str | None:
    values = _raw(entry, name)
    return values[0].decode("utf-8") if values else None


def _sid(entry: dict[str, Any]) -> str | None:
    values = _raw(entry, "objectSid")
    return str(format_sid(values[0])) if values else None


def _enabled(entry: dict[str, Any]) -> bool:
    uac = _text(entry, "userAccountControl")
    return not (int(uac) & ad.UAC_ACCOUNTDISABLE) if uac else True


def user_from_entry(entry: dict[str, Any]) -> DirectoryUser:
    """A DirectoryUser from a search entry that asked for USER_ATTRIBUTES."""
    return DirectoryUser(
        dn=entry["dn"],
        sam=_text(entry, "sAMAccountName") or "",
        upn=_text(entry, "userPrincipalName"),
        sid=_sid(entry),
        enabled=_enabled(entry),
    )


def group_from_entry(entry: dict[str, Any]) -> DirectoryGroup:
    """A DirectoryGroup from a search entry that asked for GROUP_ATTRIBUTES."""
    return DirectoryGroup(dn=entry["dn"], sam=_text(entry, "sAMAccountName"), sid=_sid(entry))


def member_from_entry(
    dn: str, entry: dict[str, Any] | None, added_at: dt.datetime | None
) -> GroupMember:
    """Describe one member DN; ``entry`` is its object when found under ``base_dn``."""
    classes = {c.decode().lower() for c in _raw(entry, "objectClass")} if entry else set()
    # Computers are users too in AD's class hierarchy; they hold no license seat.
    if entry is None or "user" not in classes or "computer" in classes:
        return GroupMember(dn, is_user=False, added_at=added_at)
    user = user_from_entry(entry)
    return GroupMember(
        dn,
        is_user=True,
        sam=user.sam,
        upn=user.upn,
        enabled=user.enabled,
        added_at=added_at,
        sid=user.sid,
    )
