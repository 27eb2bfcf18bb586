"""The directory contents every Samba test domain starts with.

Names are constants so tests refer to ``seed.ALICE.sam`` rather than repeating strings.
The data is written once into the provisioned template, offline (see
``samba_offline.py``), so every DC copied from the template holds the same objects
with the same SIDs and GUIDs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ldap3.utils.dn import escape_rdn

REALM = "CORP.EXAMPLE.TEST"
NETBIOS_DOMAIN = "CORP"
DNS_DOMAIN = "corp.example.test"
BASE_DN = "DC=corp,DC=example,DC=test"
SEED_OU = f"OU=Reclaim Test,{BASE_DN}"
BULK_OU = f"OU=Bulk,{SEED_OU}"
ADMINISTRATOR_UPN = f"Administrator@{DNS_DOMAIN}"

# AD's schema GUID of the `member` attribute: an ACE granting WriteProperty on it is the
# only right Reclaim's service account needs on a license group.
# https://learn.microsoft.com/en-us/windows/win32/adschema/a-member
MEMBER_ATTRIBUTE_GUID = "bf9679c0-0de6-11d0-a285-00aa003049e2"

BIG_GROUP_SIZE = 1600  # > 1,500 so AD/Samba answer with `member;range=0-1499`
RUN_GROUP_SIZE = 400  # room for 200 candidates under the 50 % mass-removal guard

UAC_NORMAL_ACCOUNT = 0x0200
UAC_ACCOUNTDISABLE = 0x0002


@dataclass(frozen=True)
class SeedUser:
    """A user in the seed OU. ``cn`` may hold characters that need DN escaping."""

    sam: str
    cn: str
    enabled: bool = True
    parent: str = SEED_OU

    @property
    def dn(self) -> str:
        """The distinguished name, with the CN escaped as RFC 4514 requires."""
        return f"CN={escape_rdn(self.cn)},{self.parent}"

    @property
    def upn(self) -> str:
        """The user principal name (lower-case sAMAccountName @ DNS domain)."""
        return f"{self.sam.lower()}@{DNS_DOMAIN}"


@dataclass(frozen=True)
class SeedGroup:
    """A global security group in the seed OU; ``license`` groups are writable by the
    service account."""

    name: str
    users: tuple[SeedUser, ...] = ()
    groups: tuple[str, ...] = ()
    license: bool = True

    @property
    def dn(self) -> str:
        """The distinguished name of the group."""
        return f"CN={escape_rdn(self.name)},{SEED_OU}"


SERVICE_ACCOUNT = SeedUser("svc-reclaim", "svc-reclaim")
ALICE = SeedUser("alice", "Alice Adams")
BOB = SeedUser("bob", "Bob Brown")
CAROL = SeedUser("carol", "Carol Clark")
DAVE = SeedUser("dave", "Dave Disabled", enabled=False)
# Parentheses in the sAMAccountName and a comma in the CN: both must be escaped, in a
# filter and in a DN respectively, or the lookups break (or worse, match others).
PAT = SeedUser("pat.obrien(c)", "O'Brien, Pat (contractor)")
ERIN = SeedUser("erin", "Erin Evans")  # in no group at all
USERS = (SERVICE_ACCOUNT, ALICE, BOB, CAROL, DAVE, PAT, ERIN)

BULK_USERS = tuple(
    SeedUser(f"bulk{i:04d}", f"Bulk {i:04d}", enabled=i % 10 != 0, parent=BULK_OU)
    for i in range(BIG_GROUP_SIZE)
)

TEAM_PMS = SeedGroup("Team-PMs", users=(CAROL,), license=False)
LIC_VISIO = SeedGroup("LIC-Visio", users=(ALICE, BOB, DAVE, PAT))
LIC_PROJECT = SeedGroup("LIC-Project", users=(ALICE,), groups=(TEAM_PMS.dn,))
LIC_EMPTY = SeedGroup("LIC-Empty")
LIC_BIG = SeedGroup("LIC-Big", users=(*BULK_USERS, BOB))
# A policy-sized group for the runner's end-to-end tests (every tenth user disabled).
LIC_RUN = SeedGroup("LIC-Run", users=BULK_USERS[:RUN_GROUP_SIZE])
GROUPS = (TEAM_PMS, LIC_VISIO, LIC_PROJECT, LIC_EMPTY, LIC_BIG, LIC_RUN)


def _unicode_pwd(password: str) -> str:
    # AD's unicodePwd is the quoted password in UTF-16-LE; LDIF carries it base64'd.
    return base64.b64encode(f'"{password}"'.encode("utf-16-le")).decode("ascii")


def _user_ldif(user: SeedUser, password: str | None) -> str:
    uac = UAC_NORMAL_ACCOUNT | (0 if user.enabled else UAC_ACCOUNTDISABLE)
    lines = [
        f"dn: {user.dn}",
        "objectClass: user",
        f"cn: {user.cn}",
        f"sAMAccountName: {user.sam}",
        f"userPrincipalName: {user.upn}",
        f"userAccountControl: {uac}",
    ]
    if password is not None:
        lines.append(f"unicodePwd:: {_unicode_pwd(password)}")
    return "\n".join(lines) + "\n"


def _group_ldif(group: SeedGroup) -> str:
    lines = [
        f"dn: {group.dn}",
        "objectClass: group",
        f"cn: {group.name}",
        f"sAMAccountName: {group.name}",
    ]
    members = [u.dn for u in group.users] + list(group.groups)
    lines += [f"member: {dn}" for dn in members]
    return "\n".join(lines) + "\n"


def build_ldif(*, service_password: str) -> str:
    """The LDIF for all seed objects, parents before children, groups after members."""
    records = [
        f"dn: {SEED_OU}\nobjectClass: organizationalUnit\n",
        f"dn: {BULK_OU}\nobjectClass: organizationalUnit\n",
    ]
    records += [_user_ldif(u, service_password if u is SERVICE_ACCOUNT else None) for u in USERS]
    records += [_user_ldif(u, None) for u in BULK_USERS]
    # Team-PMs first: LIC-Project lists it as a member.
    records += [_group_ldif(g) for g in GROUPS]
    return "\n".join(records)


def license_group_grants() -> list[dict[str, str]]:
    """ACEs giving the service account WriteProperty on `member` of each license group.

    ``{sid}`` in ``ace`` is replaced by the trustee's SID once it exists.
    """
    ace = f"(OA;;WP;{MEMBER_ATTRIBUTE_GUID};;{{sid}})"
    return [
        {"target": g.dn, "trustee": SERVICE_ACCOUNT.dn, "ace": ace} for g in GROUPS if g.license
    ]


def all_seed_dns() -> list[str]:
    """DNs whose SIDs the template records (every named user and group, not bulk)."""
    return [u.dn for u in USERS] + [g.dn for g in GROUPS]
