"""The demo's last step: serve the admin web app on its store, with a one-time sign-in link.

After the summary, ``reclaim demo`` (on a terminal, or with ``--serve``):

1. creates the account ``DEMO_ADMIN`` (admin) with a random password that is never
   printed or written anywhere: the only way in is the link;
2. binds 127.0.0.1 (``--port``, else any free port), creates a one-time sign-in link
   for that account (``reclaim.web.auth.login_links``: signed, single-use, 15 minutes)
   and prints it;
3. serves the web app without a worker until Ctrl-C. The bundled Graph server keeps
   running meanwhile, so restores from the case pages reach it.

The app's clock starts where the simulated weeks ended and runs on in real time, so
the dashboard's "this month" and the data's freshness read as the summary did. (So a
link made meanwhile by ``reclaim accounts login-link``, on the real clock, would look
expired to this server: the demo prints its own.)
"""

from __future__ import annotations

import datetime as dt
import errno
import secrets
import time
from collections.abc import Callable

from rich.console import Console
from sqlalchemy import Connection

from reclaim.bootstrap import open_context
from reclaim.config import load_settings
from reclaim.demo.run import DemoResult
from reclaim.web.app import create_app
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import create_account
from reclaim.web.auth.login_links import DEFAULT_MINUTES, create_login_link
from reclaim.web.auth.roles import Role
from reclaim.web.server import listen, run_server
from reclaim.web.settings import WebSettings

DEMO_ADMIN = "admin@reclaim-demo.example"
HOST = "127.0.0.1"
_ACTOR = Actor(name="reclaim demo", kind="system")


def demo_clock(start: dt.datetime) -> Callable[[], dt.datetime]:
    """A clock that reads ``start`` now and moves on in real time from there."""
    began = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - began)


def serve_demo(result: DemoResult, *, console: Console, port: int = 8080) -> None:
    """Serve the demo's store until Ctrl-C (see the module docstring)."""
    settings = load_settings(result.config_path, check_secrets=True)
    clock = demo_clock(result.ended or dt.datetime.now(dt.UTC))
    now = clock()
    ctx = open_context(settings=settings, now=now)
    try:
        web_settings = WebSettings.from_env(settings.resolved_data_dir())
        try:
            sock = listen(HOST, port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == 0:
                raise
            console.print(f"port {port} is in use; serving on a free port instead")
            sock = listen(HOST, 0)
        base = f"http://{HOST}:{sock.getsockname()[1]}"
        with ctx.engine.begin() as conn:
            _create_admin(conn, now=int(now.timestamp()))
            link = create_login_link(
                conn,
                email=DEMO_ADMIN,
                secret=web_settings.secret,
                base_url=base,
                actor=_ACTOR,
                now=int(now.timestamp()),
            )
        app = create_app(ctx, now=clock, web_settings=web_settings)
        console.print()
        console.print(
            f"[bold]Admin web app[/] on {base}/ (API: {base}/api/v1). Sign in as "
            f"{DEMO_ADMIN} with this one-time link; it works once, within "
            f"{DEFAULT_MINUTES} minutes, in the first browser that opens it:",
            highlight=False,
        )
        # Printed alone on its line, unwrapped, so that it can be copied or clicked.
        console.print(link.url, highlight=False, soft_wrap=True, markup=False)
        console.print("Press Ctrl-C to stop (the store stays).", highlight=False)
        run_server(app, sock, log_level="warning")
    finally:
        ctx.engine.dispose()
    console.print(
        f"Stopped. The store stays in {result.data_dir}: reclaim serve --config "
        f"{result.config_path} serves it again (the bundled Graph server is gone).",
        highlight=False,
    )


def _create_admin(conn: Connection, *, now: int) -> None:
    """The demo admin, with a random password nobody sees: the link is the way in.
    (The demo's store is always new, so the account never exists yet.)"""
    create_account(
        conn,
        email=DEMO_ADMIN,
        role=Role.ADMIN,
        password=secrets.token_urlsafe(32),
        actor=_ACTOR,
        now=now,
        display_name="Demo admin",
    )
