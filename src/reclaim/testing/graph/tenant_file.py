"""Loading a tenant from a YAML or JSON file (format: docs/graph-server.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from reclaim.testing.graph.clock import parse_dt
from reclaim.testing.graph.tenant import Tenant

# Tenant-file keys (Graph's camelCase) → User / Group attribute names.
_USER_FIELDS = {
    "mail": "mail",
    "accountEnabled": "account_enabled",
    "userType": "user_type",
    "givenName": "given_name",
    "surname": "surname",
    "jobTitle": "job_title",
    "department": "department",
    "employeeId": "employee_id",
    "usageLocation": "usage_location",
    "onPremisesSyncEnabled": "on_premises_sync_enabled",
    "onPremisesSamAccountName": "on_premises_sam_account_name",
    "onPremisesSecurityIdentifier": "on_premises_security_identifier",
    "onPremisesImmutableId": "on_premises_immutable_id",
}
_GROUP_FIELDS = {
    "description": "description",
    "groupTypes": "group_types",
    "membershipRule": "membership_rule",
    "securityEnabled": "security_enabled",
    "mailEnabled": "mail_enabled",
    "mail": "mail",
    "mailNickname": "mail_nickname",
    "onPremisesSyncEnabled": "on_premises_sync_enabled",
    "onPremisesSecurityIdentifier": "on_premises_security_identifier",
    "onPremisesSamAccountName": "on_premises_sam_account_name",
}
_SIGN_IN_KEYS = (
    "lastSignInDateTime",
    "lastNonInteractiveSignInDateTime",
    "lastSuccessfulSignInDateTime",
)


def load_tenant(path: str | Path) -> Tenant:
    """Read a tenant file (``.json``, ``.yaml`` or ``.yml``) into a :class:`Tenant`."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{p}: a tenant file holds one mapping at the top level")
    return tenant_from_dict(data)


def tenant_from_dict(data: dict[str, Any]) -> Tenant:
    """Build a tenant from the parsed contents of a tenant file."""
    t = Tenant(
        tenant_id=data.get("tenantId") or data.get("tenant_id"),
        display_name=data.get("displayName", "Reclaim Test Tenant"),
        default_domain=data.get("defaultDomain", "reclaim-test.example"),
    )
    t.display_concealed_names = bool(data.get("reportSettings", {}).get("displayConcealedNames"))
    for c in data.get("clients", []):
        t.add_client(
            str(c["clientId"]),
            c.get("clientSecret"),
            certificate_pem=c.get("certificatePem"),
            display_name=c.get("displayName", "Reclaim test app"),
        )
    for s in data.get("skus", []):
        units = s.get("prepaidUnits", {})
        t.add_sku(
            s["skuPartNumber"],
            int(units.get("enabled", s.get("enabled", 0))),
            sku_id=s.get("skuId"),
            suspended=int(units.get("suspended", 0)),
            warning=int(units.get("warning", 0)),
            locked_out=int(units.get("lockedOut", 0)),
            service_plans=list(s.get("servicePlans", [])),
        )
    for u in data.get("users", []):
        _load_user(t, u)
    for g in data.get("groups", []):
        kw = {attr: g[key] for key, attr in _GROUP_FIELDS.items() if key in g}
        t.add_group(
            g["displayName"],
            id=g.get("id"),
            assigned_licenses=g.get("assignedLicenses", []),
            created=parse_dt(g.get("createdDateTime")),
            **kw,
        )
    # Members last: they may name groups declared later in the file.
    for g in data.get("groups", []):
        for m in g.get("members", []):
            key, since = _member_ref(m)
            t.add_member(g.get("id") or g["displayName"], key, since=parse_dt(since), journal=False)
    t.sign_ins = list(data.get("signIns", []))
    t.usage_reports = {str(k): list(v) for k, v in data.get("usageReports", {}).items()}
    return t


def _load_user(t: Tenant, u: dict[str, Any]) -> None:
    kw = {attr: u[key] for key, attr in _USER_FIELDS.items() if key in u}
    activity = u.get("signInActivity")
    if activity:
        kw["sign_in_activity"] = {k: activity.get(k) for k in _SIGN_IN_KEYS if k in activity}
    t.add_user(
        u["userPrincipalName"],
        u.get("displayName"),
        id=u.get("id"),
        licenses=u.get("licenses", []),
        created=parse_dt(u.get("createdDateTime")),
        **kw,
    )


def _member_ref(m: Any) -> tuple[str, Any]:
    """A member entry is an id/UPN string or ``{user|group|id: ..., since: ...}``."""
    if isinstance(m, str):
        return m, None
    key = m.get("id") or m.get("user") or m.get("group")
    if not key:
        raise ValueError(f"member entry needs id, user or group: {m!r}")
    return str(key), m.get("since")
