"""Plans pages: the list, a plan with its caps, alerts, impact and approve / reject
forms, and "preview the next run"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from reclaim.web import actions
from reclaim.web.auth.deps import Principal, require_page
from reclaim.web.auth.roles import Role, allows
from reclaim.web.paging import DEFAULT_LIMIT, next_link
from reclaim.web.plan_views import PLAN_STATUSES, plan_detail, plan_page
from reclaim.web.problems import Problem
from reclaim.web.state import web_state
from reclaim.web.ui.render import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(require_page(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require_page(Role.OPERATOR))]
PlanId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/plans")
async def plans_list(
    request: Request,
    me: Viewer,
    status: Annotated[str, Query(max_length=30)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Plans, newest first (filter by status)."""
    if status and status not in PLAN_STATUSES:
        raise Problem(400, f"unknown status {status!r}")
    web = web_state(request)
    rows, nxt = await run_in_threadpool(
        plan_page, web.ctx.engine, limit=DEFAULT_LIMIT, cursor=cursor, status=status or None
    )
    return render(
        request,
        "plans.html",
        me=me,
        rows=rows,
        status=status,
        statuses=PLAN_STATUSES,
        policies=[p.name for p in web.ctx.settings.policies if p.enabled],
        can_act=allows(me.role, Role.OPERATOR),
        first_page=cursor is None,
        next_url=next_link(request.url, nxt),
    )


@router.post("/plans")
async def plans_create(
    request: Request, me: Operator, policy: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """Preview the next run (one policy or all enabled ones) and show the stored plan."""
    web = web_state(request)
    settings = web.ctx.settings
    try:
        chosen = (
            [settings.policy(policy)] if policy else [p for p in settings.policies if p.enabled]
        )
    except KeyError:
        raise Problem(404, f"No policy named {policy!r}.") from None
    made = await run_in_threadpool(
        lambda: actions.make_plan(
            web.ctx.engine, settings, policies=chosen, actor=me.actor(), now=web.now_dt()
        )
    )
    return RedirectResponse(f"/plans/{made.plan_id}", status_code=303)


@router.get("/plans/{plan_id}")
async def plan_view(
    request: Request, plan_id: PlanId, me: Viewer, done: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    """A plan: per policy its cap, alerts, items and what else each person loses."""
    web = web_state(request)
    found = await run_in_threadpool(plan_detail, web.ctx.engine, web.ctx.settings, plan_id)
    if found is None:
        raise Problem(404, f"No plan #{plan_id}.", kind="not-found")
    decidable = found["status"] in ("awaiting_approval", "proposed")
    return render(
        request,
        "plan.html",
        me=me,
        p=found,
        content=found["content"],
        can_act=allows(me.role, Role.OPERATOR) and decidable,
        done=done,
    )


async def _decide(
    request: Request, plan_id: int, me: Principal, note: str, approve: bool
) -> Response:
    web = web_state(request)
    try:
        await run_in_threadpool(
            lambda: actions.decide_plan(
                web.ctx.engine,
                plan_id,
                approve=approve,
                note=note.strip() or None,
                actor=me.actor(),
                now=web.now_dt(),
            )
        )
    except actions.ActionError as exc:
        raise Problem(exc.status, exc.detail) from None
    return RedirectResponse(
        f"/plans/{plan_id}?done={'approved' if approve else 'rejected'}", status_code=303
    )


@router.post("/plans/{plan_id}/approve")
async def plan_approve(
    request: Request,
    plan_id: PlanId,
    me: Operator,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve the plan: its planned removals may go ahead."""
    return await _decide(request, plan_id, me, note, True)


@router.post("/plans/{plan_id}/reject")
async def plan_reject(
    request: Request,
    plan_id: PlanId,
    me: Operator,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Reject the plan: its removals wait for the next cycle's plan."""
    return await _decide(request, plan_id, me, note, False)
