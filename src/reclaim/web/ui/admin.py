"""Admin pages: API tokens (create, shown once; revoke)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from reclaim.web.auth import tokens
from reclaim.web.auth.deps import Principal, require_page
from reclaim.web.auth.roles import Role, parse_role
from reclaim.web.state import WebState, web_state
from reclaim.web.ui.render import render

router = APIRouter(include_in_schema=False)
Admin = Annotated[Principal, Depends(require_page(Role.ADMIN))]
ROLES = [r.value for r in Role]


def _page(
    request: Request,
    state: WebState,
    me: Principal,
    *,
    created: tokens.ApiToken | None = None,
    secret: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    # Runs in a worker thread (callers use run_in_threadpool): reads the store directly.
    with state.ctx.engine.connect() as conn:
        listed = tokens.list_tokens(conn)
    return render(
        request,
        "tokens.html",
        me=me,
        tokens=listed,
        roles=ROLES,
        created=created,
        secret=secret,
        error=error,
        status_code=status_code,
    )


@router.get("/admin/tokens")
async def tokens_page(request: Request, me: Admin) -> Response:
    """Every token (never the secret), with its last use."""
    state = web_state(request)
    return await run_in_threadpool(_page, request, state, me)


@router.post("/admin/tokens")
async def tokens_create(
    request: Request,
    me: Admin,
    name: Annotated[str, Form(max_length=100)],
    role: Annotated[str, Form(max_length=20)],
    expires_days: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Create a token and show it once, on this response only (not after a redirect)."""
    state = web_state(request)
    try:
        parsed = parse_role(role)
        days = int(expires_days) if expires_days.strip() else None
        if days is not None and not 1 <= days <= 3650:
            raise ValueError("expiry must be 1 to 3650 days")
    except ValueError as exc:
        return await run_in_threadpool(_page, request, state, me, error=str(exc), status_code=400)
    now = state.now()

    def create() -> tuple[tokens.ApiToken, str]:
        with state.ctx.engine.begin() as conn:
            return tokens.create_token(
                conn,
                name=name,
                role=parsed,
                actor=me.actor(),
                now=now,
                expires=None if days is None else now + days * 86400,
            )

    try:
        token, secret = await run_in_threadpool(create)
    except tokens.TokenError as exc:
        return await run_in_threadpool(_page, request, state, me, error=str(exc), status_code=400)
    return await run_in_threadpool(_page, request, state, me, created=token, secret=secret)


@router.post("/admin/tokens/{token_id}/revoke")
async def tokens_revoke(
    request: Request, me: Admin, token_id: Annotated[int, Path(ge=1)]
) -> Response:
    """Revoke a token; it stops working on its next request."""
    state = web_state(request)

    def revoke() -> str | None:
        try:
            with state.ctx.engine.begin() as conn:
                tokens.revoke_token(conn, token_id, actor=me.actor(), now=state.now())
        except tokens.TokenError as exc:
            return str(exc)
        return None

    error = await run_in_threadpool(revoke)
    if error:
        return await run_in_threadpool(_page, request, state, me, error=error, status_code=400)
    return RedirectResponse("/admin/tokens", status_code=303)
