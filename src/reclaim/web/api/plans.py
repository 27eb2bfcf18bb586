"""``/api/v1/plans``: preview the next run, list and show plans, approve or reject them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from reclaim.web import actions
from reclaim.web.api.case_models import (
    DecisionIn,
    PlanCreateIn,
    PlanDecisionOut,
    PlanOut,
    PlanPage,
)
from reclaim.web.api.models import problem_responses
from reclaim.web.auth.deps import Principal, require
from reclaim.web.auth.roles import Role
from reclaim.web.paging import DEFAULT_LIMIT, MAX_LIMIT, next_link
from reclaim.web.plan_views import PLAN_STATUSES, plan_detail, plan_page
from reclaim.web.problems import Problem
from reclaim.web.state import web_state

router = APIRouter(tags=["plans"])
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
PlanId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/plans", response_model=PlanPage, summary="List plans", responses=problem_responses(400)
)
async def plans_list(
    request: Request,
    response: Response,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=30)] = None,
) -> dict[str, Any]:
    """Stored plans, newest first; ``status`` narrows (e.g. ``awaiting_approval``)."""
    if status and status not in PLAN_STATUSES:
        raise Problem(
            400, f"unknown status {status!r} (known: {', '.join(PLAN_STATUSES)})", kind="bad-filter"
        )
    rows, nxt = await run_in_threadpool(
        plan_page, web_state(request).ctx.engine, limit=limit, cursor=cursor, status=status
    )
    link = next_link(request.url, nxt)
    if link:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return {"items": rows, "next": link}


@router.post(
    "/plans",
    response_model=PlanOut,
    status_code=201,
    summary="Preview the next run",
    responses=problem_responses(404),
)
async def plans_create(
    request: Request,
    me: Operator,
    body: Annotated[PlanCreateIn | None, Body()] = None,
) -> dict[str, Any]:
    """Plan what the next run of one policy (or every enabled one) would do, and store
    the plan; nothing else changes. Approve it by id when it awaits approval."""
    state = web_state(request)
    settings = state.ctx.settings
    name = body.policy if body else None
    if name is None:
        chosen = [p for p in settings.policies if p.enabled]
    else:
        try:
            chosen = [settings.policy(name)]
        except KeyError:
            raise Problem(404, f"No policy named {name!r}.", kind="not-found") from None

    def act() -> dict[str, Any] | None:
        made = actions.make_plan(
            state.ctx.engine, settings, policies=chosen, actor=me.actor(), now=state.now_dt()
        )
        return plan_detail(state.ctx.engine, settings, made.plan_id)

    found = await run_in_threadpool(act)
    assert found is not None
    return found


@router.get(
    "/plans/{plan_id}",
    response_model=PlanOut,
    summary="Show a plan",
    responses=problem_responses(404),
)
async def plans_show(request: Request, plan_id: PlanId, _: Viewer) -> dict[str, Any]:
    """A stored plan: items per policy with status (planned, deferred by cap, halted,
    blocked by the kill switch), caps, alerts, savings and impact."""
    state = web_state(request)
    found = await run_in_threadpool(plan_detail, state.ctx.engine, state.ctx.settings, plan_id)
    if found is None:
        raise Problem(404, f"No plan #{plan_id}.", kind="not-found")
    return found


async def _decide(
    request: Request, plan_id: int, body: DecisionIn | None, me: Principal, *, approve: bool
) -> dict[str, Any]:
    state = web_state(request)

    def act() -> dict[str, Any]:
        _, woken = actions.decide_plan(
            state.ctx.engine,
            plan_id,
            approve=approve,
            note=body.note if body else None,
            actor=me.actor(),
            now=state.now_dt(),
        )
        found = plan_detail(state.ctx.engine, state.ctx.settings, plan_id)
        assert found is not None
        return {**found, "removals_released": woken}

    try:
        return await run_in_threadpool(act)
    except actions.ActionError as exc:
        kind = "not-found" if exc.status == 404 else "conflict"
        raise Problem(exc.status, exc.detail, kind=kind) from None


@router.post(
    "/plans/{plan_id}/approve",
    response_model=PlanDecisionOut,
    summary="Approve a plan",
    responses=problem_responses(404, 409),
)
async def plans_approve(
    request: Request,
    plan_id: PlanId,
    me: Operator,
    body: Annotated[DecisionIn | None, Body()] = None,
) -> dict[str, Any]:
    """Approve: the plan's planned removals may go ahead. 409 for a rejected plan or
    one older than seven days (plan again and approve the new one)."""
    return await _decide(request, plan_id, body, me, approve=True)


@router.post(
    "/plans/{plan_id}/reject",
    response_model=PlanDecisionOut,
    summary="Reject a plan",
    responses=problem_responses(404, 409),
)
async def plans_reject(
    request: Request,
    plan_id: PlanId,
    me: Operator,
    body: Annotated[DecisionIn | None, Body()] = None,
) -> dict[str, Any]:
    """Reject: its removals keep waiting and are planned again at the next cycle."""
    return await _decide(request, plan_id, body, me, approve=False)
