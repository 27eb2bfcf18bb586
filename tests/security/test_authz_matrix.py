"""Every route of the app × every role × no credentials → the expected answer.

The routes are enumerated from the app itself (``fastapi.routing.iter_route_contexts``),
so a new endpoint fails ``test_every_route_is_in_the_table`` until someone decides who
may call it. The table below is the policy, written out by hand (docs/web.md, "Roles"):
it is not derived from the code it checks.

Expected answers: API without credentials → 401 with ``WWW-Authenticate: Bearer``;
a page without a session → 303 to the sign-in page; a role below the requirement →
403; an allowed caller → anything but 401/403/redirect-to-login, and never a 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from reclaim.web.audit import Actor
from reclaim.web.auth.roles import ACCOUNT_ROLES, Role, allows
from reclaim.web.auth.tokens import create_token
from tests.integration.web.case_seed import seed_case
from tests.integration.web.conftest import START, WebEnv

from .conftest import Browser

pytestmark = pytest.mark.anyio

API, PAGE, PUBLIC = "api", "page", "public"
ANY = "any authenticated caller"
V, OP, A, ING = Role.VIEWER, Role.OPERATOR, Role.ADMIN, Role.INGEST

# (method, path) → (kind, minimum role). PUBLIC routes carry the status an anonymous
# caller gets instead (they are public on purpose: sign-in, health, the employee page
# whose signed link is its own credential, static files, the OpenAPI document).
TABLE: dict[tuple[str, str], tuple[str, Role | str | int]] = {
    ("GET", "/api/v1/openapi.json"): (PUBLIC, 200),
    ("GET", "/api/v1/policies"): (API, V),
    ("GET", "/api/v1/policies/{name}"): (API, V),
    ("GET", "/api/v1/policies/{name}/preview"): (API, V),
    ("POST", "/api/v1/usage"): (API, ING),
    ("GET", "/api/v1/audit"): (API, V),
    ("GET", "/api/v1/cases"): (API, V),
    ("GET", "/api/v1/cases/{case_id}"): (API, V),
    ("POST", "/api/v1/cases/{case_id}/answer"): (API, OP),
    ("POST", "/api/v1/cases/{case_id}/restore"): (API, OP),
    ("GET", "/api/v1/plans"): (API, V),
    ("POST", "/api/v1/plans"): (API, OP),
    ("GET", "/api/v1/plans/{plan_id}"): (API, V),
    ("POST", "/api/v1/plans/{plan_id}/approve"): (API, OP),
    ("POST", "/api/v1/plans/{plan_id}/reject"): (API, OP),
    ("GET", "/api/v1/candidates"): (API, V),
    ("GET", "/api/v1/control"): (API, V),
    ("POST", "/api/v1/control/pause"): (API, OP),
    ("POST", "/api/v1/control/resume"): (API, OP),
    ("GET", "/api/v1/reports/savings"): (API, V),
    ("GET", "/api/v1/reports/funnel"): (API, V),
    ("GET", "/api/v1/reports/monthly"): (API, V),
    ("GET", "/api/v1/whoami"): (API, ANY),
    ("GET", "/metrics"): (API, V),
    ("GET", "/login"): (PUBLIC, 200),
    ("POST", "/login"): (PUBLIC, 422),  # an empty form (CSRF: test_csrf_and_sessions.py)
    ("GET", "/login/link"): (PUBLIC, 400),  # no token: refused, no session
    ("GET", "/auth/oidc/start"): (PUBLIC, 404),  # single sign-on not configured here
    ("GET", "/auth/oidc/callback"): (PUBLIC, 404),
    ("POST", "/logout"): (PAGE, V),
    ("GET", "/"): (PAGE, V),
    ("GET", "/policies"): (PAGE, V),
    ("GET", "/policies/{name}"): (PAGE, V),
    ("GET", "/audit"): (PAGE, V),
    ("GET", "/audit/export.csv"): (PAGE, V),
    ("GET", "/admin/tokens"): (PAGE, A),
    ("POST", "/admin/tokens"): (PAGE, A),
    ("POST", "/admin/tokens/{token_id}/revoke"): (PAGE, A),
    ("GET", "/cases"): (PAGE, V),
    ("GET", "/cases/{case_id}"): (PAGE, V),
    ("POST", "/cases/{case_id}/answer"): (PAGE, OP),
    ("POST", "/cases/{case_id}/restore"): (PAGE, OP),
    ("GET", "/cases.csv"): (PAGE, V),
    ("GET", "/plans"): (PAGE, V),
    ("POST", "/plans"): (PAGE, OP),
    ("GET", "/plans/{plan_id}"): (PAGE, V),
    ("POST", "/plans/{plan_id}/approve"): (PAGE, OP),
    ("POST", "/plans/{plan_id}/reject"): (PAGE, OP),
    ("GET", "/campaigns"): (PAGE, V),
    ("GET", "/control"): (PAGE, V),
    ("POST", "/control/{switch}"): (PAGE, OP),
    ("GET", "/charts/seats.svg"): (PAGE, V),
    ("GET", "/charts/savings.svg"): (PAGE, V),
    ("GET", "/savings.csv"): (PAGE, V),
    ("GET", "/respond/static/respond.css"): (PUBLIC, 200),
    ("GET", "/respond/{token}"): (PUBLIC, 503),  # campaigns not configured in this app
    ("POST", "/respond/{token}"): (PUBLIC, 503),
    ("POST", "/respond/{token}/restore"): (PUBLIC, 503),
    ("GET", "/healthz"): (PUBLIC, 200),
    ("GET", "/readyz"): (PUBLIC, 200),
    ("GET", "/static"): (PUBLIC, 200),  # a mount; the request asks for app.css
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str


def app_routes(app: FastAPI) -> list[Route]:
    """Every (method, path) the app answers, HEAD folded into GET; mounts as GET."""
    found: list[Route] = []
    for context in iter_route_contexts(app.routes):
        path = context.path
        assert path is not None
        methods = getattr(context.original_route, "methods", None) or {"GET"}
        found += [Route(m, path) for m in sorted(methods) if m != "HEAD"]
    return found


def test_every_route_is_in_the_table(web: WebEnv) -> None:
    routes = {(r.method, r.path) for r in app_routes(web.app)}
    missing = sorted(routes - TABLE.keys())
    stale = sorted(TABLE.keys() - routes)
    assert not missing, (
        f"routes with no expected role in TABLE (decide who may call them): {missing}"
    )
    assert not stale, f"TABLE lists routes the app no longer has: {stale}"


def _concrete(path: str, params: dict[str, str]) -> str:
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    if path == "/static":
        path = "/static/app.css"
    assert "{" not in path, path
    return path


def _params(web: WebEnv) -> dict[str, str]:
    case_id = seed_case(web.ctx.engine, to="removed", at=START)
    now = int(web.clock().timestamp())
    with web.ctx.engine.begin() as conn:  # a token of its own to revoke, not one in use
        victim, _ = create_token(
            conn, name="to-revoke", role=Role.VIEWER, actor=Actor("setup", "system"), now=now
        )
    token_id = victim.id
    return {
        "name": "Visio",
        "case_id": str(case_id),
        "plan_id": "999999",  # no such plan: an allowed caller gets 404, not 401/403
        "token_id": str(token_id),
        "switch": "pause",
        "token": "r1.not-a-real-link.x",
    }


async def _send(
    c: httpx.AsyncClient, route: Route, url: str, *, headers: dict[str, str], csrf: str = ""
) -> httpx.Response:
    h = dict(headers)
    if csrf:
        h["X-CSRF-Token"] = csrf
    if route.method == "GET":
        return await c.get(url, headers=h)
    if url.startswith("/api/v1/usage"):
        h["Content-Type"] = "text/csv"
        body = b"user,app,date\nann@corp.example,VISIO.EXE,2026-11-01\n"
        return await c.post(url, content=body, headers=h)
    if url.startswith("/api/"):
        h["Content-Type"] = "application/json"
        return await c.post(url, content=json.dumps({}).encode(), headers=h)
    return await c.post(url, data={"csrf_token": csrf} if csrf else {}, headers=h)


def _is_login_redirect(r: httpx.Response) -> bool:
    """The sign-in redirect of a refused page (sign-out's own redirect has no ``next``)."""
    return r.status_code == 303 and r.headers.get("location", "").startswith("/login?next=")


def _verdict(r: httpx.Response, *, allowed: bool, kind: str) -> str | None:
    """None when the answer is the expected one; otherwise what was wrong."""
    if r.status_code >= 500:
        return f"server error {r.status_code}"
    if allowed:
        if r.status_code in (401, 403) or _is_login_redirect(r):
            return f"refused an allowed caller ({r.status_code})"
        return None
    if r.status_code != 403:
        return f"expected 403, got {r.status_code}"
    return None


async def test_the_matrix(
    web: WebEnv, client: httpx.AsyncClient, people: dict[Role, Browser]
) -> None:
    params = _params(web)
    wrong: list[str] = []
    routes = app_routes(web.app)
    # Signing out ends the browser's session: that route goes last.
    routes.sort(key=lambda r: r.path == "/logout")
    for route in routes:
        kind, need = TABLE[(route.method, route.path)]
        url = _concrete(route.path, params)
        where = f"{route.method} {route.path}"

        anonymous = await _send(client, route, url, headers={})
        if kind == PUBLIC:
            if anonymous.status_code != need:
                wrong.append(f"{where} anonymous: expected {need}, got {anonymous.status_code}")
            continue
        if kind == API:
            if (
                anonymous.status_code != 401
                or "bearer" not in anonymous.headers.get("www-authenticate", "").lower()
            ):
                wrong.append(f"{where} anonymous: expected 401 + WWW-Authenticate")
            for role in Role:  # API tokens of every role
                allowed = need == ANY or allows(role, need)  # type: ignore[arg-type]
                assert isinstance(need, (Role, str))
                r = await _send(client, route, url, headers=web.auth(role.value))
                if problem := _verdict(r, allowed=_expected(role, need), kind=kind):
                    wrong.append(f"{where} token {role.value}: {problem}")
                assert allowed == _expected(role, need)
            for role in ACCOUNT_ROLES:  # and signed-in browsers (with their CSRF token)
                b = people[role]
                r = await _send(b.http, route, url, headers={}, csrf=b.csrf)
                if problem := _verdict(r, allowed=_expected(role, need), kind=kind):
                    wrong.append(f"{where} session {role.value}: {problem}")
            continue
        # Pages: anonymous → sign-in page; an API token is not a sign-in.
        if not _is_login_redirect(anonymous):
            wrong.append(f"{where} anonymous: expected 303 to /login, got {anonymous.status_code}")
        with_token = await _send(client, route, url, headers=web.auth("admin"))
        if not _is_login_redirect(with_token):
            wrong.append(
                f"{where} admin API token: a page must not accept it ({with_token.status_code})"
            )
        for role in ACCOUNT_ROLES:
            b = people[role]
            r = await _send(b.http, route, url, headers={}, csrf=b.csrf)
            if problem := _verdict(r, allowed=_expected(role, need), kind=kind):
                wrong.append(f"{where} session {role.value}: {problem}")
    assert not wrong, "\n".join(wrong)


# The documented ladder, spelled out rather than computed with ``allows``.
_MAY = {
    V: {V, OP, A},
    OP: {OP, A},
    A: {A},
    ING: {ING, A},
}


def _expected(role: Role, need: Role | str | int) -> bool:
    if need == ANY:
        return True
    assert isinstance(need, Role)
    return role in _MAY[need]
