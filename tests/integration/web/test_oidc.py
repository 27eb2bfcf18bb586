"""OpenID Connect sign-in against a small in-process provider (our own fake, over ASGI).

The provider publishes discovery and keys, checks PKCE and client credentials at the
token endpoint, and signs ID tokens with a key made for the test. Nothing leaves the
process and no library is patched.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.web_tables import accounts, audit_log
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import create_account
from reclaim.web.auth.roles import Role
from reclaim.web.settings import OidcSettings, WebSettings, WebSettingsError
from tests.integration.web.conftest import TEST_SECRET, WebEnv, client_for, make_env

pytestmark = pytest.mark.anyio

ISSUER = "https://login.test/tenant-1/v2.0"
CLIENT_ID = "reclaim-app"
CLIENT_SECRET = "s3cret-for-tests"


@dataclass
class FakeProvider:
    """Just enough of an OpenID provider: discovery, keys, token endpoint."""

    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    grants: dict[str, dict[str, Any]] = field(default_factory=dict)
    nonce_override: str | None = None

    def authorize(self, url: str, *, sub: str, email: str | None) -> tuple[str, str]:
        """What a person signing in does at the provider: returns (code, state)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        code = secrets.token_urlsafe(16)
        self.grants[code] = {**query, "sub": sub, "email": email}
        return code, query["state"]

    def app(self) -> Starlette:
        async def discovery(_: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "issuer": ISSUER,
                    "authorization_endpoint": "https://login.test/tenant-1/oauth2/v2.0/authorize",
                    "token_endpoint": "https://login.test/tenant-1/oauth2/v2.0/token",
                    "jwks_uri": "https://login.test/tenant-1/discovery/v2.0/keys",
                }
            )

        async def keys(_: Request) -> JSONResponse:
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.grants.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier"))
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if grant is None or grant["code_challenge"] != challenge:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            if form.get("redirect_uri") != grant["redirect_uri"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            claims = {
                "iss": ISSUER,
                "aud": CLIENT_ID,
                "sub": grant["sub"],
                "nonce": self.nonce_override or grant["nonce"],
                "iat": 1_793_000_000,
                "exp": 1_893_000_000,
                "name": "Dee Admin",
            }
            if grant["email"]:
                claims["email"] = grant["email"]
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
            return JSONResponse({"access_token": "x", "token_type": "Bearer", "id_token": id_token})

        return Starlette(
            routes=[
                Route("/tenant-1/v2.0/.well-known/openid-configuration", discovery),
                Route("/tenant-1/discovery/v2.0/keys", keys),
                Route("/tenant-1/oauth2/v2.0/token", token, methods=["POST"]),
            ]
        )


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def sso(tmp_path: Path, provider: FakeProvider) -> WebEnv:
    engine = make_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    settings = WebSettings(
        secret=TEST_SECRET,
        oidc=OidcSettings(issuer=ISSUER, client_id=CLIENT_ID, client_secret=CLIENT_SECRET),
    )
    env = make_env(
        engine,
        tmp_path / "data",
        settings=settings,
        oidc_transport=httpx.ASGITransport(app=provider.app()),
    )
    with engine.begin() as conn:
        create_account(
            conn,
            email="dee@corp.example",
            role=Role.OPERATOR,
            password=None,
            actor=Actor(name="t", kind="system"),
            now=int(env.clock().timestamp()),
        )
    return env


async def start(c: httpx.AsyncClient, next_path: str = "/audit") -> str:
    response = await c.get(f"/auth/oidc/start?next={next_path}")
    assert response.status_code == 302
    return response.headers["location"]


async def test_start_redirects_with_state_nonce_and_pkce(sso: WebEnv) -> None:
    async with client_for(sso.app) as c:
        login_page = await c.get("/login")
        assert "Sign in with Microsoft" in login_page.text
        url = await start(c)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://login.test/tenant-1/oauth2/v2.0/authorize"
    )
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert query["redirect_uri"] == "http://testserver/auth/oidc/callback"
    assert query["scope"] == "openid email profile"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    assert CLIENT_SECRET not in url


async def test_full_sign_in_binds_the_account(sso: WebEnv, provider: FakeProvider) -> None:
    async with client_for(sso.app) as c:
        code, state = provider.authorize(await start(c), sub="abc-123", email="Dee@corp.example")
        done = await c.get(f"/auth/oidc/callback?code={code}&state={state}")
        assert done.status_code == 303 and done.headers["location"] == "/audit"
        me = (await c.get("/api/v1/whoami")).json()
        assert me == {"kind": "account", "name": "dee@corp.example", "role": "operator"}
    with sso.ctx.engine.connect() as conn:
        bound = conn.execute(
            select(accounts.c.oidc_subject).where(accounts.c.email == "dee@corp.example")
        ).scalar()
    assert bound == f"{ISSUER}|abc-123"
    # Later sign-ins go by the subject, even after the e-mail claim changed.
    async with client_for(sso.app) as c:
        code, state = provider.authorize(
            await start(c), sub="abc-123", email="renamed@corp.example"
        )
        assert (await c.get(f"/auth/oidc/callback?code={code}&state={state}")).status_code == 303


async def test_a_callback_with_another_state_is_refused(sso: WebEnv, provider) -> None:
    async with client_for(sso.app) as c:
        code, _ = provider.authorize(await start(c), sub="abc-123", email="dee@corp.example")
        response = await c.get(f"/auth/oidc/callback?code={code}&state=forged")
        assert response.status_code == 400
        assert (await c.get("/", follow_redirects=False)).status_code == 303
    async with client_for(sso.app) as other_browser:  # no pending sign-in at all
        response = await other_browser.get(f"/auth/oidc/callback?code={code}&state=x")
        assert response.status_code == 400


async def test_an_id_token_with_the_wrong_nonce_is_refused(sso: WebEnv, provider) -> None:
    provider.nonce_override = "replayed-from-elsewhere"
    async with client_for(sso.app) as c:
        code, state = provider.authorize(await start(c), sub="abc-123", email="dee@corp.example")
        response = await c.get(f"/auth/oidc/callback?code={code}&state={state}")
    assert response.status_code == 400
    assert "ID token" in response.json()["detail"]


async def test_no_account_no_entry(sso: WebEnv, provider) -> None:
    async with client_for(sso.app) as c:
        code, state = provider.authorize(await start(c), sub="zzz", email="stranger@corp.example")
        response = await c.get(f"/auth/oidc/callback?code={code}&state={state}")
    assert response.status_code == 403
    with sso.ctx.engine.connect() as conn:
        failed = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.action == "auth.login_failed")
        ).scalar()
    assert failed == "stranger@corp.example"


def test_settings_from_environment(tmp_path: Path) -> None:
    env = {
        "RECLAIM_WEB_SECRET": "z" * 40,
        "RECLAIM_OIDC_TENANT_ID": "0f1e2d3c-0000-4000-8000-000000000001",
        "RECLAIM_OIDC_CLIENT_ID": CLIENT_ID,
        "RECLAIM_OIDC_CLIENT_SECRET": CLIENT_SECRET,
    }
    settings = WebSettings.from_env(tmp_path, env)
    assert settings.oidc is not None
    assert settings.oidc.issuer == (
        "https://login.microsoftonline.com/0f1e2d3c-0000-4000-8000-000000000001/v2.0"
    )
    assert CLIENT_SECRET not in repr(settings) and "z" * 40 not in repr(settings)
    with pytest.raises(WebSettingsError, match="CLIENT_SECRET"):
        WebSettings.from_env(tmp_path, {**env, "RECLAIM_OIDC_CLIENT_SECRET": ""})
    with pytest.raises(WebSettingsError, match="https"):
        WebSettings.from_env(tmp_path, {**env, "RECLAIM_OIDC_ISSUER": "http://idp.example/x"})
    assert WebSettings.from_env(tmp_path, {"RECLAIM_WEB_SECRET": "z" * 40}).oidc is None
