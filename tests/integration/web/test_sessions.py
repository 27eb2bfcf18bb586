"""Browser sign-in: cookies, CSRF, session fixation, expiry, rate limiting, redirects."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update

from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.web_tables import accounts, audit_log
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import create_account
from reclaim.web.auth.roles import Role
from reclaim.web.auth.sessions import COOKIE, SessionCodec
from reclaim.web.settings import WebSettings
from tests.integration.web.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    TEST_SECRET,
    WebEnv,
    client_for,
    csrf_from,
    make_env,
    sign_in,
)

pytestmark = pytest.mark.anyio


def cookie_header(response: httpx.Response) -> str:
    values = [v for v in response.headers.get_list("set-cookie") if v.startswith(COOKIE)]
    assert values, "no session cookie set"
    return values[-1]


async def test_sign_in_sets_a_hardened_cookie_and_opens_the_dashboard(web: WebEnv, client) -> None:
    page = await client.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"
    response = await sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = cookie_header(response).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http in this test
    dashboard = await client.get("/")
    assert dashboard.status_code == 200 and ADMIN_EMAIL in dashboard.text


async def test_cookie_is_secure_over_https(web: WebEnv) -> None:
    async with client_for(web.app, https=True) as c:
        response = await sign_in(c)
    assert "secure" in cookie_header(response).lower()


async def test_sign_in_replaces_the_session(web: WebEnv, client) -> None:
    """Session fixation: nothing from the pre-sign-in session survives sign-in."""
    codec = SessionCodec(TEST_SECRET, max_age_seconds=3600)
    form = await client.get("/login")
    now = int(web.clock().timestamp())
    before = codec.loads(client.cookies[COOKIE], now=now)
    assert before is not None and before.account_id is None
    await sign_in(client)
    after = codec.loads(client.cookies[COOKIE], now=now)
    assert after is not None and after.account_id is not None
    assert after.sid != before.sid and after.csrf != before.csrf
    assert csrf_from(form.text) == before.csrf


async def test_wrong_password_and_unknown_account_look_the_same(web: WebEnv, client) -> None:
    wrong = await sign_in(client, password="not the password at all")
    unknown = await sign_in(client, email="nobody@corp.example", password="whatever at all")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "wrong e-mail address or password" in response.text
    assert (await client.get("/", follow_redirects=False)).status_code == 303
    with web.ctx.engine.connect() as conn:
        failures = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.action == "auth.login_failed")
        ).all()
    assert {f.actor for f in failures} == {ADMIN_EMAIL, "nobody@corp.example"}


async def test_login_post_without_csrf_token_is_refused(web: WebEnv, client) -> None:
    await client.get("/login")  # has a session cookie, but does not send its token
    response = await client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 403
    forged = await client.post(
        "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": "x" * 43}
    )
    assert forged.status_code == 403
    async with client_for(web.app) as fresh:  # no cookie at all (a cross-site form)
        response = await fresh.post(
            "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": "x"}
        )
    assert response.status_code == 403


async def test_logout_needs_csrf_and_ends_the_session(web: WebEnv, client) -> None:
    await sign_in(client)
    refused = await client.post("/logout")
    assert refused.status_code == 403
    assert (await client.get("/")).status_code == 200  # still signed in
    token = csrf_from((await client.get("/")).text)
    out = await client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (await client.get("/")).status_code == 303


async def test_forged_or_expired_cookies_are_not_sessions(web: WebEnv, client) -> None:
    await sign_in(client)
    good = client.cookies[COOKIE]
    client.cookies.set(COOKIE, good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    assert (await client.get("/")).status_code == 303
    client.cookies.set(COOKIE, good)
    assert (await client.get("/")).status_code == 200
    web.clock.advance(12 * 3600)  # the session's absolute lifetime
    assert (await client.get("/")).status_code == 303


async def test_disabling_an_account_ends_its_sessions(web: WebEnv, client) -> None:
    await sign_in(client)
    with web.ctx.engine.begin() as conn:
        conn.execute(
            update(accounts).values(session_epoch=accounts.c.session_epoch + 1, active=False)
        )
    assert (await client.get("/")).status_code == 303
    assert (await sign_in(client)).status_code == 401


async def test_rate_limit_per_account(web: WebEnv, client) -> None:
    for _ in range(5):
        assert (await sign_in(client, password="wrong password!!")).status_code == 401
    limited = await sign_in(client)  # even the right password waits
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 15 * 60
    web.clock.advance(15 * 60)
    assert (await sign_in(client)).status_code == 303


async def test_rate_limit_per_address_across_accounts(tmp_path) -> None:
    # A lower per-address limit than the default 20 keeps the test quick (each refused
    # guess costs an argon2 verification); the rule is the same.
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    settings = WebSettings(secret=TEST_SECRET, login_max_per_ip=3)
    web = make_env(engine, tmp_path / "data", settings=settings)
    async with client_for(web.app) as c:
        for i in range(3):
            response = await sign_in(c, email=f"guess{i}@corp.example", password="x" * 12)
            assert response.status_code == 401
        assert (await sign_in(c)).status_code == 429  # this address is blocked
        web.clock.advance(15 * 60)
        assert (await sign_in(c)).status_code == 303


async def test_success_clears_the_account_failures(web: WebEnv, client) -> None:
    for _ in range(4):
        await sign_in(client, password="wrong password!!")
    assert (await sign_in(client)).status_code == 303
    async with client_for(web.app) as other:
        await sign_in(other, password="wrong password!!")
        # Five failures in the window would block; four before the success no longer count.
        assert (await sign_in(other)).status_code == 303


@pytest.mark.parametrize(
    ("next_value", "expected"),
    [
        ("/audit?action=token.", "/audit?action=token."),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
async def test_next_only_goes_to_local_pages(web: WebEnv, client, next_value, expected) -> None:
    form = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_from(form.text),
            "next": next_value,
        },
    )
    assert response.headers["location"] == expected


async def test_roles_apply_to_pages(web: WebEnv, client) -> None:
    now = int(web.clock().timestamp())
    with web.ctx.engine.begin() as conn:
        create_account(
            conn,
            email="viewer@corp.example",
            role=Role.VIEWER,
            password="viewer password 1",
            actor=Actor(name="t", kind="system"),
            now=now,
        )
    await sign_in(client, "viewer@corp.example", "viewer password 1")
    assert (await client.get("/audit")).status_code == 200
    assert "API tokens" not in (await client.get("/")).text
    forbidden = await client.get("/admin/tokens", headers={"Accept": "text/html"})
    assert forbidden.status_code == 403 and "admin" in forbidden.text
