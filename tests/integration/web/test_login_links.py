"""One-time sign-in links: the first use signs in, every other use is refused with a
page and no session; links are bound to their account, expire, and are audited."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select, update
from typer.testing import CliRunner

from reclaim.cli import app as cli_app
from reclaim.store.engine import make_engine
from reclaim.store.login_links import login_links
from reclaim.store.web_tables import accounts, audit_log
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import create_account
from reclaim.web.auth.login_links import LoginLinkError, create_login_link
from reclaim.web.auth.roles import Role
from reclaim.web.auth.sessions import COOKIE
from reclaim.web.security import RedactQueryFilter
from reclaim.web.settings import WebSettings
from tests.integration.web.conftest import (
    ADMIN_EMAIL,
    TEST_SECRET,
    WebEnv,
    admin_hash,
    client_for,
    sign_in,
)

pytestmark = pytest.mark.anyio
SALT = "reclaim.web.login-link.v1"
VIEWER = "viewer@corp.example"


def make_link(web: WebEnv, email: str = ADMIN_EMAIL, *, minutes: int = 15) -> str:
    """A link as ``reclaim accounts login-link`` makes it, as a path and query."""
    with web.ctx.engine.begin() as conn:
        link = create_login_link(
            conn,
            email=email,
            secret=TEST_SECRET,
            base_url="http://testserver",
            actor=Actor(name="cli:ops", kind="cli"),
            now=int(web.clock().timestamp()),
            minutes=minutes,
        )
    assert link.url.startswith("http://testserver/login/link?token=")
    return link.url.removeprefix("http://testserver")


def token_of(path: str) -> str:
    return parse_qs(urlsplit(path).query)["token"][0]


def add_viewer(web: WebEnv) -> int:
    with web.ctx.engine.begin() as conn:
        account = create_account(
            conn,
            email=VIEWER,
            role=Role.VIEWER,
            password=None,
            actor=Actor(name="test", kind="system"),
            now=int(web.clock().timestamp()),
        )
        # A local password (the shared test hash: hashing one costs ~0.2 s).
        conn.execute(
            update(accounts).where(accounts.c.id == account.id).values(password_hash=admin_hash())
        )
    return account.id


def audit_rows(web: WebEnv, *actions: str) -> list[tuple[str, str | None, dict]]:
    with web.ctx.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.target, audit_log.c.detail)
            .where(audit_log.c.action.in_(actions))
            .order_by(audit_log.c.id)
        ).all()
    return [(a, t, json.loads(d)) for a, t, d in rows]


def assert_refused(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    assert f'data-reason="{reason}"' in response.text
    assert not any(v.startswith(COOKIE) for v in response.headers.get_list("set-cookie"))


async def test_first_use_signs_in_and_a_second_use_is_refused(web_any_db: WebEnv) -> None:
    web = web_any_db  # SQLite and PostgreSQL: single use rests on one conditional UPDATE
    path = make_link(web)
    async with client_for(web.app) as browser:
        r = await browser.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith(COOKIE))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie  # the sign-in cookie
        dashboard = await browser.get("/")
        assert dashboard.status_code == 200
        assert f"{ADMIN_EMAIL} · admin" in dashboard.text
    async with client_for(web.app) as other:
        assert_refused(await other.get(path), 410, "used")
        assert (await other.get("/")).status_code == 303  # still signed out
    entries = audit_rows(web, "account.login_link", "auth.login", "auth.login_failed")
    assert [(a, t) for a, t, _ in entries] == [
        ("account.login_link", ADMIN_EMAIL),
        ("auth.login", None),
        ("auth.login_failed", None),
    ]
    link_id = entries[0][2]["link"]
    assert entries[1][2] == {"method": "login_link", "link": link_id}
    assert entries[2][2] == {"method": "login_link", "reason": "used"}
    with web.ctx.engine.connect() as conn:
        row = conn.execute(select(login_links)).one()
        last_login = conn.execute(
            select(accounts.c.last_login).where(accounts.c.email == ADMIN_EMAIL)
        ).scalar()
    assert row.used == int(web.clock().timestamp()) == last_login
    assert token_of(path) not in json.dumps([e[2] for e in entries])  # never in the log
    assert row.nonce_hash not in path  # only a hash of the nonce is stored


async def test_an_expired_link_is_refused(web: WebEnv) -> None:
    path = make_link(web, minutes=15)
    web.clock.advance(15 * 60)
    async with client_for(web.app) as browser:
        assert_refused(await browser.get(path), 410, "expired")
    assert audit_rows(web, "auth.login_failed")[-1][2]["reason"] == "expired"


async def test_a_link_works_until_its_last_second(web: WebEnv) -> None:
    path = make_link(web, minutes=1)
    web.clock.advance(59)
    async with client_for(web.app) as browser:
        assert (await browser.get(path)).status_code == 303


@pytest.mark.parametrize(
    "mangle",
    [
        # One character of the signature changed. (Not the last one: its low bits are
        # base64 padding, so some edits there decode to the same bytes.)
        lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],
        lambda t: t[:20],  # cut short when copied
        lambda t: "",
        lambda t: "x" * 2000,
    ],
    ids=["edited", "truncated", "empty", "huge"],
)
async def test_a_tampered_link_is_refused(web: WebEnv, mangle) -> None:
    path = make_link(web)
    async with client_for(web.app) as browser:
        r = await browser.get("/login/link", params={"token": mangle(token_of(path))})
        assert r.status_code in (400, 422)
        assert not any(v.startswith(COOKIE) for v in r.headers.get_list("set-cookie"))
        assert (await browser.get("/")).status_code == 303
    async with client_for(web.app) as browser:  # the genuine link still works afterwards
        assert (await browser.get(path)).status_code == 303


async def test_a_link_cannot_be_moved_to_another_account(web: WebEnv) -> None:
    viewer_id = add_viewer(web)
    path = make_link(web)  # the admin's
    claims = URLSafeSerializer(TEST_SECRET, salt=SALT).loads(token_of(path))
    # Without the secret: swap the account id, keep the signature.
    sig = token_of(path).rsplit(".", 1)[1]
    swapped = URLSafeSerializer("another-secret-" + "y" * 40, salt=SALT).dumps(
        claims | {"a": viewer_id}
    )
    forged = swapped.rsplit(".", 1)[0] + "." + sig
    # With the secret (an insider): the admin's nonce, signed for the viewer.
    insider = URLSafeSerializer(TEST_SECRET, salt=SALT).dumps(claims | {"a": viewer_id})
    async with client_for(web.app) as browser:
        assert_refused(await browser.get("/login/link", params={"token": forged}), 400, "invalid")
        assert_refused(await browser.get("/login/link", params={"token": insider}), 400, "invalid")
        assert audit_rows(web, "auth.login") == []
    # The viewer's own link signs in the viewer, never the admin, in a browser that was
    # signed in as the admin before (the session is replaced, not upgraded).
    async with client_for(web.app) as browser:
        await sign_in(browser)
        assert (await browser.get(make_link(web, VIEWER))).status_code == 303
        page = await browser.get("/")
        assert f"{VIEWER} · viewer" in page.text and ADMIN_EMAIL not in page.text
        assert (await browser.get("/admin/tokens")).status_code == 403
    async with client_for(web.app) as browser:  # and the admin's link is still unspent
        assert (await browser.get(path)).status_code == 303


async def test_a_link_from_another_secret_is_refused(web: WebEnv, tmp_path: Path) -> None:
    with web.ctx.engine.begin() as conn:
        link = create_login_link(
            conn,
            email=ADMIN_EMAIL,
            secret="not-the-server-secret-" + "z" * 40,
            base_url="http://testserver",
            actor=Actor(name="cli:ops", kind="cli"),
            now=int(web.clock().timestamp()),
        )
    async with client_for(web.app) as browser:
        assert_refused(await browser.get(link.url), 400, "invalid")


async def test_links_are_refused_for_disabled_sso_only_and_unknown_accounts(web: WebEnv) -> None:
    path = make_link(web)
    with web.ctx.engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.email == ADMIN_EMAIL).values(active=False))
    async with client_for(web.app) as browser:
        assert_refused(await browser.get(path), 403, "disabled")
    with pytest.raises(LoginLinkError, match="disabled"):
        make_link(web)
    with web.ctx.engine.begin() as conn:
        create_account(
            conn,
            email="sso@corp.example",
            role=Role.ADMIN,
            password=None,
            actor=Actor(name="test", kind="system"),
            now=int(web.clock().timestamp()),
        )
    with pytest.raises(LoginLinkError, match="single sign-on only"):
        make_link(web, "sso@corp.example")
    with pytest.raises(LoginLinkError, match=r"no account for nobody@corp\.example"):
        make_link(web, "Nobody@corp.example")
    with pytest.raises(LoginLinkError, match="1 to 60 minutes"):
        make_link(web, minutes=61)


def test_access_logs_never_keep_the_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/login/link?token=eyJhIjoxfQ.abc&x=1", "1.1", 303),
        None,
    )
    RedactQueryFilter().filter(record)
    assert "eyJhIjoxfQ" not in record.getMessage()
    assert "token=[redacted]&x=1" in record.getMessage()


def test_cli_prints_a_link_the_server_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    for name in ("RECLAIM_CONFIG", "RECLAIM_DATABASE_URL", "RECLAIM_WEB_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECLAIM_DATA_DIR", str(data))
    runner = CliRunner()
    password = tmp_path / "pw"
    password.write_text("a long enough password for tests\n")
    made = runner.invoke(
        cli_app, ["accounts", "create-admin", "ops@corp.example", "--password-file", str(password)]
    )
    assert made.exit_code == 0, made.stderr
    result = runner.invoke(
        cli_app,
        [
            "accounts",
            "login-link",
            "ops@corp.example",
            "--url",
            "http://r.example:9/",
            "--minutes",
            "5",
        ],
    )
    assert result.exit_code == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("http://r.example:9/login/link?token=") and "\n" not in url
    assert "one-time sign-in link for ops@corp.example" in result.stderr
    refused = runner.invoke(cli_app, ["accounts", "login-link", "nobody@corp.example"])
    assert refused.exit_code == 2 and "no account for nobody@corp.example" in refused.stderr
    # The link verifies with the secret the server reads from the same data directory.
    secret = WebSettings.from_env(data, env={}).secret
    claims = URLSafeSerializer(secret, salt=SALT).loads(token_of(url))
    engine = make_engine(f"sqlite:///{data / 'reclaim.db'}")
    with engine.connect() as conn:
        row = conn.execute(select(login_links)).one()
        entry = conn.execute(
            select(audit_log).where(audit_log.c.action == "account.login_link")
        ).one()
    engine.dispose()
    assert row.expires - row.created == 300 == claims["x"] - row.created
    assert entry.actor_kind == "cli" and entry.target == "ops@corp.example"
