"""Graph JSON shapes of tenant objects, and which properties come back by default."""

from __future__ import annotations

from typing import Any

from reclaim.testing.graph.clock import iso
from reclaim.testing.graph.licensing import active_sku_ids, consumed_units
from reclaim.testing.graph.tenant import Group, Sku, Tenant, User

# v1.0 returns only these user properties unless $select asks for others.
USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
# The group defaults are most properties; assignedLicenses is only returned on $select.
GROUP_DEFAULT = (
    "id",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "securityEnabled",
    "securityIdentifier",
    "visibility",
)


def user_json(tenant: Tenant, u: User) -> dict[str, Any]:
    """Every user property the server knows; views pick from it."""
    data: dict[str, Any] = {
        "id": u.id,
        "businessPhones": [],
        "displayName": u.display_name,
        "givenName": u.given_name,
        "jobTitle": u.job_title,
        "mail": u.mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": u.surname,
        "userPrincipalName": u.user_principal_name,
        "accountEnabled": u.account_enabled,
        "userType": u.user_type,
        "createdDateTime": iso(u.created),
        "department": u.department,
        "employeeId": u.employee_id,
        "usageLocation": u.usage_location,
        "mailNickname": u.user_principal_name.split("@")[0],
        "onPremisesSyncEnabled": u.on_premises_sync_enabled,
        "onPremisesSamAccountName": u.on_premises_sam_account_name,
        "onPremisesSecurityIdentifier": u.on_premises_security_identifier,
        "onPremisesImmutableId": u.on_premises_immutable_id,
        "externalUserState": "Accepted" if u.is_guest else None,
        "assignedLicenses": [
            {"disabledPlans": _disabled(u, s), "skuId": s} for s in active_sku_ids(u)
        ],
        "licenseAssignmentStates": [
            {
                "assignedByGroup": st.assigned_by_group,
                "disabledPlans": list(st.disabled_plans),
                "error": st.error,
                "lastUpdatedDateTime": iso(st.last_updated),
                "skuId": st.sku_id,
                "state": st.state,
            }
            for st in u.license_states
        ],
    }
    # Users who never signed in have no signInActivity at all (not an empty object).
    if u.sign_in_activity:
        data["signInActivity"] = _sign_in(u.sign_in_activity)
    return data


def _sign_in(activity: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in (
        "lastSignInDateTime",
        "lastNonInteractiveSignInDateTime",
        "lastSuccessfulSignInDateTime",
    ):
        value = activity.get(key)
        out[key] = value if value is None or isinstance(value, str) else iso(value)
        out[key.replace("DateTime", "RequestId")] = None
    return out


def _disabled(u: User, sku_id: str) -> list[str]:
    for st in u.license_states:
        if st.sku_id == sku_id and st.state == "Active":
            return list(st.disabled_plans)
    return []


def group_json(g: Group) -> dict[str, Any]:
    """Every group property the server knows."""
    return {
        "id": g.id,
        "createdDateTime": iso(g.created),
        "description": g.description,
        "displayName": g.display_name,
        "groupTypes": list(g.group_types),
        "mail": g.mail,
        "mailEnabled": g.mail_enabled,
        "mailNickname": g.mail_nickname or g.display_name.replace(" ", ""),
        "membershipRule": g.membership_rule,
        "membershipRuleProcessingState": "On" if g.is_dynamic else None,
        "onPremisesSamAccountName": g.on_premises_sam_account_name,
        "onPremisesSecurityIdentifier": g.on_premises_security_identifier,
        "onPremisesSyncEnabled": g.on_premises_sync_enabled,
        "securityEnabled": g.security_enabled,
        "securityIdentifier": None,
        "visibility": None,
        "assignedLicenses": [
            {"disabledPlans": list(a.get("disabledPlans", [])), "skuId": a["skuId"]}
            for a in g.assigned_licenses
        ],
    }


def sku_json(tenant: Tenant, s: Sku) -> dict[str, Any]:
    """A subscribedSku, with consumedUnits counted from current assignments."""
    return {
        "accountId": tenant.tenant_id,
        "accountName": tenant.display_name,
        "appliesTo": s.applies_to,
        "capabilityStatus": s.capability_status,
        "consumedUnits": consumed_units(tenant, s.sku_id),
        "id": f"{tenant.tenant_id}_{s.sku_id}",
        "skuId": s.sku_id,
        "skuPartNumber": s.sku_part_number,
        "subscriptionIds": [],
        "prepaidUnits": {
            "enabled": s.enabled,
            "suspended": s.suspended,
            "warning": s.warning,
            "lockedOut": s.locked_out,
        },
        "servicePlans": list(s.service_plans),
    }


def project(
    full: dict[str, Any], select: list[str] | None, default: tuple[str, ...]
) -> dict[str, Any]:
    """Keep the selected properties, or the defaults when there is no ``$select``."""
    names = select if select is not None else list(default)
    return {k: full[k] for k in names if k in full}


def directory_object(tenant: Tenant, object_id: str, select: list[str] | None) -> dict[str, Any]:
    """A member entry: a user or group with its ``@odata.type`` and always its ``id``."""
    u = tenant.users.get(object_id)
    if u is not None:
        body = project(user_json(tenant, u), select, USER_DEFAULT)
        return {"@odata.type": "#microsoft.graph.user", "id": u.id, **body}
    g = tenant.groups[object_id]
    body = project(group_json(g), select, GROUP_DEFAULT)
    return {"@odata.type": "#microsoft.graph.group", "id": g.id, **body}


USER_PROPERTIES = frozenset(
    {
        *USER_DEFAULT,
        "accountEnabled",
        "userType",
        "createdDateTime",
        "department",
        "employeeId",
        "usageLocation",
        "mailNickname",
        "onPremisesSyncEnabled",
        "onPremisesSamAccountName",
        "onPremisesSecurityIdentifier",
        "onPremisesImmutableId",
        "externalUserState",
        "assignedLicenses",
        "licenseAssignmentStates",
        "signInActivity",
    }
)
GROUP_PROPERTIES = frozenset({*GROUP_DEFAULT, "assignedLicenses", "members"})
