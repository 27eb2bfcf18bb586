"""Read-only pages: dashboard, policies, audit log (paged on the server) and its CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from reclaim.web import audit
from reclaim.web.auth.deps import Principal, require_page
from reclaim.web.auth.roles import Role
from reclaim.web.dashboard import build_dashboard
from reclaim.web.paging import DEFAULT_LIMIT, next_link
from reclaim.web.policies_view import (
    PREVIEW_SHOWN,
    PreviewSlice,
    outlooks,
    policy_overview,
    preview_page,
)
from reclaim.web.problems import Problem
from reclaim.web.state import web_state
from reclaim.web.ui.csv_cells import cell
from reclaim.web.ui.render import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(require_page(Role.VIEWER))]
Filter = Annotated[str, Query(max_length=320)]
REFRESH_SECONDS = 3  # how often a page showing "recomputing…" reloads itself


@router.get("/")
async def dashboard(request: Request, me: Viewer) -> Response:
    """Numbers at a glance."""
    web = web_state(request)
    d = await run_in_threadpool(
        lambda: build_dashboard(
            web.ctx, now=web.now_dt(), cache=web.savings, wait=web.settings.render_wait
        )
    )
    return render(request, "dashboard.html", me=me, d=d, refresh_seconds=REFRESH_SECONDS)


@router.get("/policies")
async def policies(request: Request, me: Viewer) -> Response:
    """Every policy with its verdicts, savings, runs, the first rows of its next-run
    preview, and its settings."""
    web = web_state(request)
    wait = web.settings.render_wait

    def read() -> dict[str, Any]:
        now = web.now_dt()
        listed, recomputing = policy_overview(web.ctx, now=now, cache=web.savings, wait=wait)
        # Cached by now (or still running): this second lookup does not wait again.
        looks = outlooks(web.ctx, now=now, cache=web.savings, wait=0).value or {}
        shown = {name: look.items[:PREVIEW_SHOWN] for name, look in looks.items()}
        return {"policies": listed, "previews": shown, "recomputing": recomputing}

    return render(
        request,
        "policies.html",
        me=me,
        d=await run_in_threadpool(read),
        refresh_seconds=REFRESH_SECONDS,
    )


@router.get("/policies/{name}")
async def policy(
    request: Request,
    me: Viewer,
    name: Annotated[str, Path(max_length=100)],
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """One policy, with its whole next-run preview paged on the server."""
    web = web_state(request)
    wait = web.settings.render_wait

    def read() -> tuple[list[dict[str, Any]], bool, PreviewSlice | None]:
        now = web.now_dt()
        found, recomputing = policy_overview(
            web.ctx, now=now, cache=web.savings, name=name, wait=wait
        )
        if not found:
            return found, recomputing, None
        part = preview_page(
            web.ctx, name, now=now, cache=web.savings, limit=DEFAULT_LIMIT, cursor=cursor, wait=0
        )
        return found, recomputing, part

    found, recomputing, part = await run_in_threadpool(read)
    if not found:
        raise Problem(404, f"No policy named {name!r}.", kind="not-found")
    return render(
        request,
        "policy.html",
        me=me,
        p=found[0],
        recomputing=recomputing,
        refresh_seconds=REFRESH_SECONDS,
        items=part.items if part else [],
        total=part.total if part else 0,
        offset=part.start if part else 0,
        next_url=next_link(request.url, part.next) if part else None,
    )


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
