"""``/api/v1/policies``: the licensed products Reclaim manages (read-only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from reclaim.web.api.models import PolicyOut, PolicyPage, problem_responses
from reclaim.web.auth.deps import Principal, require
from reclaim.web.auth.roles import Role
from reclaim.web.policies_view import get_policy, list_policies
from reclaim.web.problems import Problem
from reclaim.web.state import web_state

router = APIRouter(tags=["policies"])
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]


@router.get("/policies", response_model=PolicyPage, summary="List policies")
async def policies_list(request: Request, _: Viewer) -> dict[str, Any]:
    """Every policy: configured ones first, then ones removed from the file."""
    items = await run_in_threadpool(list_policies, web_state(request).ctx)
    return {"items": items, "next": None}


@router.get(
    "/policies/{name}",
    response_model=PolicyOut,
    summary="Show a policy",
    responses=problem_responses(404),
)
async def policies_show(
    request: Request, name: Annotated[str, Path(max_length=100)], _: Viewer
) -> dict[str, Any]:
    """One policy by name (case-insensitive)."""
    policy = await run_in_threadpool(get_policy, web_state(request).ctx, name)
    if policy is None:
        raise Problem(404, f"No policy named {name!r}.", kind="not-found")
    return policy
