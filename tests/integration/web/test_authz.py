"""Who may call what: every API endpoint × every role × no credentials, and token life."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from reclaim.store.web_tables import api_tokens
from reclaim.web.audit import Actor
from reclaim.web.auth.roles import Role, allows
from reclaim.web.auth.tokens import create_token, revoke_token
from tests.integration.web.conftest import WebEnv, assert_problem, csrf_from, sign_in

pytestmark = pytest.mark.anyio

CSV = b"user,app,date\nann@corp.example,VISIO.EXE,2026-11-01\n"

# (method, path, body, content type, role needed); None: any authenticated caller
ENDPOINTS = [
    ("GET", "/api/v1/policies", None, None, Role.VIEWER),
    ("GET", "/api/v1/policies/Visio", None, None, Role.VIEWER),
    ("GET", "/api/v1/audit", None, None, Role.VIEWER),
    ("POST", "/api/v1/usage", CSV, "text/csv", Role.INGEST),
    ("GET", "/api/v1/whoami", None, None, None),
]

# The matrix the docs promise (docs/web.md, "Roles"), spelled out so a change in
# ``allows`` that breaks it fails here rather than passing by construction.
EXPECTED = {
    ("viewer", Role.VIEWER): True,
    ("operator", Role.VIEWER): True,
    ("admin", Role.VIEWER): True,
    ("ingest", Role.VIEWER): False,
    ("viewer", Role.INGEST): False,
    ("operator", Role.INGEST): False,
    ("admin", Role.INGEST): True,
    ("ingest", Role.INGEST): True,
    ("viewer", Role.OPERATOR): False,
    ("operator", Role.OPERATOR): True,
    ("admin", Role.OPERATOR): True,
    ("ingest", Role.OPERATOR): False,
    ("viewer", Role.ADMIN): False,
    ("operator", Role.ADMIN): False,
    ("admin", Role.ADMIN): True,
    ("ingest", Role.ADMIN): False,
}


def test_role_ladder_matches_the_documented_matrix() -> None:
    for (have, need), allowed in EXPECTED.items():
        assert allows(Role(have), need) is allowed, (have, need)


async def _call(
    c: httpx.AsyncClient, method: str, path: str, body, ctype, headers
) -> httpx.Response:
    h = dict(headers)
    if ctype:
        h["Content-Type"] = ctype
    return await c.request(method, path, content=body, headers=h)


@pytest.mark.parametrize(("method", "path", "body", "ctype", "need"), ENDPOINTS)
async def test_authorization_matrix(web: WebEnv, client, method, path, body, ctype, need) -> None:
    response = await _call(client, method, path, body, ctype, {})
    body401 = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "rcl_" in body401["detail"]
    for role in Role:
        response = await _call(client, method, path, body, ctype, web.auth(role.value))
        allowed = need is None or EXPECTED[(role.value, need)]
        if allowed:
            assert response.status_code == 200, (role, path, response.text)
        else:
            problem = assert_problem(response, 403)
            assert role.value in problem["detail"], problem


@pytest.mark.parametrize(
    "header",
    [
        "Bearer rcl_not-a-real-token",
        "Bearer something-else",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "rcl_nobearer",
    ],
)
async def test_bad_credentials_are_401(web: WebEnv, client, header: str) -> None:
    response = await client.get("/api/v1/policies", headers={"Authorization": header})
    assert_problem(response, 401)


async def test_authorization_header_wins_over_a_session_cookie(web: WebEnv, client) -> None:
    await sign_in(client)
    assert (await client.get("/api/v1/whoami")).json()["kind"] == "account"
    response = await client.get("/api/v1/whoami", headers={"Authorization": "Bearer rcl_wrong"})
    assert_problem(response, 401)  # a bad header is not rescued by the cookie


async def test_revoked_and_expired_tokens_stop_working(web: WebEnv, client) -> None:
    now = int(web.clock().timestamp())
    actor = Actor(name="t", kind="system")
    with web.ctx.engine.begin() as conn:
        revoked, revoked_secret = create_token(
            conn, name="old", role=Role.VIEWER, actor=actor, now=now
        )
        _, expiring_secret = create_token(
            conn, name="short", role=Role.VIEWER, actor=actor, now=now, expires=now + 3600
        )
    ok = await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {revoked_secret}"})
    assert ok.status_code == 200
    with web.ctx.engine.begin() as conn:
        revoke_token(conn, revoked.id, actor=actor, now=now)
    gone = await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {revoked_secret}"})
    assert_problem(gone, 401)
    expiring = {"Authorization": f"Bearer {expiring_secret}"}
    assert (await client.get("/api/v1/whoami", headers=expiring)).status_code == 200
    web.clock.advance(3600)
    assert_problem(await client.get("/api/v1/whoami", headers=expiring), 401)


async def test_last_used_is_recorded_but_not_on_every_request(web: WebEnv, client) -> None:
    def last_used() -> int | None:
        with web.ctx.engine.connect() as conn:
            return conn.execute(
                select(api_tokens.c.last_used).where(api_tokens.c.name == "viewer-token")
            ).scalar()

    assert last_used() is None
    await client.get("/api/v1/whoami", headers=web.auth("viewer"))
    first = last_used()
    assert first == int(web.clock().timestamp())
    web.clock.advance(30)
    await client.get("/api/v1/whoami", headers=web.auth("viewer"))
    assert last_used() == first  # within a minute: no write
    web.clock.advance(60)
    await client.get("/api/v1/whoami", headers=web.auth("viewer"))
    assert last_used() == first + 90


async def test_only_the_hash_of_a_token_is_stored(web: WebEnv) -> None:
    with web.ctx.engine.connect() as conn:
        rows = conn.execute(select(api_tokens)).all()
    stored = " ".join(str(v) for row in rows for v in row)
    for secret in web.tokens.values():
        assert secret not in stored
        assert secret.startswith("rcl_") and len(secret) >= 40


async def test_api_writes_from_a_browser_session_need_the_csrf_header(web: WebEnv, client) -> None:
    """A signed-in admin's cookie alone cannot upload: the CSRF token must come too."""
    await sign_in(client)
    page = await client.get("/")
    token = csrf_from(page.text)
    refused = await client.post("/api/v1/usage", content=CSV, headers={"Content-Type": "text/csv"})
    assert assert_problem(refused, 403)["type"].endswith("/csrf")
    accepted = await client.post(
        "/api/v1/usage", content=CSV, headers={"Content-Type": "text/csv", "X-CSRF-Token": token}
    )
    assert accepted.status_code == 200
    # Reads need no CSRF token.
    assert (await client.get("/api/v1/policies")).status_code == 200
