"""Browser sessions: CSRF on every state-changing form, session fixation, sign-in limits.

The state-changing routes are taken from the app (every POST a signed-in browser can
reach), so a new form is covered as soon as it exists. A refused post must change
nothing: the audit log, which records every state change, stays as it was.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from reclaim.store.leases import paused_in_store
from reclaim.store.web_tables import audit_log
from reclaim.web.auth.roles import Role
from reclaim.web.auth.sessions import COOKIE
from tests.integration.web.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, WebEnv, csrf_from, sign_in

from .conftest import Browser, client_for
from .test_authz_matrix import API, PAGE, TABLE, _concrete, _params, app_routes

pytestmark = pytest.mark.anyio


def _audit_rows(web: WebEnv) -> int:
    with web.ctx.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_log)).scalar() or 0)


def _state_changing(web: WebEnv) -> list[tuple[str, str]]:
    """Every POST a browser session can reach (pages and the API)."""
    return [
        (r.method, r.path)
        for r in app_routes(web.app)
        if r.method != "GET" and TABLE[(r.method, r.path)][0] in (PAGE, API)
    ]


async def _post(b: httpx.AsyncClient, url: str, csrf: str | None) -> httpx.Response:
    form = {"csrf_token": csrf} if csrf is not None else {}
    if url.startswith("/api/"):
        headers = {"X-CSRF-Token": csrf} if csrf is not None else {}
        return await b.post(url, json={}, headers=headers)
    return await b.post(url, data=form | {"choice": "release", "name": "n", "role": "viewer"})


async def test_every_state_changing_route_refuses_a_missing_wrong_or_foreign_csrf_token(
    web: WebEnv, people: dict[Role, Browser]
) -> None:
    admin, other = people[Role.ADMIN], people[Role.OPERATOR]
    params = _params(web)
    routes = _state_changing(web)
    assert ("POST", "/admin/tokens") in routes and ("POST", "/control/{switch}") in routes
    before = _audit_rows(web)
    paused = _paused(web)
    wrong: list[str] = []
    for method, path in routes:
        url = _concrete(path, params)
        for label, csrf in (
            ("none", None),
            ("empty", ""),
            ("wrong", "x" * len(admin.csrf)),
            ("another session's", other.csrf),
        ):
            r = await _post(admin.http, url, csrf)
            if r.status_code != 403 or "csrf" not in r.text.lower():
                wrong.append(f"{method} {path} with {label} token: {r.status_code}")
    assert not wrong, "\n".join(wrong)
    assert _audit_rows(web) == before  # nothing was done, so nothing was recorded
    assert _paused(web) == paused
    # The same browser with its own token is let through (the refusals were about CSRF).
    ok = await admin.http.post("/control/pause", data={"csrf_token": admin.csrf})
    assert ok.status_code in (200, 303) and _paused(web) is True


def _paused(web: WebEnv) -> bool:
    with web.ctx.engine.connect() as conn:
        return paused_in_store(conn)


async def test_the_sign_in_form_needs_its_csrf_token(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    await client.get("/login")  # a session exists, but the form's token is not sent
    r = await client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 403
    r = await client.post(
        "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": "forged"}
    )
    assert r.status_code == 403
    assert (await client.get("/")).status_code == 303  # not signed in


async def test_a_session_planted_before_sign_in_is_worthless_after_it(web: WebEnv) -> None:
    """Session fixation: the attacker's pre-sign-in cookie does not become the victim's
    signed-in session."""
    async with client_for(web.app) as attacker, client_for(web.app) as victim:
        await attacker.get("/login")
        planted = attacker.cookies[COOKIE]
        [jar_cookie] = [c for c in attacker.cookies.jar if c.name == COOKIE]
        victim.cookies.set(COOKIE, planted, domain=jar_cookie.domain, path=jar_cookie.path)
        form = await victim.get("/login")
        assert victim.cookies[COOKIE] == planted  # the victim's browser uses the planted one
        r = await victim.post(
            "/login",
            data={
                "email": ADMIN_EMAIL,
                "password": ADMIN_PASSWORD,
                "csrf_token": csrf_from(form.text),
            },
        )
        assert r.status_code == 303
        assert victim.cookies[COOKIE] != planted  # sign-in issued a new session
        assert (await victim.get("/")).status_code == 200
        # The attacker, still holding the planted value, is not signed in.
        page = await attacker.get("/")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        api = await attacker.get("/api/v1/whoami")
        assert api.status_code == 401


async def test_brute_force_is_stopped_after_five_failures(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    for attempt in range(5):
        r = await sign_in(client, password=f"guess number {attempt}!")
        assert r.status_code == 401, attempt
    for password in ("guess number 5!", ADMIN_PASSWORD):  # the right one waits too
        limited = await sign_in(client, password=password)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        assert (await client.get("/")).status_code == 303
    web.clock.advance(15 * 60)  # the window passes
    assert (await sign_in(client)).status_code == 303
    assert (await client.get("/")).status_code == 200


@pytest.mark.slow  # 21 unknown-account sign-ins each pay for an argon2id hash
async def test_sign_in_limit_holds_per_address_across_accounts(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    """Spraying one password over many accounts hits the per-address limit (20)."""
    statuses = [
        (await sign_in(client, email=f"user{i}@corp.example", password="Winter2026!!")).status_code
        for i in range(21)
    ]
    assert statuses[:20] == [401] * 20 and statuses[20] == 429
    assert (await sign_in(client)).status_code == 429  # even the admin from that address
