"""No configured secret ever shows: logs, CLI output, HTTP bodies, the database.

Distinctive values are configured for every credential Reclaim holds (Graph client
secret, LDAP bind password, SMTP password, web signing secret, campaign link key, API
token), and each one is really used, right and wrong, against a real peer:

- Graph: a run whose token request fails (wrong client secret), then Graph sync and a
  removal run against the Graph test server;
- LDAP: ``reclaim ad sync`` against the Samba DC, first with a wrong bind password
  (refused: invalid credentials), then with the service account's real one (bound
  over verified LDAPS, the group read);
- SMTP: campaign asks through aiosmtpd, which offers STARTTLS and requires a login,
  first with a wrong password (refused with 535), then with the right one (delivered);
- plus ``config check``, failing commands and web requests including errors.

Everything Reclaim emitted is collected (DEBUG logs through the JSON formatter and
pytest's caplog, CLI stdout/stderr, HTTP bodies and headers, the mails it sent, the
raw bytes of the SQLite file, every text column on PostgreSQL) and searched for each
secret value, and for the SMTP login as it crosses the wire (AUTH's base64). The
peers in this process log there too (aiosmtpd at DEBUG): none of them may show it either.
"""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import String, Text, inspect, select
from typer.testing import CliRunner

from reclaim.bootstrap import Context
from reclaim.cli import app as cli_app
from reclaim.config import load_settings
from reclaim.ops.logs import JsonFormatter
from reclaim.store.tables import metadata
from reclaim.testing import samba_seed as seed
from reclaim.testing.graph import GraphServer, ManualClock
from reclaim.testing.graph.tls import TlsFiles
from reclaim.testing.samba import SambaDC
from reclaim.web.app import create_app
from reclaim.web.audit import Actor
from reclaim.web.auth.roles import Role
from reclaim.web.auth.tokens import create_token
from reclaim.web.settings import WebSettings
from tests.integration.campaigns.conftest import (  # noqa: F401  (fixtures)
    Recorder,
    free_port,
    tls_files,
)
from tests.integration.conftest import (  # noqa: F401  (fixtures: the Samba DC)
    dc1,
    samba_addresses,
    samba_dc,
    samba_template,
)
from tests.integration.entra.conftest import (  # noqa: F401  (fixtures)
    CLIENT_SECRET,
    E3_GROUP,
    _running_server,
    clock,
    server,
)
from tests.integration.entra.runner_world import SECRET_ENV, build_entra_world, entra_policy

pytestmark = pytest.mark.slow

WRONG_LDAP_PASSWORD = "Ldap-Bind-Pw-7f3c1e9a-SENTINEL"
SMTP_USER = "reclaim-sender"
SMTP_PASSWORD = "Smtp-Pw-b41d2c77-SENTINEL"
WRONG_SMTP_PASSWORD = "Wrong-Smtp-Pw-3e6f90d1-SENTINEL"
WEB_SECRET = "Web-Signing-Secret-5a9e0f12-SENTINEL-" + "w" * 16
LINK_KEY = "Link-Key-0c8d6e4b-SENTINEL-" + "k" * 24
WRONG_GRAPH_SECRET = "Wrong-Graph-Secret-91aa03ef-SENTINEL"
LDAP_PW_ENV = "RECLAIM_TEST_LDAP_PW"
SMTP_PW_ENV = "RECLAIM_TEST_SMTP_PW"

EXTRA = """
ldap:
  hosts: ["{ldap_host}"]
  base_dn: "{base_dn}"
  bind_user: "{bind_user}"
  bind_password: env:RECLAIM_TEST_LDAP_PW
  ca_file: "{ldap_ca}"
smtp:
  host: 127.0.0.1
  port: {smtp_port}
  security: starttls
  username: {smtp_user}
  password: env:RECLAIM_TEST_SMTP_PW
  sender: licenses@corp.example
campaigns:
  base_url: https://reclaim.corp.example
  token_keys: [env:RECLAIM_TEST_LINK_KEY_S]
  quiet_hours: {{start: "00:00", end: "00:00", skip_weekends: false}}
  email: {{ca_file: "{smtp_ca}", rate_per_second: 50, timeout_seconds: 5}}
"""


AD_POLICY = """  - name: AdVisio
    apps: [VISIO.EXE]
    group: {{ad_dn: "{group_dn}"}}
    workflow: onprem_ad
    seat_cost: {{amount: "15"}}
"""


def _check_login(*args: Any) -> AuthResult:
    """aiosmtpd's authenticator(server, session, envelope, mechanism, auth_data)."""
    auth_data = args[-1]
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture
def smtp_peer(tls_files: TlsFiles) -> Iterator[tuple[int, Recorder]]:  # noqa: F811
    """aiosmtpd on loopback: STARTTLS required, then a login with the sentinel password."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert_file, tls_files.key_file)
    recorder = Recorder()
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        server_hostname="mx.test.invalid",
        tls_context=context,
        require_starttls=True,
        authenticator=_check_login,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield port, recorder
    finally:
        controller.stop()


class Capture(logging.Handler):
    """Every record at DEBUG, rendered by the JSON formatter (message, args, exc_info)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _db_text(ctx: Context, db_url: str) -> str:
    if db_url.startswith("sqlite"):
        return Path(db_url.removeprefix("sqlite:///")).read_bytes().decode("latin-1")
    chunks: list[str] = []
    with ctx.engine.connect() as conn:
        for table in metadata.sorted_tables:
            cols = [c for c in table.columns if isinstance(c.type, (String, Text))]
            if cols and inspect(conn).has_table(table.name):
                chunks += [str(v) for row in conn.execute(select(*cols)) for v in row]
    return "\n".join(chunks)


async def _web_requests(ctx: Context, api_token: str) -> list[str]:
    app = create_app(ctx, web_settings=WebSettings(secret=WEB_SECRET, max_upload_bytes=1 << 16))
    out: list[str] = []
    auth = {"Authorization": f"Bearer {api_token}"}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for method, path, kw in [
            ("GET", "/api/v1/whoami", {"headers": auth}),
            ("GET", "/api/v1/policies", {"headers": auth}),
            ("GET", "/api/v1/policies/nope", {"headers": auth}),
            ("GET", "/api/v1/cases?limit=99999", {"headers": auth}),
            ("GET", "/api/v1/cases?cursor=garbage", {"headers": auth}),
            (
                "POST",
                "/api/v1/usage",
                {"headers": auth | {"Content-Type": "text/csv"}, "content": b"x" * 70000},
            ),
            (
                "POST",
                "/api/v1/usage",
                {"headers": auth | {"Content-Type": "text/csv"}, "content": b"\xff\xfe\x00bad"},
            ),
            ("GET", "/api/v1/whoami", {"headers": {"Authorization": f"Bearer {api_token}x"}}),
            ("GET", "/login", {}),
            ("POST", "/login", {"data": {"email": "a@b.c", "password": WRONG_LDAP_PASSWORD}}),
            ("GET", "/respond/r1.abc.def", {}),
            ("GET", "/readyz", {}),
            ("GET", "/metrics", {"headers": auth}),
        ]:
            r = await c.request(method, path, **cast(dict[str, Any], kw))
            out.append(f"{r.status_code} {dict(r.headers)} {r.text}")
    return out


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli_app, list(args))
    return f"exit={result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"


def test_no_secret_appears_anywhere(
    server: GraphServer,  # noqa: F811
    clock: ManualClock,  # noqa: F811
    dc1: SambaDC,  # noqa: F811
    smtp_peer: tuple[int, Recorder],
    tls_files: TlsFiles,  # noqa: F811
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import anyio

    ldap_password = dc1.template.service_password  # the service account's real password
    smtp_port, mailbox = smtp_peer
    for name, value in (
        (SECRET_ENV, CLIENT_SECRET),
        (LDAP_PW_ENV, ldap_password),
        (SMTP_PW_ENV, SMTP_PASSWORD),
        ("RECLAIM_TEST_LINK_KEY_S", LINK_KEY),
        ("RECLAIM_WEB_SECRET", WEB_SECRET),
        ("RECLAIM_LOG_LEVEL", "DEBUG"),
        ("RECLAIM_LOG_FORMAT", "json"),
    ):
        monkeypatch.setenv(name, value)
    capture = Capture()
    root, ours = logging.getLogger(), logging.getLogger("reclaim")
    caplog.set_level(logging.DEBUG)
    root.addHandler(capture)
    ours.addHandler(capture)
    emitted: list[str] = []
    try:
        world = build_entra_world(
            server,
            clock,
            db_url,
            tmp_path,
            entra_policy("E3", E3_GROUP, ask=False),
            entra_policy("Ask", E3_GROUP, ask=True),
        )
        config = world.config
        extra = EXTRA.format(
            ldap_host=dc1.address,
            base_dn=seed.BASE_DN,
            bind_user=seed.SERVICE_ACCOUNT.upn,
            ldap_ca=dc1.ca_file,
            smtp_port=smtp_port,
            smtp_user=SMTP_USER,
            smtp_ca=tls_files.ca_file,
        )
        ad_policy = AD_POLICY.format(group_dn=seed.LIC_VISIO.dn)
        text = config.read_text().replace("policies:\n", "policies:\n" + ad_policy, 1)
        config.write_text(text + extra, encoding="utf-8")
        load_settings(config, check_secrets=True)  # the config is valid with all of them
        c = str(config)
        # A wrong Graph secret first: the token request fails (an error path with a secret).
        monkeypatch.setenv(SECRET_ENV, WRONG_GRAPH_SECRET)
        failed_run = _cli("run", "--policy", "E3", "--json", "-c", c)
        monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
        # LDAP: a wrong bind password is refused by the DC, then the real one binds.
        monkeypatch.setenv(LDAP_PW_ENV, WRONG_LDAP_PASSWORD)
        failed_bind = _cli("ad", "sync", "-c", c)
        monkeypatch.setenv(LDAP_PW_ENV, ldap_password)
        ad_sync = _cli("ad", "sync", "-c", c)
        # SMTP: the server refuses the wrong password (535), then takes the right one.
        monkeypatch.setenv(SMTP_PW_ENV, WRONG_SMTP_PASSWORD)
        refused_login = _cli("run", "--policy", "Ask", "--json", "-c", c)
        refused_mails = len(mailbox.messages)
        monkeypatch.setenv(SMTP_PW_ENV, SMTP_PASSWORD)
        asked = _cli("run", "--policy", "Ask", "--json", "-c", c)
        emitted += [
            failed_run,
            failed_bind,
            ad_sync,
            refused_login,
            asked,
            _cli("config", "check", "-c", c),
            _cli("run", "--policy", "E3", "--json", "-c", c),
            _cli("cases", "show", "999999", "-c", c),
            _cli("run", "--policy", "no-such-policy", "-c", c),
            _cli("tokens", "create", "--role", "viewer", "--name", "leak-check", "-c", c),
        ]
        with world.ctx.engine.begin() as conn:
            _, api_token = create_token(
                conn, name="t", role=Role.ADMIN, actor=Actor("t", "system"), now=0
            )
        emitted += anyio.run(_web_requests, world.ctx, api_token)
        monkeypatch.setenv(LDAP_PW_ENV, "")
        unresolved = _cli("config", "check", "-c", c)  # a secret that does not resolve
        emitted += [unresolved]
        emitted.append(_db_text(world.ctx, db_url))
        world.close()
    finally:
        root.removeHandler(capture)
        ours.removeHandler(capture)
    mails = [m.data.decode("utf-8", "replace") for m in mailbox.messages]
    emitted += [*capture.lines, caplog.text, *mails]
    everything = "\n".join(emitted)
    assert len(capture.lines) > 20, "the flow logged almost nothing: the scan would prove little"
    # The flow really went down the paths it claims (else the scan proves little).
    assert "AADSTS7000215" in failed_run  # wrong Graph secret refused by the token endpoint
    assert not failed_bind.startswith("exit=0") and "credentials rejected" in failed_bind
    assert "exit=0" in ad_sync and "AdVisio: 4 members" in ad_sync  # bound and read
    assert "535" in refused_login and refused_mails == 0  # login refused, nothing sent
    assert mails and all(m.user == SMTP_USER.encode() and m.tls for m in mailbox.messages)
    assert '"asked"' in asked
    assert '"removed"' in everything  # the successful run removed seats over Graph
    assert "ldap.bind_password" in unresolved
    plain = base64.b64encode(f"\0{SMTP_USER}\0{SMTP_PASSWORD}".encode()).decode()
    secrets = {
        "Graph client secret": CLIENT_SECRET,
        "wrong Graph client secret": WRONG_GRAPH_SECRET,
        "LDAP bind password": ldap_password,
        "wrong LDAP bind password": WRONG_LDAP_PASSWORD,
        "SMTP password": SMTP_PASSWORD,
        "wrong SMTP password": WRONG_SMTP_PASSWORD,
        "SMTP AUTH PLAIN (base64)": plain,
        "SMTP password (base64, AUTH LOGIN)": base64.b64encode(SMTP_PASSWORD.encode()).decode(),
        "web signing secret": WEB_SECRET,
        "campaign link key": LINK_KEY,
        "API token": api_token,
    }
    leaked = {
        name: _where(everything, value) for name, value in secrets.items() if value in everything
    }
    assert not leaked, leaked


def _where(text: str, value: str) -> str:
    at = text.index(value)
    return text[max(0, at - 200) : at + 50]
