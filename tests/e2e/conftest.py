"""Browser tests: Debian's Chromium driven by Playwright, against the app served by uvicorn.

The browser is the system's ``/usr/bin/chromium`` (``playwright install`` is never
run, nothing is downloaded). Without it these tests skip and say why, except under
CI (``CI=true``), where a missing browser fails the run: a green CI must not hide an
untested UI.

The app runs in a background thread on a free loopback port, on its own SQLite store.
Screenshots go to ``test-output/screenshots/`` at the repository root.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from reclaim.bootstrap import Context
from reclaim.config import Settings
from reclaim.domain.policy import GroupRef, Policy, SeatCost, Workflow
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.policies import sync_policies
from reclaim.web.app import create_app
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import create_account
from reclaim.web.auth.roles import Role
from reclaim.web.auth.tokens import create_token
from reclaim.web.settings import WebSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
ADMIN_EMAIL = "admin@corp.example"
ADMIN_PASSWORD = "correct horse battery staple"


# Package scope, not session: Playwright's sync API keeps an event loop running in
# the main thread while it is open, which breaks later tests that start their own.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """A headless Chromium (Debian's), shared by the session's tests."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; scripts/install-test-deps.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    try:
        yield pg
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-output/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class LiveServer:
    """The app on a real socket, with an ingest token to feed it."""

    url: str
    ingest_token: str
    ctx: Context


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process keeps its own handlers
        pass


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Serve a fresh store's app with uvicorn on 127.0.0.1 and a free port."""
    tmp = tmp_path_factory.mktemp("e2e")
    engine = make_engine(f"sqlite:///{tmp / 'reclaim.db'}")
    upgrade(engine)
    policies = (
        Policy(
            name="Visio",
            apps=("VISIO.EXE", "Microsoft Visio"),
            group=GroupRef(entra_id="0f1e2d3c-0000-4000-8000-000000000001"),
            workflow=Workflow.ENTRA_ID,
            seat_cost=SeatCost(amount=Decimal(15)),
        ),
    )
    settings = Settings(data_dir=str(tmp / "data"), policies=policies)
    now = int(dt.datetime.now(dt.UTC).timestamp())
    setup = Actor(name="e2e-setup", kind="system")
    with engine.begin() as conn:
        sync_policies(conn, policies, now=now)
        create_account(
            conn, email=ADMIN_EMAIL, role=Role.ADMIN, password=ADMIN_PASSWORD, actor=setup, now=now
        )
        _, ingest = create_token(conn, name="e2e-ingest", role=Role.INGEST, actor=setup, now=now)
    ctx = Context(settings=settings, engine=engine)
    app = create_app(ctx, web_settings=WebSettings(secret="e2e-" + "s" * 40))

    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
    # they are TCP; without it every response waited ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port; no race with others
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", ingest_token=ingest, ctx=ctx)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        engine.dispose()
