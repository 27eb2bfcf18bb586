"""Group-based licensing and seat counting, as Entra ID applies them.

A group's ``assignedLicenses`` are granted to its *direct* user members only (group-based
licensing does not flow through nested groups). Direct assignments (``assignedByGroup`` null)
are independent of group membership. A SKU with no free seat leaves new group-based
assignments in state ``Error`` / ``CountViolation``, and those do not consume a seat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reclaim.testing.graph.errors import GraphError, bad_request

if TYPE_CHECKING:
    from reclaim.testing.graph.tenant import Tenant, User

from reclaim.testing.graph.tenant import LicenseState


def active_sku_ids(user: User) -> list[str]:
    """The user's ``assignedLicenses`` SKU ids: those with at least one Active assignment."""
    out: list[str] = []
    for st in user.license_states:
        if st.state == "Active" and st.sku_id not in out:
            out.append(st.sku_id)
    return out


def consumed_units(tenant: Tenant, sku_id: str) -> int:
    """Seats in use: users holding the SKU through any active assignment."""
    return sum(1 for u in tenant.users.values() if sku_id in active_sku_ids(u))


def apply_group_licenses(tenant: Tenant, user: User) -> None:
    """Bring the user's group-based assignments in line with their direct group memberships."""
    now = tenant.now()
    wanted = {
        (sku_id, g.id)
        for g in tenant.groups.values()
        if user.id in g.members
        for sku_id in g.license_sku_ids
    }
    kept = [
        st
        for st in user.license_states
        if st.assigned_by_group is None or (st.sku_id, st.assigned_by_group) in wanted
    ]
    have = {(st.sku_id, st.assigned_by_group) for st in kept}
    for sku_id, group_id in sorted(wanted - have):
        holds = sku_id in active_sku_ids(user)
        sku = tenant.skus.get(sku_id)
        full = sku is not None and consumed_units(tenant, sku_id) >= sku.enabled
        state = LicenseState(sku_id, group_id, now)
        if full and not holds:
            state.state, state.error = "Error", "CountViolation"
        kept.append(state)
    user.license_states = kept


def assign_license(
    tenant: Tenant, user: User, add: list[dict[str, object]], remove: list[str]
) -> None:
    """``POST /users/{id}/assignLicense``: direct assignments only."""
    now = tenant.now()
    for sku_id in remove:
        direct = [
            s for s in user.license_states if s.sku_id == sku_id and s.assigned_by_group is None
        ]
        inherited = [s for s in user.license_states if s.sku_id == sku_id and s.assigned_by_group]
        if not direct and inherited:
            raise bad_request(
                "User license is inherited from a group membership and it cannot be removed "
                "directly from the user."
            )
        if not direct:
            raise bad_request(f"User does not have a corresponding license: {sku_id}.")
        user.license_states = [s for s in user.license_states if s not in direct]
    for entry in add:
        sku_id = str(entry.get("skuId", ""))
        sku = tenant.skus.get(sku_id)
        if sku is None:
            raise bad_request(f"License {sku_id} does not correspond to a valid company License.")
        if any(s.sku_id == sku_id and s.assigned_by_group is None for s in user.license_states):
            continue
        if sku_id not in active_sku_ids(user) and consumed_units(tenant, sku_id) >= sku.enabled:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Subscription with SKU {sku_id} does not have any available licenses.",
            )
        plans = entry.get("disabledPlans")
        disabled = [str(p) for p in plans] if isinstance(plans, list) else []
        user.license_states.append(LicenseState(sku_id, None, now, disabled_plans=disabled))
