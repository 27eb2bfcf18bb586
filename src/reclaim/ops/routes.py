"""The operators' endpoints: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` and ``/readyz`` need no sign-in (load balancers probe them) and say
nothing secret: check names, ok/failed, and a one-line reason. ``/metrics`` needs an
API token with at least the ``viewer`` role (Prometheus sends it as
``authorization: Bearer rcl_…``): the figures describe the organisation's licences.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from reclaim import __version__
from reclaim.ops import metrics
from reclaim.ops.health import readiness
from reclaim.web.auth.deps import Principal, require
from reclaim.web.auth.roles import Role
from reclaim.web.state import web_state

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> Response:
    """Liveness: the process answers requests. Touches nothing else on purpose, so a
    database outage does not get every web process restarted (that is /readyz's job)."""
    return JSONResponse({"status": "ok", "version": __version__})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Readiness: database, schema and configured directories (503 when any fails)."""
    ctx = web_state(request).ctx
    checks = await run_in_threadpool(readiness, ctx.engine, ctx.settings)
    ready = all(c.ok for c in checks)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "ms": c.ms} for c in checks],
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics_endpoint(
    request: Request, _: Annotated[Principal, Depends(require(Role.VIEWER))]
) -> Response:
    """Prometheus exposition (text format 0.0.4)."""
    state = web_state(request)
    body = await run_in_threadpool(
        metrics.render, state.ctx.engine, lambda: state.clock().timestamp()
    )
    return Response(body, media_type=metrics.CONTENT_TYPE)
