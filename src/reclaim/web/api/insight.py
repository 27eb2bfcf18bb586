"""``/api/v1/candidates``, ``/api/v1/control`` (kill switch) and ``/api/v1/reports/*``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from reclaim.domain.usage import VerdictKind
from reclaim.services.decisions import evaluate_in_runs, verdict_row
from reclaim.web import actions
from reclaim.web.api.case_models import CandidatePage, ControlIn, ControlOut, Report
from reclaim.web.api.models import problem_responses
from reclaim.web.auth.deps import Principal, require
from reclaim.web.auth.roles import Role
from reclaim.web.paging import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor, next_link
from reclaim.web.problems import Problem
from reclaim.web.report_queries import funnel, reclaimed_by_month
from reclaim.web.state import WebState, web_state

router = APIRouter()
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
VERDICTS = [v.value for v in VerdictKind]


# -- candidates ---------------------------------------------------------------------------
def _candidates(
    state: WebState,
    policy: str | None,
    verdict: str | None,
    as_of: dt.date,
    *,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The rows after ``after`` (policy, user), in that order, up to one past ``limit``.

    Policies are judged in name order, in runs (``evaluate_in_runs``), and judging
    stops once the page is full: a page of a large tenant judges the policies it shows,
    not every member of every policy (1.5 GB at 500,000 people).
    """
    settings = state.ctx.settings
    chosen = [settings.policy(policy)] if policy else [p for p in settings.policies if p.enabled]
    chosen = sorted(
        (p for p in chosen if after is None or p.name >= after[0]), key=lambda p: p.name
    )
    verdicts = evaluate_in_runs(
        state.ctx.engine,
        chosen,
        as_of=as_of,
        now=state.now_dt(),
        freshness_days=settings.usage.freshness_days,
        configured=settings.policies,
    )
    rows: list[dict[str, Any]] = []
    for pv in verdicts:
        found = []
        for m in pv.rows():
            kind = m.verdict.kind
            if (verdict == "all") or (verdict == kind.value) or (not verdict and kind.is_candidate):
                row = verdict_row(pv.policy.name, m, window_days=pv.window_days)
                if after is None or (row["policy"], row["user"]) > after:
                    found.append(row)
        rows += sorted(found, key=lambda r: r["user"])
        if len(rows) > limit:
            break
    return rows


@router.get(
    "/candidates",
    response_model=CandidatePage,
    summary="Members' verdicts",
    tags=["candidates"],
    responses=problem_responses(400, 404),
)
async def candidates(
    request: Request,
    response: Response,
    _: Viewer,
    policy: Annotated[str | None, Query(max_length=100)] = None,
    verdict: Annotated[
        str | None,
        Query(max_length=20, description="A verdict, or 'all'; default: candidates only."),
    ] = None,
    as_of: Annotated[dt.date | None, Query(description="Default: today.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> dict[str, Any]:
    """Each member's verdict and reason, by policy then user (``reclaim candidates``)."""
    state = web_state(request)
    if verdict and verdict != "all" and verdict not in VERDICTS:
        known = ", ".join([*VERDICTS, "all"])
        raise Problem(400, f"unknown verdict {verdict!r} (known: {known})", kind="bad-filter")
    if policy:
        try:
            state.ctx.settings.policy(policy)
        except KeyError:
            raise Problem(404, f"No policy named {policy!r}.", kind="not-found") from None
    key = decode_cursor(cursor)
    after: tuple[str, str] | None = None
    if key:
        last_policy, last_user = key.get("p"), key.get("u")
        if not (isinstance(last_policy, str) and isinstance(last_user, str)):
            raise Problem(400, "The cursor is not valid; start again without one.")
        after = (last_policy, last_user)
    day = as_of or state.now_dt().date()
    rows = await run_in_threadpool(
        lambda: _candidates(state, policy, verdict, day, after=after, limit=limit)
    )
    page, more = rows[:limit], len(rows) > limit
    nxt = encode_cursor({"p": page[-1]["policy"], "u": page[-1]["user"]}) if more else None
    link = next_link(request.url, nxt)
    if link:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return {"as_of": day.isoformat(), "items": page, "next": link}


# -- the kill switch ----------------------------------------------------------------------
@router.get("/control", response_model=ControlOut, summary="The kill switch", tags=["control"])
async def control(request: Request, _: Viewer) -> dict[str, Any]:
    """Whether directory writes are paused, since when and by whom."""
    state = web_state(request)

    def read() -> dict[str, Any]:
        with state.ctx.engine.connect() as conn:
            return actions.control_state(conn, state.ctx.settings)

    return await run_in_threadpool(read)


async def _switch(request: Request, me: Principal, body: ControlIn | None, paused: bool) -> Any:
    state = web_state(request)
    return await run_in_threadpool(
        lambda: actions.set_paused(
            state.ctx.engine,
            state.ctx.settings,
            paused=paused,
            reason=body.reason if body else None,
            actor=me.actor(),
            now=state.now_dt(),
        )
    )


@router.post(
    "/control/pause", response_model=ControlOut, summary="Kill switch on", tags=["control"]
)
async def pause(
    request: Request, me: Operator, body: Annotated[ControlIn | None, Body()] = None
) -> dict[str, Any]:
    """No directory write happens, in any process, until resume (``reclaim pause``)."""
    result: dict[str, Any] = await _switch(request, me, body, True)
    return result


@router.post(
    "/control/resume", response_model=ControlOut, summary="Kill switch off", tags=["control"]
)
async def resume(
    request: Request, me: Operator, body: Annotated[ControlIn | None, Body()] = None
) -> dict[str, Any]:
    """Directory writes allowed again, unless ``safety.paused`` is set in the file
    (``paused`` stays true then; ``paused_in_config`` says why)."""
    result: dict[str, Any] = await _switch(request, me, body, False)
    return result


# -- reports ------------------------------------------------------------------------------
@router.get("/reports/savings", response_model=Report, summary="Savings", tags=["reports"])
async def report_savings(request: Request, _: Viewer) -> dict[str, Any]:
    """Per policy and per currency: realized savings (seats reclaimed × seat cost, per
    month and per year), potential savings, and seats to drop at renewal. The same
    numbers as ``reclaim report --json``."""
    state = web_state(request)
    return await run_in_threadpool(
        state.savings.get, state.ctx.engine, state.ctx.settings, now=state.now_dt()
    )


@router.get("/reports/funnel", response_model=Report, summary="Campaign funnel", tags=["reports"])
async def report_funnel(request: Request, _: Viewer) -> dict[str, Any]:
    """Cases opened, asked, reminded, answered (kept / released), no response, could not
    ask, removed, restored; response and regret rates; in total and per policy."""
    engine = web_state(request).ctx.engine

    def read() -> dict[str, Any]:
        with engine.connect() as conn:
            return funnel(conn)

    return await run_in_threadpool(read)


@router.get("/reports/monthly", response_model=Report, summary="Per month", tags=["reports"])
async def report_monthly(
    request: Request, _: Viewer, months: Annotated[int, Query(ge=1, le=60)] = 12
) -> dict[str, Any]:
    """Seats reclaimed per month (in total and per policy) and the monthly saving they
    added, per currency, for the last ``months`` months."""
    state = web_state(request)

    def read() -> dict[str, Any]:
        with state.ctx.engine.connect() as conn:
            return reclaimed_by_month(
                conn, state.ctx.settings, today=state.now_dt().date(), months=months
            )

    return await run_in_threadpool(read)
