"""Cases pages: the searchable list (paged on the server), a case's execution log with
answer and restore forms, and the CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from reclaim.domain.case import CaseState, Status
from reclaim.web import actions
from reclaim.web.auth.deps import Principal, require_page
from reclaim.web.auth.roles import Role, allows
from reclaim.web.case_queries import CaseFilter, UnknownFilter, case_detail, case_page, iter_cases
from reclaim.web.paging import DEFAULT_LIMIT, next_link
from reclaim.web.problems import Problem
from reclaim.web.state import web_state
from reclaim.web.ui.csv_cells import cell
from reclaim.web.ui.render import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(require_page(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require_page(Role.OPERATOR))]
Text = Annotated[str, Query(max_length=320)]
CaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _filter(policy: str, state: str, status: str, open_: str, user: str) -> CaseFilter:
    try:
        return CaseFilter(
            policy or None, state or None, status or None, open_ == "1", user or None
        ).checked()
    except UnknownFilter as exc:
        raise Problem(400, str(exc), kind="bad-filter") from None


@router.get("/cases")
async def cases_list(
    request: Request,
    me: Viewer,
    policy: Text = "",
    state: Text = "",
    status: Text = "",
    open: Text = "",
    user: Text = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Cases, newest first, with filters and server-side paging."""
    web = web_state(request)
    f = _filter(policy, state, status, open, user)
    rows, nxt = await run_in_threadpool(
        case_page, web.ctx.engine, f, limit=DEFAULT_LIMIT, cursor=cursor
    )
    return render(
        request,
        "cases.html",
        me=me,
        rows=rows,
        f=f,
        query=f.as_query(),
        policies=[p.name for p in web.ctx.settings.policies],
        states=[s.value for s in CaseState],
        statuses=[s.value for s in Status],
        first_page=cursor is None,
        next_url=next_link(request.url, nxt),
    )


@router.get("/cases/{case_id}")
async def case_page_view(
    request: Request, case_id: CaseId, me: Viewer, done: Text = ""
) -> Response:
    """One case: its step-by-step history, and answer / restore forms for operators."""
    found = await run_in_threadpool(case_detail, web_state(request).ctx.engine, case_id)
    if found is None:
        raise Problem(404, f"No case #{case_id}.", kind="not-found")
    return render(
        request,
        "case.html",
        me=me,
        c=found,
        can_act=allows(me.role, Role.OPERATOR),
        done=done,
    )


def _back(case_id: int, done: str) -> Response:
    return RedirectResponse(f"/cases/{case_id}?done={done}", status_code=303)


@router.post("/cases/{case_id}/answer")
async def case_answer(
    request: Request,
    case_id: CaseId,
    me: Operator,
    choice: Annotated[str, Form(max_length=10)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Answer for the employee (keep or release); recorded as given by the operator."""
    if choice not in ("keep", "release"):
        raise Problem(400, "The answer must be keep or release.")
    web = web_state(request)
    try:
        await run_in_threadpool(
            lambda: actions.answer_for(
                web.ctx.engine,
                web.ctx.settings,
                case_id,
                keep=choice == "keep",
                reason=reason.strip() or None,
                actor=me.actor(),
                now=web.now_dt(),
            )
        )
    except actions.ActionError as exc:
        raise Problem(exc.status, exc.detail) from None
    return _back(case_id, "answered")


@router.post("/cases/{case_id}/restore")
async def case_restore(
    request: Request,
    case_id: CaseId,
    me: Operator,
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    """Give the license back (through the write gate, like a removal)."""
    web = web_state(request)
    try:
        await run_in_threadpool(
            lambda: actions.restore(
                web.ctx.engine,
                web.ctx.settings,
                case_id,
                reason=reason.strip(),
                actor=me.actor(),
                now=web.now_dt(),
                directories=web.directories,
            )
        )
    except actions.RestoreUnavailable:
        raise Problem(501, "Restoring is not available in this build.") from None
    except actions.ActionError as exc:
        raise Problem(exc.status, exc.detail) from None
    return _back(case_id, "restored")


_CSV_COLUMNS = (
    "id",
    "policy",
    "user",
    "cycle",
    "state",
    "status",
    "outcome",
    "verdict",
    "reason",
    "opened_at",
    "updated_at",
    "next_due_at",
    "attempts",
    "last_error",
)


def _csv(engine: Engine, f: CaseFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for n, row in enumerate(iter_cases(engine, f), start=1):
        writer.writerow([cell(row[c]) for c in _CSV_COLUMNS])
        if n % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get("/cases.csv")
async def cases_csv(
    request: Request,
    _: Viewer,
    policy: Text = "",
    state: Text = "",
    status: Text = "",
    open: Text = "",
    user: Text = "",
) -> Response:
    """The (filtered) cases as CSV, streamed; formula-looking cells are defused."""
    f = _filter(policy, state, status, open, user)
    return StreamingResponse(
        _csv(web_state(request).ctx.engine, f),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="reclaim-cases.csv"'},
    )
