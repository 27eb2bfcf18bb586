"""Independent checks for the AD tests, made as Administrator without the connector."""

from __future__ import annotations

from ldap3 import Connection


def direct_members(admin: Connection, group_dn: str) -> set[str]:
    """The group's member DNs, lower-cased, read with ldap3's own auto-range."""
    admin.search(group_dn, "(objectClass=*)", search_scope="BASE", attributes=["member"])
    return {dn.lower() for dn in admin.response[0]["attributes"].get("member", [])}
