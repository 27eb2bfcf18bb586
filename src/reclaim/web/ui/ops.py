"""Operations pages: campaigns, the kill switch, trend charts (SVG) and the savings CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from reclaim.services.campaign_report import campaign_report
from reclaim.web import actions
from reclaim.web.auth.deps import Principal, require_page
from reclaim.web.auth.roles import Role, allows
from reclaim.web.charts import SVG_CSP, savings_chart, seats_chart
from reclaim.web.report_queries import (
    answer_times,
    funnel,
    notification_counts,
    reclaimed_by_month,
)
from reclaim.web.state import web_state
from reclaim.web.ui.csv_cells import cell
from reclaim.web.ui.render import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(require_page(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require_page(Role.OPERATOR))]


def campaign_numbers(engine: Engine) -> dict[str, Any]:
    """Per policy and in total, from ``services.campaign_report`` (its definitions),
    plus the outbox's delivery counts and removals given back."""
    per = [s.to_dict() for s in campaign_report(engine)]
    keys = (
        "sent",
        "reminded",
        "answered",
        "answered_keep",
        "answered_release",
        "no_response",
        "could_not_ask",
        "awaiting",
        "restore_requests",
    )
    total: dict[str, Any] = {k: sum(int(p[k]) for p in per) for k in keys}
    total["response_rate"] = total["answered"] / total["sent"] if total["sent"] else None
    released = total["answered_release"]
    total["regret_rate"] = total["restore_requests"] / released if released else None
    with engine.connect() as conn:
        flow = funnel(conn)["total"]
        times = answer_times(conn)
        outbox = notification_counts(conn)
    return {"policies": per, "total": total, "flow": flow, "times": times, "outbox": outbox}


@router.get("/campaigns")
async def campaigns(request: Request, me: Viewer) -> Response:
    """Sent, reminded, answered, no response, could not ask; response rate, time to
    answer and regret rate; in total and per policy."""
    engine = web_state(request).ctx.engine
    d = await run_in_threadpool(campaign_numbers, engine)
    return render(request, "campaigns.html", me=me, d=d)


@router.get("/control")
async def control(request: Request, me: Viewer) -> Response:
    """The kill switch, with pause / resume for operators."""
    web = web_state(request)

    def read() -> dict[str, Any]:
        with web.ctx.engine.connect() as conn:
            return actions.control_state(conn, web.ctx.settings)

    return render(
        request,
        "control.html",
        me=me,
        c=await run_in_threadpool(read),
        can_act=allows(me.role, Role.OPERATOR),
    )


@router.post("/control/{switch}")
async def control_switch(
    request: Request,
    switch: str,
    me: Operator,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Pause or resume every directory write (the same switch as ``reclaim pause``)."""
    if switch not in ("pause", "resume"):
        return RedirectResponse("/control", status_code=303)
    web = web_state(request)
    await run_in_threadpool(
        lambda: actions.set_paused(
            web.ctx.engine,
            web.ctx.settings,
            paused=switch == "pause",
            reason=reason.strip() or None,
            actor=me.actor(),
            now=web.now_dt(),
        )
    )
    return RedirectResponse("/control", status_code=303)


def _monthly(request: Request) -> dict[str, Any]:
    web = web_state(request)
    now = web.now_dt()

    def compute() -> dict[str, Any]:
        with web.ctx.engine.connect() as conn:
            return reclaimed_by_month(conn, web.ctx.settings, today=now.date())

    result: dict[str, Any] = web.savings.derived(web.ctx.engine, "monthly", compute, now=now)
    return result


def _svg(body: str) -> Response:
    # An SVG shown through <img> runs no script; its inline styles are allowed here only.
    return Response(body, media_type="image/svg+xml", headers={"Content-Security-Policy": SVG_CSP})


@router.get("/charts/seats.svg")
async def chart_seats(request: Request, _: Viewer) -> Response:
    """Seats reclaimed per month, stacked per policy."""
    m = await run_in_threadpool(_monthly, request)
    return _svg(await run_in_threadpool(seats_chart, m["months"], m["per_policy"]))


@router.get("/charts/savings.svg")
async def chart_savings(request: Request, _: Viewer) -> Response:
    """The monthly saving added by each month's reclaimed seats, per currency."""
    m = await run_in_threadpool(_monthly, request)
    return _svg(await run_in_threadpool(savings_chart, m["months"], m["monthly_saving_added"]))


_SAVINGS_COLUMNS = (
    "policy",
    "currency",
    "seat_cost",
    "members",
    "candidates",
    "seats_reclaimed",
    "seats_pending",
    "realized_monthly",
    "realized_yearly",
    "potential_monthly",
    "potential_yearly",
    "renews_on",
    "seats_to_drop",
    "renewal_saving_yearly",
)


@router.get("/savings.csv")
async def savings_csv(request: Request, _: Viewer) -> Response:
    """The savings report per policy as CSV (the numbers of ``reclaim report``)."""
    web = web_state(request)
    report = await run_in_threadpool(
        web.savings.get, web.ctx.engine, web.ctx.settings, now=web.now_dt()
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_SAVINGS_COLUMNS)
    for r in report["policies"]:
        renewal = r["renewal"] or {}
        writer.writerow(
            cell(v)
            for v in (
                r["policy"],
                r["seat_cost"]["currency"],
                r["seat_cost"]["amount"],
                r["members"],
                r["candidates"],
                r["seats_reclaimed"],
                r["seats_pending"],
                r["realized"]["monthly"],
                r["realized"]["yearly"],
                r["potential"]["monthly"],
                r["potential"]["yearly"],
                renewal.get("renews_on", ""),
                renewal.get("seats_to_drop", ""),
                renewal.get("saving", {}).get("yearly", ""),
            )
        )
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="reclaim-savings.csv"'},
    )
