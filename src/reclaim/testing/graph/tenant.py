"""The in-memory tenant: users, groups, memberships, SKUs and app registrations.

Everything the server answers comes from here, and tests build and inspect it directly.
Mutations go through :class:`Tenant` methods so the membership change journal (for delta
queries) and group-based licensing stay consistent.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

MemberKind = Literal["user", "group"]

_ID_NAMESPACE = uuid.UUID("7f1f1c9e-3a52-4e55-9d5c-2b1f0c8e6a11")


def derived_id(kind: str, key: str) -> str:
    """A stable object id for objects declared without one (same key, same id)."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{kind}:{key.lower()}"))


@dataclass
class LicenseState:
    """One entry of a user's ``licenseAssignmentStates``."""

    sku_id: str
    assigned_by_group: str | None
    last_updated: datetime
    state: str = "Active"
    error: str = "None"
    disabled_plans: list[str] = field(default_factory=list)


@dataclass
class User:
    """A user object; attribute names are snake_case forms of the Graph properties."""

    id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    account_enabled: bool = True
    user_type: str = "Member"
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    department: str | None = None
    employee_id: str | None = None
    usage_location: str | None = None
    on_premises_sync_enabled: bool | None = None
    on_premises_sam_account_name: str | None = None
    on_premises_security_identifier: str | None = None
    on_premises_immutable_id: str | None = None
    sign_in_activity: dict[str, Any] | None = None
    created: datetime | None = None
    license_states: list[LicenseState] = field(default_factory=list)

    @property
    def is_guest(self) -> bool:
        """Guests have userType Guest (their UPN usually carries ``#EXT#``)."""
        return self.user_type.lower() == "guest"


@dataclass
class Membership:
    """A direct member of a group, with when it was granted (if known)."""

    member_id: str
    kind: MemberKind
    since: datetime | None = None


@dataclass
class Group:
    """A group object and its direct members."""

    id: str
    display_name: str
    description: str | None = None
    group_types: list[str] = field(default_factory=list)
    membership_rule: str | None = None
    security_enabled: bool = True
    mail_enabled: bool = False
    mail: str | None = None
    mail_nickname: str | None = None
    on_premises_sync_enabled: bool | None = None
    on_premises_security_identifier: str | None = None
    on_premises_sam_account_name: str | None = None
    assigned_licenses: list[dict[str, Any]] = field(default_factory=list)
    created: datetime | None = None
    members: dict[str, Membership] = field(default_factory=dict)

    @property
    def is_dynamic(self) -> bool:
        """Dynamic groups list ``DynamicMembership`` in groupTypes."""
        return any(t.lower() == "dynamicmembership" for t in self.group_types)

    @property
    def license_sku_ids(self) -> list[str]:
        """The SKU ids this group grants to its direct members."""
        return [str(a["skuId"]) for a in self.assigned_licenses]


@dataclass
class Sku:
    """A subscribed SKU; ``consumedUnits`` is computed from assignments, never stored."""

    sku_id: str
    sku_part_number: str
    enabled: int
    suspended: int = 0
    warning: int = 0
    locked_out: int = 0
    capability_status: str = "Enabled"
    applies_to: str = "User"
    service_plans: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ClientApp:
    """An app registration allowed to get tokens (client credentials flow)."""

    client_id: str
    client_secret: str | None = None
    certificate_pem: str | None = None
    display_name: str = "Reclaim test app"
    enabled: bool = True


@dataclass
class MemberChange:
    """One membership add or remove, in order; delta queries read this journal."""

    seq: int
    group_id: str
    member_id: str
    kind: MemberKind
    added: bool
    at: datetime


class Tenant:
    """A whole directory: the single source of truth for the server and for tests."""

    def __init__(
        self,
        tenant_id: str | None = None,
        display_name: str = "Reclaim Test Tenant",
        default_domain: str = "reclaim-test.example",
    ) -> None:
        self.tenant_id = tenant_id or derived_id("tenant", display_name)
        self.display_name = display_name
        self.default_domain = default_domain
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.skus: dict[str, Sku] = {}
        self.clients: dict[str, ClientApp] = {}
        self.changes: list[MemberChange] = []
        self.sign_ins: list[dict[str, Any]] = []
        self.usage_reports: dict[str, list[dict[str, Any]]] = {}
        self.display_concealed_names = False
        self.lock = threading.RLock()
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._upn_index: dict[str, str] = {}
        self._seq = 0

    # ----- building -------------------------------------------------------------------------

    def add_user(
        self, user_principal_name: str, display_name: str | None = None, **kw: Any
    ) -> User:
        """Add a user (id derived from the UPN unless given) and return it."""
        with self.lock:
            uid = kw.pop("id", None) or derived_id("user", user_principal_name)
            licenses: Iterable[str] = kw.pop("licenses", ())
            user = User(
                id=uid,
                user_principal_name=user_principal_name,
                display_name=display_name or user_principal_name.split("@")[0],
                **kw,
            )
            if user.created is None:
                user.created = self.now()
            self.users[uid] = user
            self._upn_index[user_principal_name.lower()] = uid
            for sku in licenses:
                user.license_states.append(
                    LicenseState(self.resolve_sku(sku).sku_id, None, self.now())
                )
            return user

    def add_group(self, display_name: str, **kw: Any) -> Group:
        """Add a group (id derived from the name unless given) and return it."""
        with self.lock:
            gid = kw.pop("id", None) or derived_id("group", display_name)
            licenses = kw.pop("assigned_licenses", [])
            group = Group(id=gid, display_name=display_name, **kw)
            group.assigned_licenses = [self._license_entry(x) for x in licenses]
            if group.created is None:
                group.created = self.now()
            self.groups[gid] = group
            return group

    def add_sku(
        self, sku_part_number: str, enabled: int, sku_id: str | None = None, **kw: Any
    ) -> Sku:
        """Add a subscribed SKU with ``enabled`` prepaid seats."""
        with self.lock:
            sku = Sku(sku_id or derived_id("sku", sku_part_number), sku_part_number, enabled, **kw)
            self.skus[sku.sku_id] = sku
            return sku

    def add_client(self, client_id: str, client_secret: str | None = None, **kw: Any) -> ClientApp:
        """Register an app that may use the client credentials flow."""
        with self.lock:
            app = ClientApp(client_id, client_secret, **kw)
            self.clients[client_id] = app
            return app

    def add_member(
        self, group: str, member: str, since: datetime | None = None, *, journal: bool = True
    ) -> Membership:
        """Make ``member`` (user id/UPN or group id/name) a direct member of ``group``."""
        with self.lock:
            g = self.require_group(group)
            kind, mid = self.resolve_member(member)
            if mid in g.members:
                return g.members[mid]
            m = Membership(mid, kind, since or self.now())
            g.members[mid] = m
            if journal:
                self._record(g.id, mid, kind, added=True)
            if kind == "user":
                self._relicense(mid)
            return m

    def remove_member(self, group: str, member: str) -> bool:
        """Remove a direct membership; returns False when there was none."""
        with self.lock:
            g = self.require_group(group)
            kind, mid = self.resolve_member(member)
            if g.members.pop(mid, None) is None:
                return False
            self._record(g.id, mid, kind, added=False)
            if kind == "user":
                self._relicense(mid)
            return True

    # ----- looking up ----------------------------------------------------------------------

    def find_user(self, key: str) -> User | None:
        """A user by object id or (case-insensitive) UPN."""
        with self.lock:
            if key in self.users:
                return self.users[key]
            uid = self._upn_index.get(key.lower())
            return self.users.get(uid) if uid else None

    def find_group(self, key: str) -> Group | None:
        """A group by object id or display name."""
        with self.lock:
            if key in self.groups:
                return self.groups[key]
            for g in self.groups.values():
                if g.display_name.lower() == key.lower():
                    return g
            return None

    def require_group(self, key: str) -> Group:
        """Like :meth:`find_group` but raises ``KeyError`` when missing."""
        g = self.find_group(key)
        if g is None:
            raise KeyError(f"no group {key!r}")
        return g

    def resolve_member(self, key: str) -> tuple[MemberKind, str]:
        """Tell whether ``key`` names a user or a group, and return its id."""
        u = self.find_user(key)
        if u is not None:
            return "user", u.id
        g = self.find_group(key)
        if g is not None:
            return "group", g.id
        raise KeyError(f"no user or group {key!r}")

    def resolve_sku(self, key: str) -> Sku:
        """A SKU by id or skuPartNumber."""
        if key in self.skus:
            return self.skus[key]
        for s in self.skus.values():
            if s.sku_part_number.lower() == str(key).lower():
                return s
        raise KeyError(f"no sku {key!r}")

    def is_member(self, user: str, group: str, *, transitive: bool = False) -> bool:
        """Is ``user`` a member of ``group`` (directly, or through nested groups)?"""
        with self.lock:
            _, uid = self.resolve_member(user)
            g = self.require_group(group)
            if not transitive:
                return uid in g.members
            return uid in {mid for mid, _ in self.transitive_members(g.id)}

    def transitive_members(self, group_id: str) -> list[tuple[str, MemberKind]]:
        """All members reachable through nested groups, each once (cycles are tolerated)."""
        with self.lock:
            seen: dict[str, MemberKind] = {}
            stack, visited = [group_id], {group_id}
            while stack:
                g = self.groups.get(stack.pop())
                if g is None:
                    continue
                for m in g.members.values():
                    seen.setdefault(m.member_id, m.kind)
                    if m.kind == "group" and m.member_id not in visited:
                        visited.add(m.member_id)
                        stack.append(m.member_id)
            return list(seen.items())

    def groups_of(self, object_id: str, *, transitive: bool = False) -> list[Group]:
        """Groups ``object_id`` belongs to, directly or through nesting."""
        with self.lock:
            direct = [g for g in self.groups.values() if object_id in g.members]
            if not transitive:
                return direct
            result: dict[str, Group] = {}
            stack = list(direct)
            while stack:
                g = stack.pop()
                if g.id in result:
                    continue
                result[g.id] = g
                stack.extend(p for p in self.groups.values() if g.id in p.members)
            return list(result.values())

    def size_class(self) -> str:
        """S, M or L: the tenant sizes the identity throttling limits are keyed by."""
        n = len(self.users)
        return "S" if n < 50 else ("M" if n <= 500 else "L")

    @property
    def seq(self) -> int:
        """The sequence number of the newest membership change."""
        return self._seq

    # ----- internals ------------------------------------------------------------------------

    def _record(self, group_id: str, member_id: str, kind: MemberKind, *, added: bool) -> None:
        self._seq += 1
        self.changes.append(MemberChange(self._seq, group_id, member_id, kind, added, self.now()))

    def _license_entry(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            sku = self.resolve_sku(str(value.get("skuId") or value.get("sku")))
            return {"skuId": sku.sku_id, "disabledPlans": list(value.get("disabledPlans", []))}
        return {"skuId": self.resolve_sku(str(value)).sku_id, "disabledPlans": []}

    def _relicense(self, user_id: str) -> None:
        # Imported here: licensing depends on this module's types.
        from reclaim.testing.graph.licensing import apply_group_licenses

        user = self.users.get(user_id)
        if user is not None:
            apply_group_licenses(self, user)
