"""Browser tests of the operator's pages: dashboard against ``reclaim report``, plans,
cases (restore, answer for a user), the kill switch, CSRF and escaping.

The app runs under uvicorn on a loopback port with its own SQLite store; restores go
to the recording directory (the test peer of Reclaim's own directory port), so the
test can see the add that was sent. Screenshots land in test-output/screenshots/.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from reclaim.bootstrap import Context
from reclaim.cli import app as cli_app
from reclaim.config import parse_settings
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.policies import sync_policies
from reclaim.testing.recording_directory import RecordingDirectory
from reclaim.web.app import create_app
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import create_account
from reclaim.web.auth.roles import Role
from reclaim.web.settings import WebSettings
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, screenshot
from tests.integration.web.case_seed import seed_case

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
CONFIG = """\
data_dir: {data}
database: {{url: 'sqlite:///{db}'}}
policies:
  - name: Visio
    apps: [VISIO.EXE]
    group: {{entra_id: 0f1e2d3c-0000-4000-8000-000000000001}}
    workflow: entra_id
    seat_cost: {{amount: "15", currency: USD}}
    renewal_date: 2027-03-01
  - name: Miro
    apps: [Miro]
    group: {{name: Miro users}}
    workflow: manual
    seat_cost: {{amount: "8", currency: EUR}}
"""


@dataclass
class Site:
    url: str
    config: Path
    ctx: Context
    directory: RecordingDirectory
    cases: dict[str, int]


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("e2e-cases")
    db = tmp / "reclaim.db"
    config = tmp / "reclaim.yaml"
    config.write_text(CONFIG.format(data=tmp / "data", db=db))
    settings = parse_settings(config.read_text(), source=str(config))
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with engine.begin() as conn:
        sync_policies(conn, settings.policies, now=int(now.timestamp()))
        create_account(
            conn,
            email=ADMIN_EMAIL,
            role=Role.ADMIN,
            password=ADMIN_PASSWORD,
            actor=Actor("e2e", "system"),
            now=int(now.timestamp()),
        )
    earlier = now - dt.timedelta(days=3)
    cases = {
        "removed": seed_case(engine, to="removed", user="ann@corp.example", at=earlier),
        "asked": seed_case(engine, to="asked", user="bob@corp.example", at=earlier),
        "failed": seed_case(engine, to="failed", user="cy@corp.example", at=earlier),
    }
    for n in range(4):
        seed_case(engine, to="removed", user=f"gone{n}@corp.example", policy="Miro", at=earlier)
    directory = RecordingDirectory()
    ctx = Context(settings=settings, engine=engine)
    web = create_app(
        ctx, web_settings=WebSettings(secret="e2e-" + "c" * 40), directories=lambda _p: directory
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(web, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{port}", config, ctx, directory, cases)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        engine.dispose()


def sign_in(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/login")
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/")


def cli_report(site: Site) -> dict[str, Any]:
    result = CliRunner().invoke(cli_app, ["report", "--json", "--config", str(site.config)])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_dashboard_numbers_equal_the_report_cli(page: Any, site: Site) -> None:
    sign_in(page, site)
    report = cli_report(site)
    page.goto(f"{site.url}/")
    for cur, totals in report["totals"].items():
        for kind, period in (
            ("realized", "monthly"),
            ("realized", "yearly"),
            ("potential", "yearly"),
        ):
            shown = page.get_by_test_id(f"{kind}-{period}-{cur}").inner_text()
            assert shown == f"{float(totals[kind][period]):,.2f}", (cur, kind, period)
    for row in report["policies"]:
        line = page.get_by_test_id(f"savings-{row['policy']}")
        assert line.get_by_test_id("seats-reclaimed").inner_text() == str(row["seats_reclaimed"])
        assert line.get_by_test_id("seats-pending").inner_text() == str(row["seats_pending"])
    assert page.get_by_test_id("reclaimed-all").inner_text() == "5"
    assert page.get_by_test_id("attention-failed").is_visible()
    assert page.get_by_test_id("chart-seats").evaluate("img => img.naturalWidth") > 0
    screenshot(page, "dashboard-with-cases")


def test_approve_a_plan(page: Any, site: Site) -> None:
    sign_in(page, site)
    page.goto(f"{site.url}/plans")
    page.get_by_test_id("plan-create").locator("button").click()
    page.wait_for_url(f"{site.url}/plans/*")
    assert page.get_by_test_id("plan-status").inner_text() in ("proposed", "awaiting_approval")
    screenshot(page, "plan")
    page.get_by_test_id("approve-form").locator("input[name=note]").fill("looked fine")
    page.get_by_test_id("approve-form").locator("button").click()
    page.wait_for_url("**done=approved")
    assert page.get_by_test_id("plan-status").inner_text() == "approved"
    page.goto(f"{site.url}/plans")
    screenshot(page, "plans")


def test_open_a_case_and_restore_it(page: Any, site: Site) -> None:
    sign_in(page, site)
    page.goto(f"{site.url}/cases?state=removed&policy=Visio")
    screenshot(page, "cases")
    page.get_by_test_id("case-row").first.locator("a").first.click()
    page.wait_for_url(f"{site.url}/cases/{site.cases['removed']}")
    page.get_by_test_id("restore-form").locator("input[name=reason]").fill("needed for a project")
    page.get_by_test_id("restore-form").locator("button").click()
    page.wait_for_url("**done=restored")
    assert "restored" in page.get_by_test_id("case-state").inner_text()
    assert [(w["action"], w["user"]) for w in site.directory.writes()] == [
        ("add", "ann@corp.example")
    ]
    screenshot(page, "case-restored")


def test_answer_for_a_user_shows_their_reason_escaped(page: Any, site: Site) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:  # an alert() from injected markup would land here
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_in(page, site)
    page.goto(f"{site.url}/cases/{site.cases['asked']}")
    form = page.get_by_test_id("answer-form")
    form.locator("select[name=choice]").select_option("release")
    form.locator("input[name=reason]").fill(XSS)
    form.locator("button").click()
    page.wait_for_url("**done=answered")
    assert "answered_release" in page.get_by_test_id("case-state").inner_text()
    history = page.get_by_test_id("history").inner_text()
    assert XSS in history  # shown as text...
    assert "recorded by admin@corp.example" in history
    assert page.locator("main script").count() == 0  # ...never as markup
    assert page.locator("img[src=x]").count() == 0
    assert dialogs == []
    screenshot(page, "case-answered")


def test_a_form_post_without_csrf_token_is_rejected(page: Any, site: Site) -> None:
    sign_in(page, site)
    response = page.request.post(f"{site.url}/control/pause", form={"reason": "no token"})
    assert response.status == 403
    page.goto(f"{site.url}/control")
    assert "Running" in page.get_by_test_id("control-state").inner_text()
    screenshot(page, "kill-switch")


def test_campaigns_page(page: Any, site: Site) -> None:
    sign_in(page, site)
    page.goto(f"{site.url}/campaigns")
    assert page.get_by_test_id("campaigns-table").is_visible()
    screenshot(page, "campaigns")
