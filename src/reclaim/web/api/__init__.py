"""The REST API, version 1 (``/api/v1``); OpenAPI at ``/api/v1/openapi.json``.

Routes live in one module per area: policies, usage upload, audit, cases (list,
detail, answer, restore), plans (preview, approve, reject), and ``insight``
(candidates, the kill switch, reports).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from reclaim.web.api import audit, cases, insight, plans, policies, usage
from reclaim.web.api.models import WhoAmI, problem_responses
from reclaim.web.auth.deps import Principal, require_any

API_PREFIX = "/api/v1"


def build_router() -> APIRouter:
    """Every v1 route; each declares the role it needs."""
    v1 = APIRouter(prefix=API_PREFIX, responses=problem_responses(401, 403, 422))
    v1.include_router(policies.router)
    v1.include_router(usage.router)
    v1.include_router(audit.router)
    v1.include_router(cases.router)
    v1.include_router(plans.router)
    v1.include_router(insight.router)
    v1.add_api_route("/whoami", whoami, methods=["GET"], response_model=WhoAmI, tags=["auth"])
    return v1


async def whoami(principal: Annotated[Principal, Depends(require_any())]) -> dict[str, Any]:
    """Who the credentials belong to, and their role (any role may ask)."""
    return {"kind": principal.kind, "name": principal.name, "role": principal.role.value}
