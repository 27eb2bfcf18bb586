"""``/api/v1/audit``: the append-only audit log, newest first, paged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from reclaim.web import audit
from reclaim.web.api.models import AuditPage, problem_responses
from reclaim.web.auth.deps import Principal, require
from reclaim.web.auth.roles import Role
from reclaim.web.paging import DEFAULT_LIMIT, MAX_LIMIT, next_link
from reclaim.web.state import web_state

router = APIRouter(tags=["audit"])


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Read the audit log",
    responses=problem_responses(400),
)
async def audit_list(
    request: Request,
    response: Response,
    _: Annotated[Principal, Depends(require(Role.VIEWER))],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[
        str | None, Query(max_length=60, description="Exact action, or a prefix ending in '.'.")
    ] = None,
    actor: Annotated[str | None, Query(max_length=320)] = None,
) -> dict[str, Any]:
    """Who did what, when and from where. Follow ``next`` (also sent as a Link header)."""
    rows, nxt = await run_in_threadpool(
        audit.page,
        web_state(request).ctx.engine,
        limit=limit,
        cursor=cursor,
        action=action,
        actor=actor,
    )
    link = next_link(request.url, nxt)
    if link:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return {"items": [r.as_dict() for r in rows], "next": link}
