"""The REST API, version 1 (``/api/v1``); OpenAPI at ``/api/v1/openapi.json``.

Integration points (Issue 3, not committed when this was written): cases, plans,
candidates, reports, restore and ``POST /api/v1/control/pause|resume`` join this
router as their services land; the pause switch is ``store.leases.set_control``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from reclaim.web.api import audit, policies, usage
from reclaim.web.api.models import WhoAmI, problem_responses
from reclaim.web.auth.deps import Principal, require_any

API_PREFIX = "/api/v1"


def build_router() -> APIRouter:
    """Every v1 route; each declares the role it needs."""
    v1 = APIRouter(prefix=API_PREFIX, responses=problem_responses(401, 403, 422))
    v1.include_router(policies.router)
    v1.include_router(usage.router)
    v1.include_router(audit.router)
    v1.add_api_route("/whoami", whoami, methods=["GET"], response_model=WhoAmI, tags=["auth"])
    return v1


async def whoami(principal: Annotated[Principal, Depends(require_any())]) -> dict[str, Any]:
    """Who the credentials belong to, and their role (any role may ask)."""
    return {"kind": principal.kind, "name": principal.name, "role": principal.role.value}
