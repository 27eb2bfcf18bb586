"""``/api/v1/policies``: the licensed products Reclaim manages (read-only), with their
verdicts, savings, last and next run, and a preview of the next run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from reclaim.web.api.models import PolicyOut, PolicyPage, PreviewPage, problem_responses
from reclaim.web.auth.deps import Principal, require
from reclaim.web.auth.roles import Role
from reclaim.web.paging import DEFAULT_LIMIT, MAX_LIMIT, next_link
from reclaim.web.policies_view import policy_overview, preview_page
from reclaim.web.problems import Problem
from reclaim.web.state import web_state

router = APIRouter(tags=["policies"])
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
PolicyName = Annotated[str, Path(max_length=100)]


@router.get("/policies", response_model=PolicyPage, summary="List policies")
async def policies_list(request: Request, _: Viewer) -> dict[str, Any]:
    """Every policy: configured ones first, then ones removed from the file. Enabled
    ones come with their verdicts, savings, last and next run, and preview counts."""
    web = web_state(request)
    items, _busy = await run_in_threadpool(
        lambda: policy_overview(web.ctx, now=web.now_dt(), cache=web.savings)
    )
    return {"items": items, "next": None}


@router.get(
    "/policies/{name}",
    response_model=PolicyOut,
    summary="Show a policy",
    responses=problem_responses(404),
)
async def policies_show(request: Request, name: PolicyName, _: Viewer) -> dict[str, Any]:
    """One policy by name (case-insensitive)."""
    web = web_state(request)
    found, _busy = await run_in_threadpool(
        lambda: policy_overview(web.ctx, now=web.now_dt(), cache=web.savings, name=name)
    )
    if not found:
        raise Problem(404, f"No policy named {name!r}.", kind="not-found")
    return found[0]


@router.get(
    "/policies/{name}/preview",
    response_model=PreviewPage,
    summary="Preview a policy's next run",
    responses=problem_responses(400, 404),
)
async def policies_preview(
    request: Request,
    response: Response,
    name: PolicyName,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Who the next run would ask or remove, in the order it takes them, with what it
    would hold back (cap, guard, kill switch) and why. Nothing is stored or sent."""
    web = web_state(request)
    found = await run_in_threadpool(
        lambda: preview_page(
            web.ctx, name, now=web.now_dt(), cache=web.savings, limit=limit, cursor=cursor
        )
    )
    if found is None:
        raise Problem(404, f"No enabled policy named {name!r}.", kind="not-found")
    link = next_link(request.url, found.next)
    if link:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return {
        "items": found.items,
        "next": link,
        "total": found.total,
        "evaluated_at": found.evaluated_at,
    }
