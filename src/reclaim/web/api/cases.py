"""``/api/v1/cases``: list (filters, keyset paging), detail with history, answer, restore."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from reclaim.web import actions
from reclaim.web.api.case_models import AnswerIn, CaseDetail, CasePage, RestoreIn
from reclaim.web.api.models import problem_responses
from reclaim.web.auth.deps import Principal, require
from reclaim.web.auth.roles import Role
from reclaim.web.case_queries import CaseFilter, UnknownFilter, case_detail, case_page
from reclaim.web.paging import DEFAULT_LIMIT, MAX_LIMIT, next_link
from reclaim.web.problems import Problem
from reclaim.web.state import web_state

router = APIRouter(tags=["cases"])
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
CaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/cases", response_model=CasePage, summary="List cases", responses=problem_responses(400)
)
async def cases_list(
    request: Request,
    response: Response,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    policy: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[str | None, Query(max_length=30, description="A case state.")] = None,
    status: Annotated[
        str | None, Query(max_length=20, description="in_progress, success, failed, …")
    ] = None,
    open: Annotated[bool, Query(description="Only cases still in progress.")] = False,
    user: Annotated[str | None, Query(max_length=320, description="Part of the UPN.")] = None,
) -> dict[str, Any]:
    """Cases, newest first, narrowed by any of the filters. Follow ``next``."""
    try:
        f = CaseFilter(policy, state, status, open, user).checked()
    except UnknownFilter as exc:
        raise Problem(400, str(exc), kind="bad-filter") from None
    rows, nxt = await run_in_threadpool(
        case_page, web_state(request).ctx.engine, f, limit=limit, cursor=cursor
    )
    link = next_link(request.url, nxt)
    if link:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return {"items": rows, "next": link}


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    response_model_by_alias=True,
    summary="Show a case with its history",
    responses=problem_responses(404),
)
async def cases_show(request: Request, case_id: CaseId, _: Viewer) -> dict[str, Any]:
    """One case: its state, every step of its history, directory writes, questions."""
    found = await run_in_threadpool(case_detail, web_state(request).ctx.engine, case_id)
    if found is None:
        raise Problem(404, f"No case #{case_id}.", kind="not-found")
    return found


@router.post(
    "/cases/{case_id}/answer",
    response_model=CaseDetail,
    response_model_by_alias=True,
    summary="Answer for the employee",
    responses=problem_responses(404, 409),
)
async def cases_answer(
    request: Request, case_id: CaseId, body: AnswerIn, me: Operator
) -> dict[str, Any]:
    """Record the employee's answer (keep or release) on their behalf.

    The case's history and the audit log name the caller as who recorded it. Only a
    case with an open question (asked or reminded) can be answered: 409 otherwise.
    """
    state = web_state(request)

    def act() -> dict[str, Any] | None:
        actions.answer_for(
            state.ctx.engine,
            state.ctx.settings,
            case_id,
            keep=body.choice == "keep",
            reason=body.reason,
            actor=me.actor(),
            now=state.now_dt(),
        )
        return case_detail(state.ctx.engine, case_id)

    try:
        found = await run_in_threadpool(act)
    except actions.ActionError as exc:
        raise Problem(exc.status, exc.detail, kind=_kind(exc.status)) from None
    assert found is not None
    return found


@router.post(
    "/cases/{case_id}/restore",
    response_model=CaseDetail,
    response_model_by_alias=True,
    summary="Give the license back",
    responses=problem_responses(404, 409, 501),
)
async def cases_restore(
    request: Request, case_id: CaseId, body: RestoreIn, me: Operator
) -> dict[str, Any]:
    """Put the person back in the license group (a removed case becomes ``restored``).

    The write goes through the same gate as removals (dry-run, kill switch, recorded).
    """
    state = web_state(request)

    def act() -> dict[str, Any] | None:
        actions.restore(
            state.ctx.engine,
            state.ctx.settings,
            case_id,
            reason=body.reason,
            actor=me.actor(),
            now=state.now_dt(),
            directories=state.directories,
        )
        return case_detail(state.ctx.engine, case_id)

    try:
        found = await run_in_threadpool(act)
    except actions.RestoreUnavailable:
        raise Problem(
            501, "Restoring is not available in this build.", kind="not-implemented"
        ) from None
    except actions.ActionError as exc:
        raise Problem(exc.status, exc.detail, kind=_kind(exc.status)) from None
    assert found is not None
    return found


def _kind(status: int) -> str:
    return {404: "not-found", 409: "conflict"}.get(status, "bad-request")
