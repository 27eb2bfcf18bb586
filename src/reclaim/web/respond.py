"""The employee's response page: ``/respond/{token}`` from a campaign message.

No sign-in: the signed token in the URL is the capability (see
``reclaim.campaigns.tokens``). GET only shows (mail scanners open every link in a
message, so a GET that answered would answer for people who never clicked); answers
and "I need it back" are POSTs of a plain HTML form, so the page works without
JavaScript. The logic lives in :mod:`reclaim.campaigns.responses`; this module maps
its views to pages and status codes.

Cross-site posts are refused: a browser labels a form post from another site with
``Sec-Fetch-Site: cross-site`` (or ``same-site``) and with an ``Origin`` that is not
ours. ``Origin: null`` is accepted: with ``Referrer-Policy: no-referrer`` browsers send
exactly that for our own form.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Template

from reclaim.campaigns.answer_batches import AnswerBatcher
from reclaim.campaigns.response_writes import MAX_REASON
from reclaim.campaigns.responses import Answer, LinkState, LinkView, Responder
from reclaim.campaigns.templating import human_date, human_when
from reclaim.secrets import SecretError
from reclaim.store.engine import is_sqlite
from reclaim.web.state import web_state
from reclaim.web.ui.render import templates

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

_STATUS = {
    LinkState.ASK: 200,
    LinkState.ANSWERED: 200,
    LinkState.RESTORE_REQUESTED: 200,
    LinkState.RESTORED: 200,
    LinkState.CLOSED: 200,
    LinkState.EXPIRED: 410,
    LinkState.INVALID: 404,
}
_PAGE = {
    LinkState.ASK: "respond/ask.html",
    LinkState.ANSWERED: "respond/answered.html",
    LinkState.RESTORE_REQUESTED: "respond/restore.html",
    LinkState.RESTORED: "respond/restore.html",
    LinkState.CLOSED: "respond/closed.html",
    LinkState.EXPIRED: "respond/expired.html",
    LinkState.INVALID: "respond/invalid.html",
}
# The URL is a bearer credential: never let it leave in a Referer, never cache the page.
_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Robots-Tag": "none"}
Reason = Annotated[str, Form(max_length=40 * MAX_REASON)]  # kept: MAX_REASON (trimmed)


@cache
def _css() -> bytes:
    return (resources.files("reclaim.web") / "templates" / "respond" / "respond.css").read_bytes()


@router.get("/respond/static/respond.css")
async def respond_css() -> Response:
    """The page's style sheet (served here: the page has no other assets)."""
    return Response(_css(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})


async def show(request: Request) -> Response:
    """Show the question (or the recorded answer, or why the link no longer works).

    ``GET /respond/{token}[?choice=keep|release]``: a plain Starlette route, since
    FastAPI's parameter solving cost a tenth of this page's time and there is nothing
    to validate (any token string is looked at; any other choice is ignored).
    """
    token: str = request.path_params["token"]
    choice = request.query_params.get("choice")
    responder = _responder(request)
    if responder is None:
        return _unavailable(request)
    now = _now(request)
    view = await _read(responder, lambda: responder.view(token, now=now))
    picked = choice if choice in ("keep", "release") else None
    return _page(request, view, token=token, picked=picked)


router.add_route("/respond/{token}", show, methods=["GET"], include_in_schema=False)


@router.post("/respond/{token}")
async def submit(
    request: Request, token: str, choice: Annotated[str, Form()] = "", reason: Reason = ""
) -> Response:
    """Record Keep it / Release it; the first answer counts."""
    if not _same_site(request):
        return _forbidden(request)
    responder = _responder(request)
    if responder is None:
        return _unavailable(request)
    now = _now(request)
    if choice not in ("keep", "release"):
        view = await _read(responder, lambda: responder.view(token, now=now))
        return _page(request, view, token=token, error="Choose Keep it or Release it.")
    keep = choice == "keep"
    if is_sqlite(responder.engine):
        answer = Answer(token, keep=keep, reason=reason, now=now)
        view = await _batcher(request, responder).answer(answer)
    else:
        view = await _in_thread(lambda: responder.answer(token, keep=keep, reason=reason, now=now))
    return _page(request, view, token=token)


@router.post("/respond/{token}/restore")
async def restore(request: Request, token: str, reason: Reason = "") -> Response:
    """ "I need it back" after a release."""
    if not _same_site(request):
        return _forbidden(request)
    responder = _responder(request)
    if responder is None:
        return _unavailable(request)
    now = _now(request)
    view = await _in_thread(lambda: responder.request_restore(token, reason=reason, now=now))
    return _page(request, view, token=token)


# ----- helpers ----------------------------------------------------------------------------

_LIMITERS: dict[int, CapacityLimiter] = {}
#: Store work of this page at a time (per event loop). Each call is a few milliseconds
#: of Python; dozens of threads fighting for the GIL at once made every one of them
#: slower (measured with bench/respond.py: throughput fell as clients grew).
DB_THREADS = 4


async def _read(responder: Responder, work: Callable[[], LinkView]) -> LinkView:
    """Run a read of the store: on SQLite, right here on the event loop.

    A WAL-mode read never waits for a writer and takes a fraction of a millisecond,
    less than handing it to a worker thread and back cost (measured with
    bench/respond.py). Writes, which may wait for another process's write, and reads
    over a network (PostgreSQL) go to a thread.
    """
    if is_sqlite(responder.engine):
        return work()
    return await _in_thread(work)


async def _in_thread(work: Callable[[], LinkView]) -> LinkView:
    loop = id(asyncio.get_running_loop())
    limiter = _LIMITERS.get(loop)
    if limiter is None:
        limiter = _LIMITERS[loop] = CapacityLimiter(DB_THREADS)
    return await anyio.to_thread.run_sync(work, limiter=limiter)


def _now(request: Request) -> dt.datetime:
    return web_state(request).clock().replace(microsecond=0)


def _responder(request: Request) -> Responder | None:
    """Built once per app (the keys are resolved then); None if campaigns are not set up."""
    found = getattr(request.app.state, "responder", None)
    if isinstance(found, Responder):
        return found
    state = web_state(request)
    ctx = state.ctx
    try:
        built = Responder.from_settings(ctx.engine, ctx.settings)
        # The app's directories (tests pass a test peer) also serve "I need it back".
        built = replace(built, directories=getattr(state, "directories", None))
    except (SecretError, ValueError) as exc:  # the message names the reference, not a value
        log.error("response links cannot be checked: %s", exc)
        return None
    request.app.state.responder = built
    return built


def _batcher(request: Request, responder: Responder) -> AnswerBatcher:
    """SQLite: answers that arrive together are recorded together, on the event loop
    (see :mod:`reclaim.campaigns.answer_batches`); one batcher per app and loop."""
    loop = id(asyncio.get_running_loop())
    batchers: dict[int, AnswerBatcher] | None = getattr(request.app.state, "answer_batchers", None)
    if batchers is None:
        batchers = request.app.state.answer_batchers = {}
    found = batchers.get(loop)
    if found is None or found.responder is not responder:
        found = batchers[loop] = AnswerBatcher(responder)
    return found


def _same_site(request: Request) -> bool:
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    allowed = {f"{request.url.scheme}://{request.url.netloc}".lower()}
    campaigns = web_state(request).ctx.settings.campaigns
    if campaigns is not None:
        base = urlsplit(campaigns.base_url)
        allowed.add(f"{base.scheme}://{base.netloc}".lower())
    return origin.lower().rstrip("/") in allowed


def _zone(request: Request) -> ZoneInfo:
    settings = web_state(request).ctx.settings
    name = (settings.campaigns.timezone if settings.campaigns else None) or settings.timezone
    return ZoneInfo(name)


def _common(request: Request) -> dict[str, Any]:
    campaigns = web_state(request).ctx.settings.campaigns
    return {
        "org_name": (campaigns.org_name if campaigns else None) or "IT",
        "support_contact": campaigns.support_contact if campaigns else None,
        "restore_days": campaigns.restore_window_days if campaigns else 0,
    }


def _page(
    request: Request,
    view: LinkView,
    *,
    token: str,
    picked: str | None = None,
    error: str | None = None,
) -> Response:
    zone = _zone(request)

    def when(at: dt.datetime | None) -> str:
        return human_when(at.astimezone(zone)) if at else ""

    context = {
        **_common(request),
        "view": view,
        "token": token,
        "picked": picked,
        "error": error,
        "last_used": human_date(view.last_used) if view.last_used else None,
        "respond_by": when(view.respond_by),
        "answered_at": when(view.answered_at),
        "restore_until": when(view.restore_until),
        "max_reason": MAX_REASON,
    }
    status = 400 if error else _STATUS[view.state]
    return _html(_PAGE[view.state], context, status)


def _unavailable(request: Request) -> Response:
    return _html("respond/unavailable.html", _common(request), 503)


def _forbidden(request: Request) -> Response:
    return _html("respond/forbidden.html", _common(request), 403)


@cache
def _template(name: str) -> Template:
    """Loaded once: the shared environment would check the file's time on every use."""
    return templates().env.get_template(name)


def _html(name: str, context: dict[str, Any], status: int) -> Response:
    # These pages use no ``request`` or ``url_for`` in their templates: rendering them
    # directly skips Starlette's per-response template lookup and context building.
    return HTMLResponse(_template(name).render(context), status_code=status, headers=_HEADERS)
