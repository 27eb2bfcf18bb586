"""Errors as RFC 9457 problem details (``application/problem+json``), never tracebacks.

Three sources of errors are turned into problems here:

- :class:`Problem` and Starlette/FastAPI ``HTTPException``: the status, a title, and
  a ``detail`` written for the client;
- request validation errors: 422 with ``errors``, one entry per field
  (``location``, ``field``, ``detail``);
- anything else: :class:`CatchAllMiddleware` logs the traceback server-side with an
  incident id and answers 500 with only that id, so a client learns nothing about the
  code and an operator can find the log line.

Browser pages (any path outside ``/api/``, asked for with ``Accept: text/html``) get the
same information as a small HTML page instead of JSON.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("reclaim.web")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://reclaim.invalid/problems/"  # stable identifiers, not fetched


class Problem(Exception):
    """An error meant for the client: raise it anywhere in a request."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.extra = extra


def problem_body(
    status: int,
    detail: str | None,
    *,
    kind: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The RFC 9457 members, plus extension members in ``extra``."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind if kind else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    request: Request | None,
    status: int,
    detail: str | None,
    *,
    headers: Mapping[str, str] | None = None,
    **members: Any,
) -> Response:
    """A problem+json response, or an HTML error page for a browser page request."""
    instance = request.url.path if request is not None else None
    body = problem_body(status, detail, instance=instance, **members)
    if request is not None and _wants_html(request):
        return HTMLResponse(_html_page(body), status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _html_page(body: Mapping[str, Any]) -> str:
    from markupsafe import escape  # Jinja2's escaper: the detail may echo user input

    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(body['title'])}</title>"
        '<link rel=stylesheet href="/static/app.css"></head>'
        f'<body><main class="error"><h1>{body["status"]} {escape(body["title"])}</h1>'
        f"<p>{escape(body.get('detail', ''))}</p>"
        '<p><a href="/">Back to the dashboard</a></p></main></body></html>'
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(
        request,
        exc.status,
        exc.detail,
        headers=exc.headers,
        kind=exc.kind,
        title=exc.title,
        **exc.extra,
    )


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # FastAPI's own 404/405 carry their default phrase as detail; don't repeat it.
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    return problem_response(request, exc.status_code, detail, headers=exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        errors.append(
            {
                "location": loc[0] if loc else "request",
                "field": ".".join(loc[1:]),
                "detail": str(err.get("msg", "invalid")),
            }
        )
    return problem_response(
        request,
        422,
        "The request has invalid fields; see errors.",
        kind="validation",
        errors=errors,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every handled error through problem details."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)


class CatchAllMiddleware:
    """Answer an unexpected exception with a generic 500 problem; log it with an id.

    It sits inside Starlette's own error middleware, so the traceback is logged once,
    here, and the client never sees it. If the response had already started there is
    nothing left to send safely, so the exception goes on up.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            incident = secrets.token_hex(6)
            log.exception("unhandled error (incident %s) on %s", incident, scope.get("path"))
            response = problem_response(
                Request(scope),
                500,
                "Something went wrong on our side. The error was logged; "
                f"quote incident {incident} when reporting it.",
                kind="internal",
                incident=incident,
            )
            await response(scope, receive, send)
