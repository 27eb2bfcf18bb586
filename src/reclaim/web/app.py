"""The web app factory: ``create_app(ctx)`` builds everything; nothing happens at import.

One app serves the REST API (``/api/v1``, OpenAPI at ``/api/v1/openapi.json``) and the
admin pages. Errors are RFC 9457 problem details (``web/problems.py``); every
response carries the security headers of ``web/security.py``.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from reclaim import __version__
from reclaim.bootstrap import Context
from reclaim.ops import routes as ops_routes
from reclaim.ops.logs import RequestIdMiddleware
from reclaim.web import respond
from reclaim.web.api import API_PREFIX, build_router
from reclaim.web.api.models import problem_components
from reclaim.web.auth.deps import LoginRequired
from reclaim.web.auth.oidc import OidcClient
from reclaim.web.auth.sessions import SessionCodec
from reclaim.web.problems import CatchAllMiddleware, install_problem_handlers
from reclaim.web.security import SecurityHeadersMiddleware
from reclaim.web.settings import WebSettings
from reclaim.web.state import Clock, WebState, utc_now
from reclaim.web.ui import admin, cases, login, ops, pages, plans
from reclaim.workflows.directory import DirectoryFactory

log = logging.getLogger("reclaim.web")

DESCRIPTION = """\
Reclaim's REST API. Authenticate with an API token: `Authorization: Bearer rcl_…`
(`reclaim tokens create --role ROLE --name NAME`).

- **Errors** are RFC 9457 problem details (`application/problem+json`).
- **Paging**: lists take `?limit=` (1–500, default 50) and `?cursor=`; the answer's
  `next` (also a `Link: rel="next"` header) is the next page, `null` at the end.
- **Idempotency**: send `Idempotency-Key` with an upload; a retry with the same key gets
  the first answer and is not counted twice.
"""


def create_app(
    ctx: Context,
    *,
    now: Clock = utc_now,
    web_settings: WebSettings | None = None,
    oidc_transport: httpx.AsyncBaseTransport | None = None,
    directories: DirectoryFactory | None = None,
) -> FastAPI:
    """Build the app for this store and settings.

    ``now`` is the clock (tests pass their own); ``web_settings`` default to the
    ``RECLAIM_WEB_*`` environment; ``oidc_transport`` lets tests stand in for the
    OpenID provider; ``directories`` replace the installation's directories for
    restores (tests pass a test peer).
    """
    settings = web_settings or WebSettings.from_env(ctx.settings.resolved_data_dir())
    app = FastAPI(
        title="Reclaim",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load assets from CDNs: not here
        redoc_url=None,
    )
    app.state.web = WebState(
        ctx=ctx,
        settings=settings,
        clock=now,
        sessions=SessionCodec(settings.secret, max_age_seconds=settings.session_hours * 3600),
        oidc=OidcClient(settings.oidc, transport=oidc_transport) if settings.oidc else None,
        directories=directories,
    )
    install_problem_handlers(app)
    app.add_exception_handler(LoginRequired, _to_login)
    # Added inner first: the headers middleware wraps the catch-all, so a 500 has them too.
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)  # outermost: every log line of a request has its id

    # First: employees' answers are the busiest route, and routes are tried in order.
    app.include_router(respond.router)  # the employee response page (campaigns)
    app.include_router(build_router())
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(cases.router)
    app.include_router(plans.router)
    app.include_router(ops.router)
    app.include_router(ops_routes.router)  # /healthz, /readyz, /metrics
    app.mount("/static", StaticFiles(packages=[("reclaim.web", "static")]), name="static")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _to_login(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login_url = request.url_for("login_form").include_query_params(next=target)
    return RedirectResponse(f"{login_url.path}?{login_url.query}", status_code=303)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(problem_components())
        # FastAPI's own 422 schema is replaced by ValidationProblem everywhere.
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema
