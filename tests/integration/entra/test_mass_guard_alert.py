"""The mass-removal guard's alert reaches the admins, and nothing is removed.

Real peers only: the Graph test server holds the tenant (its request log is the proof
that no removal went out), aiosmtpd receives the mail over STARTTLS with a login, and
the dashboard is read over HTTP from the app. The runs go through ``reclaim run``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from reclaim.cli import app as cli_app
from reclaim.testing.graph import GraphServer, ManualClock
from reclaim.web.app import create_app
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import AccountError, create_account
from reclaim.web.auth.roles import Role
from reclaim.web.settings import WebSettings
from tests.integration.campaigns.conftest import (  # noqa: F401  (fixtures)
    SMTP_PASSWORD,
    SMTP_USER,
    SmtpPeer,
    free_port,
    smtp_server,
    tls_files,
)
from tests.integration.web.conftest import csrf_from

from .conftest import CLIENT_SECRET, E3_GROUP
from .runner_world import (
    E3_MEMBERS,
    SECRET_ENV,
    EntraWorld,
    build_entra_world,
    entra_policy,
)

ADMINS = ("it-licensing@corp.example", "secops@corp.example")
SMTP_PW_ENV = "RECLAIM_TEST_ALERT_SMTP_PW"
LINK_ENV = "RECLAIM_TEST_ALERT_LINK_KEY"
WEB_PASSWORD = "alert-test admin password"  # obviously fake fixture value
BASE_TEXT: dict[Path, str] = {}  # each world's config as built, before _config edits it


def _config(world: EntraWorld, smtp_port: int, ca_file: Path, *, cap: int) -> None:
    """The world's first reclaim.yaml plus the alert recipients, ``smtp:`` and a cap."""
    text = BASE_TEXT[world.config].replace("max_per_run: 1,", f"max_per_run: {cap},")
    head, _, rest = text.partition("policies:\n")
    extra = (
        f"safety:\n  alert_emails: [{', '.join(ADMINS)}]\n"
        "smtp:\n"
        f"  host: 127.0.0.1\n  port: {smtp_port}\n  security: starttls\n"
        f"  username: {SMTP_USER}\n  password: env:{SMTP_PW_ENV}\n"
        "  sender: 'Reclaim <reclaim@corp.example>'\n"
        "campaigns:\n"
        "  base_url: https://reclaim.corp.example\n"
        f"  token_keys: [env:{LINK_ENV}]\n"
        f"  email: {{ca_file: {ca_file}, timeout_seconds: 5}}\n"
    )
    world.config.write_text(head + extra + "policies:\n" + rest, encoding="utf-8")


def _run(world: EntraWorld) -> dict:
    result = CliRunner().invoke(
        cli_app, ["run", "--policy", "E3", "--json", "-c", str(world.config)]
    )
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def _mails(peer: SmtpPeer) -> list[EmailMessage]:
    parser = BytesParser(policy=email_policy.default)
    return [parser.parsebytes(m.data) for m in peer.recorder.messages]


async def _dashboard(world: EntraWorld) -> str:
    from reclaim.bootstrap import open_context

    ctx = open_context(world.config, now=world.clock())
    try:
        with ctx.engine.begin() as conn, contextlib.suppress(AccountError):  # made before
            create_account(
                conn,
                email="admin@corp.example",
                role=Role.ADMIN,
                password=WEB_PASSWORD,
                actor=Actor("setup", "system"),
                now=0,
            )
        app = create_app(ctx, web_settings=WebSettings(secret="d" * 48))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            form = await c.get("/login")
            signed = await c.post(
                "/login",
                data={
                    "email": "admin@corp.example",
                    "password": WEB_PASSWORD,
                    "csrf_token": csrf_from(form.text),
                },
            )
            assert signed.status_code == 303, signed.text
            page = await c.get("/")
            assert page.status_code == 200
            return page.text
    finally:
        ctx.engine.dispose()


@pytest.fixture
def alert_world(
    server: GraphServer,
    clock: ManualClock,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[EntraWorld]:
    """Five E3 members nobody uses Excel for, a policy that removes without asking and
    may remove one seat per run: five removals wanted is more than twice the cap."""
    for name, value in (
        (SECRET_ENV, CLIENT_SECRET),
        (SMTP_PW_ENV, SMTP_PASSWORD),
        (LINK_ENV, "alert-test-link-key-" + "x" * 24),
    ):
        monkeypatch.setenv(name, value)
    world = build_entra_world(
        server, clock, db_url, tmp_path, entra_policy("E3", E3_GROUP, ask=False, cap=1)
    )
    BASE_TEXT[world.config] = world.config.read_text(encoding="utf-8")
    yield world
    world.close()
    BASE_TEXT.pop(world.config, None)


def test_a_halted_policy_mails_the_admins_shows_on_the_dashboard_and_removes_nobody(
    alert_world: EntraWorld,
    server: GraphServer,
    smtp_server: Callable[..., SmtpPeer],  # noqa: F811
    tls_files,  # noqa: F811
) -> None:
    world = alert_world
    peer = smtp_server(starttls=True, auth=True)
    _config(world, peer.port, Path(tls_files.ca_file), cap=1)

    first = _run(world)
    plan = first["plan"]["policies"][0]
    assert plan["halted"] and first["authorized"] == 0
    assert plan["counts"] == {"remove_halted": 5}

    # Each admin got one mail, over TLS, after logging in.
    got = peer.recorder.messages
    assert sorted(r for m in got for r in m.rcpt_tos) == sorted(ADMINS)
    assert all(m.tls and m.user == SMTP_USER.encode() for m in got)
    for mail in _mails(peer):
        assert "E3" in mail["Subject"] and "halted by the mass-removal guard" in mail["Subject"]
        body = mail.get_content()
        assert "0 ask(s) and 5 removal(s) in a group of 5 member(s)" in body
        assert "The removal cap per run is 1." in body
        assert "Nothing was asked or removed for this policy" in body
        assert "What to do:" in body and "reclaim usage sources" in body
        assert f"reclaim plan show {first['plan_id']}" in body
        assert f"https://reclaim.corp.example/plans/{first['plan_id']}" in body
        assert SMTP_PASSWORD not in mail.as_string()

    # Nothing left Reclaim for the directory: no DELETE, every member still there.
    assert server.requests.count("DELETE") == 0
    assert all(server.is_member(u, E3_GROUP) for u in E3_MEMBERS)

    # The same halt an hour later is not mailed again; the dashboard says it.
    second = _run(world)
    assert second["plan"]["policies"][0]["halted"]
    assert len(peer.recorder.messages) == 2
    page = anyio.run(_dashboard, world)
    assert 'data-testid="attention-halted"' in page
    assert f'href="/plans/{second["plan_id"]}"' in page
    assert "halted by the mass-removal guard" in page

    # An admin raises the cap: the next run removes, and the dashboard forgets the halt.
    _config(world, peer.port, Path(tls_files.ca_file), cap=50)
    third = _run(world)
    assert not third["plan"]["policies"][0]["halted"]
    assert sorted(s["result"] for s in third["steps"]) == ["removed"] * 5
    assert server.requests.count("DELETE") == 5
    assert 'data-testid="attention-halted"' not in anyio.run(_dashboard, world)
    assert len(peer.recorder.messages) == 2


def test_an_alert_that_cannot_be_mailed_is_logged_and_mailed_at_the_next_cycle(
    alert_world: EntraWorld,
    server: GraphServer,
    smtp_server: Callable[..., SmtpPeer],  # noqa: F811
    tls_files,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = alert_world
    down = free_port()  # nothing listens there: the SMTP server is down
    _config(world, down, Path(tls_files.ca_file), cap=1)
    first = _run(world)
    assert first["plan"]["policies"][0]["halted"]
    assert "halt alert for E3 not mailed" in caplog.text
    assert "connection refused" in caplog.text
    assert SMTP_PASSWORD not in caplog.text

    peer = smtp_server(starttls=True, auth=True)
    _config(world, peer.port, Path(tls_files.ca_file), cap=1)
    _run(world)
    assert sorted(r for m in peer.recorder.messages for r in m.rcpt_tos) == sorted(ADMINS)
    assert server.requests.count("DELETE") == 0
