"""Fixtures for the security suite: the web app of tests/integration/web, plus people.

``web`` / ``client`` are the integration fixtures (the app in process on SQLite, an
admin account and one API token per role); ``people`` adds a signed-in browser for
every account role, so page routes can be tried as each of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import update

from reclaim.store.web_tables import accounts
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import create_account
from reclaim.web.auth.roles import ACCOUNT_ROLES, Role
from tests.integration.web.conftest import (  # noqa: F401  (fixtures, re-exported)
    ADMIN_PASSWORD,
    WebEnv,
    admin_hash,
    anyio_backend,
    client,
    client_for,
    csrf_from,
    sign_in,
    web,
)


@dataclass
class Browser:
    """A signed-in browser: its client and the CSRF token of its session."""

    role: Role
    email: str
    http: httpx.AsyncClient
    csrf: str


def add_account(env: WebEnv, role: Role, email: str) -> None:
    """An account with the fixture password (hash reused: argon2id is slow on purpose)."""
    now = int(env.clock().timestamp())
    with env.ctx.engine.begin() as conn:
        made = create_account(
            conn, email=email, role=role, password=None, actor=Actor("setup", "system"), now=now
        )
        conn.execute(
            update(accounts).where(accounts.c.id == made.id).values(password_hash=admin_hash())
        )


async def signed_in(env: WebEnv, role: Role, email: str) -> Browser:
    """A new client signed in as ``email`` (which has ``role``)."""
    http = client_for(env.app)
    response = await sign_in(http, email=email, password=ADMIN_PASSWORD)
    assert response.status_code == 303, response.text
    # Every signed-in page carries the sign-out form, and with it the session's token.
    csrf = csrf_from((await http.get("/")).text)
    return Browser(role=role, email=email, http=http, csrf=csrf)


@pytest.fixture
async def people(web: WebEnv) -> AsyncIterator[dict[Role, Browser]]:  # noqa: F811
    """One signed-in browser per account role (viewer, operator, admin)."""
    out: dict[Role, Browser] = {}
    for role in ACCOUNT_ROLES:
        email = f"{role.value}.person@corp.example"
        add_account(web, role, email)
        out[role] = await signed_in(web, role, email)
    try:
        yield out
    finally:
        for browser in out.values():
            await browser.http.aclose()
