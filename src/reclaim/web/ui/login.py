"""Sign-in and sign-out pages: local passwords and, when configured, OpenID Connect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from reclaim.web import audit
from reclaim.web.auth import accounts
from reclaim.web.auth.deps import Principal, check_form_csrf, require_page, session_principal
from reclaim.web.auth.login_links import PATH as LINK_PATH
from reclaim.web.auth.login_links import LinkRefused, redeem_login_link
from reclaim.web.auth.oidc import Identity, OidcError, Pending
from reclaim.web.auth.roles import Role
from reclaim.web.auth.sessions import Session, clear_cookie, new_session
from reclaim.web.auth.signin import RateLimited, SignInRefused, password_sign_in
from reclaim.web.problems import Problem
from reclaim.web.security import client_ip
from reclaim.web.state import WebState, web_state
from reclaim.web.ui.render import render

router = APIRouter(include_in_schema=False)


def safe_next(value: str | None) -> str:
    """A local path to go to after sign-in; anything else (other sites) becomes '/'."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def _anonymous_session(state: WebState, request: Request) -> tuple[Session, bool]:
    """The browser's anonymous session, or a new one (True: the cookie must be set).

    A session that names an account which is no longer valid for it (disabled, signed
    out everywhere) is replaced, never reused: it would bounce between pages.
    """
    session = state.sessions.read(request, now=state.now())
    if session is not None and not session.signed_in:
        return session, False
    return new_session(now=state.now()), True


def _login_page(
    request: Request,
    state: WebState,
    session: Session,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "login.html",
        session=session,
        next=next_path,
        email=email,
        error=error,
        oidc_label=state.settings.oidc.label if state.settings.oidc else None,
        status_code=status_code,
        headers=headers,
    )


@router.get("/login")
async def login_form(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    """The sign-in form (with a CSRF token: sign-in forms are forged too)."""
    state = web_state(request)
    if await run_in_threadpool(session_principal, request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    session, fresh = _anonymous_session(state, request)
    response = _login_page(request, state, session, next_path=safe_next(next))
    if fresh:
        state.sessions.write(response, request, session)
    return response


@router.post("/login")
async def login_submit(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password; on success a brand-new session replaces the old one."""
    state = web_state(request)
    session = state.sessions.read(request, now=state.now())
    await check_form_csrf(request, session)
    assert session is not None  # check_form_csrf refuses a request without one
    next_path = safe_next(next)
    try:
        account = await run_in_threadpool(
            password_sign_in,
            state.ctx.engine,
            email=email,
            password=password,
            client_ip=client_ip(request),
            now=state.now(),
            limits=state.login_limits,
        )
    except RateLimited as exc:
        return _login_page(
            request,
            state,
            session,
            next_path=next_path,
            email=email,
            error=f"Too many failed sign-ins. Try again in {exc.retry_after // 60 + 1} minutes.",
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except SignInRefused as exc:
        return _login_page(
            request,
            state,
            session,
            next_path=next_path,
            email=email,
            error=str(exc),
            status_code=401,
        )
    return _signed_in(request, state, account, next_path)


def _signed_in(
    request: Request, state: WebState, account: accounts.Account, next_path: str
) -> Response:
    # A new session id and CSRF token: nothing from before sign-in survives it.
    fresh = new_session(now=state.now(), account_id=account.id, epoch=account.session_epoch)
    response = RedirectResponse(next_path, status_code=303)
    state.sessions.write(response, request, fresh)
    return response


_LINK_REFUSALS = {
    # (status, message): 410 Gone for a genuine link that is spent, 400 for anything else.
    "invalid": (
        400,
        "This sign-in link is not valid: it was changed, cut short when copied, "
        "or made by another installation.",
    ),
    "expired": (410, "This sign-in link has expired. Links last a few minutes."),
    "used": (410, "This sign-in link was used already. Each link signs in once."),
    "disabled": (403, "The account this link is for is disabled."),
}


@router.get(LINK_PATH)
async def login_link(
    request: Request, token: Annotated[str, Query(max_length=1024)] = ""
) -> Response:
    """Redeem a one-time sign-in link: a new session and the dashboard, or a refusal
    page that sets no cookie. (A GET, so that the link works when pasted; an e-mail
    scanner that fetched it first would spend it, which fails closed.)"""
    state = web_state(request)
    try:
        account = await run_in_threadpool(
            redeem_login_link,
            state.ctx.engine,
            token,
            secret=state.settings.secret,
            now=state.now(),
            client_ip=client_ip(request),
        )
    except LinkRefused as exc:
        status, message = _LINK_REFUSALS[exc.reason]
        return render(
            request,
            "login_link.html",
            reason=exc.reason,
            message=message,
            status_code=status,
        )
    return _signed_in(request, state, account, "/")


@router.post("/logout")
async def logout(
    request: Request, me: Annotated[Principal, Depends(require_page(Role.VIEWER))]
) -> Response:
    """End this browser's session (the CSRF check is in ``require_page``)."""
    state = web_state(request)

    def record() -> None:
        with state.ctx.engine.begin() as conn:
            audit.record(conn, me.actor(), "auth.logout", now=state.now())

    await run_in_threadpool(record)
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, request)
    return response


# -- OpenID Connect ----------------------------------------------------------------------
def _redirect_uri(request: Request, state: WebState) -> str:
    assert state.settings.oidc is not None
    return state.settings.oidc.redirect_url or str(request.url_for("oidc_callback"))


@router.get("/auth/oidc/start")
async def oidc_start(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    """Send the browser to the provider, remembering state, nonce and PKCE verifier."""
    state = web_state(request)
    if state.oidc is None:
        raise Problem(404, "Single sign-on is not configured.")
    try:
        url, pending = await state.oidc.start(
            redirect_uri=_redirect_uri(request, state), next_path=safe_next(next)
        )
    except OidcError as exc:
        raise Problem(502, f"Single sign-on is unavailable: {exc}.") from None
    session = new_session(now=state.now())
    session.oidc = pending.as_dict()
    response = RedirectResponse(url, status_code=302)
    state.sessions.write(response, request, session)
    return response


@router.get("/auth/oidc/callback", name="oidc_callback")
async def oidc_callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state_param: Annotated[str | None, Query(alias="state", max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Finish the sign-in: state check, code exchange, ID token check, account lookup."""
    state = web_state(request)
    if state.oidc is None:
        raise Problem(404, "Single sign-on is not configured.")
    if error or not code or not state_param:
        raise Problem(400, "The sign-in provider did not complete the sign-in.")
    session = state.sessions.read(request, now=state.now())
    pending = Pending.from_dict(session.oidc if session else None)
    try:
        identity = await state.oidc.finish(
            pending=pending,
            state=state_param,
            code=code,
            redirect_uri=_redirect_uri(request, state),
            now=state.now(),
        )
    except OidcError as exc:
        raise Problem(400, f"Single sign-on failed: {exc}.") from None
    assert pending is not None
    account = await run_in_threadpool(_oidc_account, state, identity, client_ip(request))
    if account is None:
        raise Problem(
            403,
            "Your sign-in worked, but there is no Reclaim account for you. "
            "Ask an administrator to create one.",
        )
    return _signed_in(request, state, account, pending.next)


def _oidc_account(state: WebState, identity: Identity, ip: str) -> accounts.Account | None:
    now = state.now()
    with state.ctx.engine.begin() as conn:
        account = accounts.find_by_oidc(conn, identity.subject, identity.email)
        actor = audit.Actor(
            name=(account.email if account else identity.email) or identity.subject,
            kind="account",
            client_ip=ip,
        )
        if account is None or not account.active:
            reason = "no_account" if account is None else "disabled"
            audit.record(
                conn,
                actor,
                "auth.login_failed",
                now=now,
                detail={"method": "oidc", "reason": reason},
            )
            return None
        accounts.signed_in(conn, account, now=now, password=None)
        audit.record(conn, actor, "auth.login", now=now, detail={"method": "oidc"})
    return account
