"""Read-only pages: dashboard, policies, audit log (paged on the server) and its CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from reclaim.web import audit
from reclaim.web.auth.deps import Principal, require_page
from reclaim.web.auth.roles import Role
from reclaim.web.dashboard import build_dashboard
from reclaim.web.paging import DEFAULT_LIMIT, next_link
from reclaim.web.policies_view import list_policies
from reclaim.web.state import web_state
from reclaim.web.ui.csv_cells import cell
from reclaim.web.ui.render import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(require_page(Role.VIEWER))]
Filter = Annotated[str, Query(max_length=320)]


@router.get("/")
async def dashboard(request: Request, me: Viewer) -> Response:
    """Numbers at a glance."""
    web = web_state(request)
    d = await run_in_threadpool(
        lambda: build_dashboard(web.ctx, now=web.now_dt(), cache=web.savings)
    )
    return render(request, "dashboard.html", me=me, d=d)


@router.get("/policies")
async def policies(request: Request, me: Viewer) -> Response:
    """Every policy with its settings."""
    items = await run_in_threadpool(list_policies, web_state(request).ctx)
    return render(request, "policies.html", me=me, d={"policies": items})


@router.get("/audit")
async def audit_log(
    request: Request,
    me: Viewer,
    action: Filter = "",
    actor: Filter = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The audit log, newest first, one page at a time."""
    rows, nxt = await run_in_threadpool(
        audit.page,
        web_state(request).ctx.engine,
        limit=DEFAULT_LIMIT,
        cursor=cursor,
        action=action or None,
        actor=actor or None,
    )
    return render(
        request,
        "audit.html",
        me=me,
        rows=[r.as_dict() | {"at": r.at} for r in rows],
        action=action,
        actor=actor,
        first_page=cursor is None,
        next_url=next_link(request.url, nxt),
    )


_CSV_COLUMNS = ("id", "at", "actor", "actor_kind", "action", "target", "detail", "client_ip")


def _csv_rows(engine: object, action: str | None, actor: str | None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    cursor: str | None = None
    while True:
        rows, cursor = audit.page(engine, limit=1000, cursor=cursor, action=action, actor=actor)  # type: ignore[arg-type]
        for r in rows:
            d = r.as_dict()
            writer.writerow([cell(d[c]) for c in _CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if cursor is None:
            return


@router.get("/audit/export.csv")
async def audit_csv(
    request: Request, _: Viewer, action: Filter = "", actor: Filter = ""
) -> Response:
    """The (filtered) audit log as CSV, streamed a thousand rows at a time."""
    engine = web_state(request).ctx.engine
    return StreamingResponse(
        _csv_rows(engine, action or None, actor or None),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="reclaim-audit.csv"'},
    )
