"""No configured secret ever shows: logs, CLI output, HTTP bodies, the database.

Distinctive values are configured for every credential Reclaim holds (Graph client
secret, LDAP bind password, SMTP password, web signing secret, campaign link key, API
token). Then a representative flow runs: Graph sync and a removal run against the Graph
test server, a run whose token request fails (wrong client secret), ``config check``,
failing commands, AD sync whose bind cannot succeed, web requests including errors.
Everything Reclaim emitted is collected (DEBUG logs through the JSON formatter and
pytest's caplog, CLI stdout/stderr, HTTP bodies and headers, the raw bytes of the SQLite
file, every text column on PostgreSQL) and searched for each secret value.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import String, Text, inspect, select
from typer.testing import CliRunner

from reclaim.bootstrap import Context
from reclaim.cli import app as cli_app
from reclaim.config import load_settings
from reclaim.ops.logs import JsonFormatter
from reclaim.store.tables import metadata
from reclaim.testing.graph import GraphServer, ManualClock
from reclaim.web.app import create_app
from reclaim.web.audit import Actor
from reclaim.web.auth.roles import Role
from reclaim.web.auth.tokens import create_token
from reclaim.web.settings import WebSettings
from tests.integration.entra.conftest import (  # noqa: F401  (fixtures)
    CLIENT_SECRET,
    E3_GROUP,
    _running_server,
    clock,
    server,
)
from tests.integration.entra.runner_world import SECRET_ENV, build_entra_world, entra_policy

pytestmark = pytest.mark.slow

LDAP_PASSWORD = "Ldap-Bind-Pw-7f3c1e9a-SENTINEL"
SMTP_PASSWORD = "Smtp-Pw-b41d2c77-SENTINEL"
WEB_SECRET = "Web-Signing-Secret-5a9e0f12-SENTINEL-" + "w" * 16
LINK_KEY = "Link-Key-0c8d6e4b-SENTINEL-" + "k" * 24
WRONG_GRAPH_SECRET = "Wrong-Graph-Secret-91aa03ef-SENTINEL"

EXTRA = """
ldap:
  hosts: [127.0.0.1:1]
  base_dn: DC=corp,DC=example,DC=test
  bind_user: CORP\\\\svc-reclaim
  bind_password: env:RECLAIM_TEST_LDAP_PW
smtp:
  host: 127.0.0.1
  port: 1
  security: none
  username: reclaim
  password: env:RECLAIM_TEST_SMTP_PW
  sender: licenses@corp.example
campaigns:
  base_url: https://reclaim.corp.example
  token_keys: [env:RECLAIM_TEST_LINK_KEY_S]
"""


AD_POLICY = """  - name: AdVisio
    apps: [VISIO.EXE]
    group: {ad_dn: "CN=Visio users,OU=Groups,DC=corp,DC=example,DC=test"}
    workflow: onprem_ad
    seat_cost: {amount: "15"}
"""


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
            ("POST", "/login", {"data": {"email": "a@b.c", "password": LDAP_PASSWORD}}),
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
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import anyio

    for name, value in (
        (SECRET_ENV, CLIENT_SECRET),
        ("RECLAIM_TEST_LDAP_PW", LDAP_PASSWORD),
        ("RECLAIM_TEST_SMTP_PW", SMTP_PASSWORD),
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
            server, clock, db_url, tmp_path, entra_policy("E3", E3_GROUP, ask=False)
        )
        config = world.config
        text = config.read_text().replace("policies:\n", "policies:\n" + AD_POLICY, 1)
        config.write_text(text + EXTRA, encoding="utf-8")
        load_settings(config, check_secrets=True)  # the config is valid with all of them
        c = str(config)
        # A wrong Graph secret first: the token request fails (an error path with a secret).
        monkeypatch.setenv(SECRET_ENV, WRONG_GRAPH_SECRET)
        failed_run = _cli("run", "--policy", "E3", "--json", "-c", c)
        monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
        emitted += [
            failed_run,
            _cli("config", "check", "-c", c),
            _cli("run", "--policy", "E3", "--json", "-c", c),
            _cli("cases", "show", "999999", "-c", c),
            _cli("run", "--policy", "no-such-policy", "-c", c),
            _cli("ad", "sync", "-c", c),  # the bind cannot succeed: an error path with the password
            _cli("tokens", "create", "--role", "viewer", "--name", "leak-check", "-c", c),
        ]
        with world.ctx.engine.begin() as conn:
            _, api_token = create_token(
                conn, name="t", role=Role.ADMIN, actor=Actor("t", "system"), now=0
            )
        emitted += anyio.run(_web_requests, world.ctx, api_token)
        monkeypatch.setenv("RECLAIM_TEST_LDAP_PW", "")
        unresolved = _cli("config", "check", "-c", c)  # a secret that does not resolve
        emitted += [unresolved]
        emitted.append(_db_text(world.ctx, db_url))
        world.close()
    finally:
        root.removeHandler(capture)
        ours.removeHandler(capture)
    emitted += [*capture.lines, caplog.text]
    everything = "\n".join(emitted)
    assert len(capture.lines) > 20, "the flow logged almost nothing: the scan would prove little"
    # The flow really went down the paths it claims (else the scan proves little).
    assert "AADSTS7000215" in failed_run  # wrong Graph secret refused by the token endpoint
    assert "no domain controller reachable" in everything  # LDAP bind attempted
    assert '"removed"' in everything  # the successful run removed seats over Graph
    assert "ldap.bind_password" in unresolved
    secrets = {
        "Graph client secret": CLIENT_SECRET,
        "wrong Graph client secret": WRONG_GRAPH_SECRET,
        "LDAP bind password": LDAP_PASSWORD,
        "SMTP password": SMTP_PASSWORD,
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
