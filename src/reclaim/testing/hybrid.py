"""A hybrid test peer: a Graph test-server tenant that mirrors the Samba seed domain.

In a hybrid organization Entra ID is a read-only copy of on-prem AD, refreshed by
directory sync (Entra Connect). This module plays both halves of that copy for tests:

- :func:`build_hybrid_tenant` reads the seed OU of a running Samba DC (as
  Administrator) and builds a :class:`~reclaim.testing.graph.Tenant` with the same
  users (``onPremisesSyncEnabled``, ``onPremisesSamAccountName``,
  ``onPremisesSecurityIdentifier`` = the DC's SIDs) and the same groups, as synced
  groups with their SIDs and direct members;
- :func:`run_directory_sync` copies one AD group's *current* direct membership into
  the tenant, which is what a sync cycle does, so a test can see Entra ID lag behind
  an AD removal and then catch up.

Reading the live DC rather than the seed constants keeps SIDs right for every clone
of the template, and makes the sync copy whatever a test changed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ldap3 import BASE, SUBTREE, Connection

from reclaim.testing import samba_seed as seed
from reclaim.testing.graph.tenant import Tenant

HYBRID_TENANT_ID = "4b1d0000-0000-4000-8000-00000000ad01"
HYBRID_CLIENT_ID = "4b1d0000-0000-4000-8000-00000000c1e0"
HYBRID_CLIENT_SECRET = "fake-hybrid-test-secret"  # noqa: S105  (obviously fake fixture value)

_UAC_ACCOUNTDISABLE = 0x0002
_ATTRIBUTES = [
    "objectSid",
    "objectClass",
    "sAMAccountName",
    "cn",
    "userPrincipalName",
    "userAccountControl",
]


def sid_to_str(raw: bytes) -> str:
    """The ``S-1-…`` form of a binary objectSid (MS-DTYP 2.4.2.2)."""
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack(f"<{count}I", raw[8 : 8 + 4 * count])
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])


@dataclass
class HybridTenant:
    """The tenant, and the Entra object ids of what it mirrors (keyed by lower-case DN)."""

    tenant: Tenant
    user_ids: dict[str, str] = field(default_factory=dict)
    group_ids: dict[str, str] = field(default_factory=dict)
    ids_by_sid: dict[str, str] = field(default_factory=dict)
    sid_by_dn: dict[str, str] = field(default_factory=dict)

    def group_id(self, group_dn: str) -> str:
        """The Entra object id of the synced copy of an AD group."""
        return self.group_ids[group_dn.lower()]


def _seed_objects(admin: Connection) -> list[dict[str, Any]]:
    """Every user and group under the seed OU, paged (the bulk OU has 1,600 users)."""
    found = admin.extend.standard.paged_search(
        seed.SEED_OU,
        "(|(objectClass=user)(objectClass=group))",
        search_scope=SUBTREE,
        attributes=_ATTRIBUTES,
        paged_size=500,
        generator=True,
    )
    return [e for e in found if e.get("type") == "searchResEntry"]


def _values(entry: dict[str, Any], name: str) -> list[Any]:
    raw = entry["raw_attributes"].get(name) or []
    return list(raw)


def build_hybrid_tenant(
    admin: Connection,
    *,
    tenant_id: str = HYBRID_TENANT_ID,
    client_id: str = HYBRID_CLIENT_ID,
    client_secret: str = HYBRID_CLIENT_SECRET,
) -> HybridTenant:
    """A tenant mirroring the seed OU of the DC behind ``admin`` (see module doc)."""
    tenant = Tenant(tenant_id, "Reclaim Hybrid Test", seed.DNS_DOMAIN)
    tenant.add_client(client_id, client_secret)
    hybrid = HybridTenant(tenant)
    groups: list[tuple[str, str]] = []
    for entry in _seed_objects(admin):
        dn = entry["dn"]
        sid = sid_to_str(_values(entry, "objectSid")[0])
        sam = _values(entry, "sAMAccountName")[0].decode()
        classes = {c.decode().lower() for c in _values(entry, "objectClass")}
        hybrid.sid_by_dn[dn.lower()] = sid
        if "group" in classes:
            groups.append((dn, sid))
            continue
        if "computer" in classes or not _values(entry, "userPrincipalName"):
            continue
        uac = int(_values(entry, "userAccountControl")[0])
        user = tenant.add_user(
            _values(entry, "userPrincipalName")[0].decode(),
            _values(entry, "cn")[0].decode(),
            account_enabled=not uac & _UAC_ACCOUNTDISABLE,
            on_premises_sync_enabled=True,
            on_premises_sam_account_name=sam,
            on_premises_security_identifier=sid,
        )
        hybrid.user_ids[dn.lower()] = user.id
        hybrid.ids_by_sid[sid] = user.id
    for dn, sid in groups:
        name = dn.split(",", 1)[0].removeprefix("CN=")
        group = tenant.add_group(
            name,
            on_premises_sync_enabled=True,
            on_premises_sam_account_name=name,
            on_premises_security_identifier=sid,
        )
        hybrid.group_ids[dn.lower()] = group.id
        hybrid.ids_by_sid[sid] = group.id
    for dn in list(hybrid.group_ids):
        run_directory_sync(hybrid, admin, dn, journal=False)
    return hybrid


def _member_sids(hybrid: HybridTenant, admin: Connection, group_dn: str) -> set[str]:
    """SIDs of the group's direct members (ldap3 follows ``member;range=`` itself).

    DNs seen when the tenant was built are mapped from memory; others are read.
    """
    admin.search(group_dn, "(objectClass=*)", search_scope=BASE, attributes=["member"])
    dns = admin.response[0]["attributes"].get("member", []) if admin.response else []
    sids: set[str] = set()
    for dn in dns:
        known = hybrid.sid_by_dn.get(dn.lower())
        if known is None:
            admin.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["objectSid"])
            if not admin.response:
                continue
            known = sid_to_str(admin.response[0]["raw_attributes"]["objectSid"][0])
        sids.add(known)
    return sids


def run_directory_sync(
    hybrid: HybridTenant, admin: Connection, group_dn: str, *, journal: bool = True
) -> tuple[int, int]:
    """Make the synced copy of ``group_dn`` list exactly its current AD members.

    Returns (added, removed). Members outside the mirrored OU are skipped, as Entra
    Connect skips objects outside its sync scope.
    """
    tenant = hybrid.tenant
    group = tenant.require_group(hybrid.group_id(group_dn))
    wanted = {
        hybrid.ids_by_sid[s]
        for s in _member_sids(hybrid, admin, group_dn)
        if s in hybrid.ids_by_sid
    }
    added = removed = 0
    for member_id in wanted - set(group.members):
        tenant.add_member(group.id, member_id, journal=journal)
        added += 1
    for member_id in set(group.members) - wanted:
        tenant.remove_member(group.id, member_id)
        removed += 1
    return added, removed
