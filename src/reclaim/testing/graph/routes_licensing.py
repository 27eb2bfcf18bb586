"""Licensing routes: ``/subscribedSkus``, ``assignLicense`` and ``licenseDetails``."""

from __future__ import annotations

from reclaim.testing.graph.errors import bad_request, not_found
from reclaim.testing.graph.licensing import active_sku_ids, assign_license
from reclaim.testing.graph.router import GraphRequest, GraphResponse, Route, json_response
from reclaim.testing.graph.routes_users import lookup_user
from reclaim.testing.graph.views import USER_DEFAULT, project, sku_json, user_json


def list_skus(req: GraphRequest) -> GraphResponse:
    """``GET /subscribedSkus`` with consumedUnits counted from current assignments."""
    tenant = req.state.tenant
    return json_response(
        {
            "@odata.context": f"{req.version_root}/$metadata#subscribedSkus",
            "value": [sku_json(tenant, s) for s in tenant.skus.values()],
        }
    )


def get_sku(req: GraphRequest, key: str) -> GraphResponse:
    """``GET /subscribedSkus/{tenantId_skuId}``."""
    tenant = req.state.tenant
    for s in tenant.skus.values():
        if key in (s.sku_id, f"{tenant.tenant_id}_{s.sku_id}"):
            body = {"@odata.context": f"{req.version_root}/$metadata#subscribedSkus/$entity"}
            return json_response(body | sku_json(tenant, s))
    raise not_found(key)


def post_assign_license(req: GraphRequest, key: str) -> GraphResponse:
    """``POST /users/{id}/assignLicense``: direct assignments; group ones cannot be removed."""
    user = lookup_user(req, key)
    body = req.body if isinstance(req.body, dict) else None
    if body is None or "addLicenses" not in body or "removeLicenses" not in body:
        raise bad_request("Invalid request body: 'addLicenses' and 'removeLicenses' are required.")
    add = [a for a in body["addLicenses"] or [] if isinstance(a, dict)]
    remove = [str(r) for r in body["removeLicenses"] or []]
    tenant = req.state.tenant
    assign_license(tenant, user, add, remove)
    out = {"@odata.context": f"{req.version_root}/$metadata#users/$entity"}
    out.update(project(user_json(tenant, user), None, USER_DEFAULT))
    return json_response(out)


def license_details(req: GraphRequest, key: str) -> GraphResponse:
    """``GET /users/{id}/licenseDetails``."""
    user = lookup_user(req, key)
    tenant = req.state.tenant
    values = []
    for sku_id in active_sku_ids(user):
        sku = tenant.skus.get(sku_id)
        values.append(
            {
                "id": f"{sku_id}-{user.id}",
                "skuId": sku_id,
                "skuPartNumber": sku.sku_part_number if sku else None,
                "servicePlans": list(sku.service_plans) if sku else [],
            }
        )
    return json_response(
        {
            "@odata.context": f"{req.version_root}/$metadata#users('{user.id}')/licenseDetails",
            "value": values,
        }
    )


ROUTES = [
    Route("GET", ("subscribedSkus",), list_skus, base_cost=3),
    Route("GET", ("subscribedSkus", "*"), get_sku, base_cost=3),
    Route("POST", ("users", "*", "assignLicense"), post_assign_license),
    Route("GET", ("users", "*", "licenseDetails"), license_details, base_cost=2),
]
