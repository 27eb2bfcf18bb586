"""The web app in process (httpx.ASGITransport) on a migrated store, with a test clock.

``web`` runs on SQLite; ``web_any_db`` on SQLite and the private PostgreSQL (through
the shared ``engine`` fixture). Each comes with an admin account and one API token
per role, created through the same services the CLI uses.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, update

from reclaim.bootstrap import Context
from reclaim.config import Settings
from reclaim.domain.policy import GroupRef, Policy, SeatCost, Workflow
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.policies import sync_policies
from reclaim.store.web_tables import accounts
from reclaim.web.app import create_app
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import create_account
from reclaim.web.auth.passwords import hash_password
from reclaim.web.auth.roles import Role
from reclaim.web.auth.tokens import create_token
from reclaim.web.settings import WebSettings
from reclaim.workflows.directory import DirectoryFactory

START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
ADMIN_EMAIL = "admin@corp.example"
ADMIN_PASSWORD = "correct horse battery staple"
TEST_SECRET = "test-secret-" + "x" * 40


@cache
def admin_hash() -> str:
    return hash_password(ADMIN_PASSWORD)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def policies() -> tuple[Policy, ...]:
    return (
        Policy(
            name="Visio",
            apps=("VISIO.EXE", "Microsoft Visio"),
            group=GroupRef(entra_id="0f1e2d3c-0000-4000-8000-000000000001"),
            workflow=Workflow.ENTRA_ID,
            seat_cost=SeatCost(amount=Decimal("15.00")),
        ),
        Policy(
            name="Miro",
            apps=("Miro",),
            group=GroupRef(name="Miro users"),
            workflow=Workflow.MANUAL,
            seat_cost=SeatCost(amount=Decimal("8.00"), currency="EUR"),
            unused_days=60,
        ),
    )


@dataclass
class WebEnv:
    """An app, its store and clock, and credentials for every role."""

    app: FastAPI
    ctx: Context
    clock: ManualClock
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        """Headers that authenticate as the token with this role."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_env(
    engine: Engine,
    data_dir: Path,
    *,
    settings: WebSettings | None = None,
    oidc_transport: httpx.AsyncBaseTransport | None = None,
    directories: DirectoryFactory | None = None,
) -> WebEnv:
    clock = ManualClock()
    core = Settings(data_dir=str(data_dir), policies=policies())
    now = int(clock().timestamp())
    with engine.begin() as conn:
        sync_policies(conn, core.policies, now=now)
    ctx = Context(settings=core, engine=engine)
    web_settings = settings or WebSettings(secret=TEST_SECRET, max_upload_bytes=1 << 20)
    app = create_app(
        ctx,
        now=clock,
        web_settings=web_settings,
        oidc_transport=oidc_transport,
        directories=directories,
    )
    env = WebEnv(app=app, ctx=ctx, clock=clock)
    setup = Actor(name="test-setup", kind="system")
    with engine.begin() as conn:
        admin = create_account(
            conn, email=ADMIN_EMAIL, role=Role.ADMIN, password=None, actor=setup, now=now
        )
        # The same argon2id hash for every test's admin: hashing costs ~0.2 s each time.
        conn.execute(
            update(accounts).where(accounts.c.id == admin.id).values(password_hash=admin_hash())
        )
        for role in Role:
            _, secret = create_token(
                conn, name=f"{role.value}-token", role=role, actor=setup, now=now
            )
            env.tokens[role.value] = secret
    return env


@pytest.fixture
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WebEnv:
    """The app on a fresh, migrated SQLite store."""
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    return make_env(engine, tmp_path / "data")


@pytest.fixture
def web_any_db(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WebEnv:
    """The app on SQLite and on the private PostgreSQL."""
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    return make_env(engine, tmp_path / "data")


def client_for(app: FastAPI, *, https: bool = False) -> httpx.AsyncClient:
    """An in-process client; app exceptions become 500 responses as in production."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    base = "https://testserver" if https else "http://testserver"
    return httpx.AsyncClient(transport=transport, base_url=base)


@pytest.fixture
async def client(web: WebEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(web.app) as c:
        yield c


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token embedded in a rendered form."""
    found = CSRF_INPUT.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


async def sign_in(
    c: httpx.AsyncClient, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> httpx.Response:
    """Sign in through the form, as a browser does (GET the form, POST it with its token)."""
    form = await c.get("/login")
    return await c.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(form.text)},
    )


def assert_problem(response: httpx.Response, status: int) -> dict:
    """An RFC 9457 body with the right status and no trace of a traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["type"], str)
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


Headers = Callable[[str], dict[str, str]]
