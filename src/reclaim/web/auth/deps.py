"""Who is calling, and may they: the FastAPI dependencies behind every route.

A request is authenticated by **either** an API token (``Authorization: Bearer
rcl_…``) **or** the session cookie of a signed-in browser, never by a mix: a request
carrying an ``Authorization`` header is judged by that header alone.

CSRF: a browser sends its cookie with every request, so every state-changing request
authenticated by the session must also present the session's CSRF token (form field
``csrf_token`` or header ``X-CSRF-Token``). Token-authenticated requests are exempt:
a browser never adds an ``Authorization`` header on its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import BackgroundTasks, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from reclaim.web import audit
from reclaim.web.auth import accounts, tokens
from reclaim.web.auth.roles import Role, allows
from reclaim.web.auth.sessions import Session
from reclaim.web.problems import Problem
from reclaim.web.security import client_ip
from reclaim.web.state import web_state

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="rcl_…",
    description="An API token from `reclaim tokens create --role ROLE --name NAME`.",
)

BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    kind: Literal["account", "token"]
    id: int
    name: str  # the account's e-mail, or the token's label
    role: Role
    client_ip: str
    session: Session | None = None

    @property
    def key(self) -> str:
        """A stable identity for per-caller records (idempotency keys)."""
        return f"{self.kind}:{self.id}"

    def actor(self) -> audit.Actor:
        """This caller as the audit log names it."""
        return audit.Actor(name=self.name, kind=self.kind, client_ip=self.client_ip)


class LoginRequired(Exception):
    """A page needs a signed-in user; the handler redirects to the sign-in page."""


def _from_token(request: Request, presented: str) -> tuple[Principal, bool] | None:
    """The token's principal, and whether its ``last_used`` should be refreshed."""
    state = web_state(request)
    now = state.now()
    with state.ctx.engine.connect() as conn:
        token = tokens.authenticate(conn, presented, now=now)
    if token is None:
        return None
    principal = Principal("token", token.id, token.label(), token.role, client_ip(request))
    return principal, tokens.needs_touch(token, now)


def session_principal(request: Request) -> Principal | None:
    """The signed-in account behind the session cookie, if it is still valid."""
    state = web_state(request)
    session = state.sessions.read(request, now=state.now())
    if session is None or session.account_id is None:
        return None
    with state.ctx.engine.connect() as conn:
        account = accounts.get_account(conn, session.account_id)
    if account is None or not account.active or account.session_epoch != session.epoch:
        return None
    return Principal(
        "account", account.id, account.email, account.role, client_ip(request), session
    )


def resolve(
    request: Request, creds: HTTPAuthorizationCredentials | None
) -> tuple[Principal | None, bool]:
    """The caller (from the Authorization header if present, else the session cookie),
    and whether a token's last use should be recorded."""
    if "authorization" in request.headers:
        # Present but not a Bearer token (creds None), or not ours: refuse outright.
        found = None if creds is None else _from_token(request, creds.credentials)
        return (None, False) if found is None else found
    return session_principal(request), False


def _check_role(principal: Principal, role: Role) -> None:
    if not allows(principal.role, role):
        raise Problem(
            403,
            f"This needs the {role.value} role; you have {principal.role.value}.",
            kind="forbidden",
        )


def csrf_matches(session: Session | None, presented: str | None) -> bool:
    """Constant-time check of a presented CSRF token against the session's."""
    if session is None or not presented:
        return False
    return hmac.compare_digest(session.csrf.encode(), presented.encode())


def require(role: Role | None) -> Callable[..., Awaitable[Principal]]:
    """API dependency: 401 without valid credentials, 403 without ``role`` or CSRF token.

    ``role`` None accepts any authenticated caller.
    """

    async def dependency(
        request: Request, creds: BearerCredentials, after: BackgroundTasks
    ) -> Principal:
        principal, touch = await run_in_threadpool(resolve, request, creds)
        if principal is None:
            raise Problem(
                401,
                "Send a valid API token: Authorization: Bearer rcl_…",
                kind="unauthenticated",
                headers={"WWW-Authenticate": 'Bearer realm="reclaim"'},
            )
        if role is not None:
            _check_role(principal, role)
        if touch:  # after the response: a busy SQLite writer never delays the request
            state = web_state(request)
            after.add_task(tokens.touch, state.ctx.engine, principal.id, now=state.now())
        browser_write = principal.session is not None and request.method not in SAFE_METHODS
        if browser_write and not csrf_matches(principal.session, request.headers.get(CSRF_HEADER)):
            raise Problem(403, "Missing or wrong CSRF token.", kind="csrf")
        return principal

    return dependency


def require_any() -> Callable[..., Awaitable[Principal]]:
    """API dependency for what any authenticated caller may do."""
    return require(None)


def require_page(role: Role) -> Callable[..., Awaitable[Principal]]:
    """Page dependency: sign-in redirect when anonymous; CSRF checked on every POST."""

    async def dependency(request: Request) -> Principal:
        principal = await run_in_threadpool(session_principal, request)
        if principal is None:
            raise LoginRequired
        _check_role(principal, role)
        if request.method not in SAFE_METHODS:
            await check_form_csrf(request, principal.session)
        return principal

    return dependency


async def check_form_csrf(request: Request, session: Session | None) -> None:
    """403 unless the form (or header) carries this session's CSRF token."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not csrf_matches(session, presented):
        raise Problem(
            403,
            "This form has expired or did not come from Reclaim (CSRF check failed). "
            "Reload the page and try again.",
            kind="csrf",
        )
