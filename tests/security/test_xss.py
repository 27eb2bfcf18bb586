"""XSS: every user-controlled field comes back escaped on every page that shows it.

Payloads go in through the ways they really arrive: the configuration (policy and app
names), a usage upload (the source name), cases (the person's UPN, the verdict reason),
the operator's answer form (their reason), the token form (token name), the audit log
(details) and the query string (filters echoed into the search boxes). Each page is
then read as HTML: the payload must never appear as markup, and where the page shows
the field, its escaped form must be there (so the test cannot pass by the field simply
not being shown).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from reclaim.bootstrap import Context
from reclaim.config import Settings
from reclaim.domain.policy import GroupRef, Policy, SeatCost, Workflow
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.policies import sync_policies
from reclaim.store.web_tables import accounts
from reclaim.web import audit
from reclaim.web.app import create_app
from reclaim.web.audit import Actor
from reclaim.web.auth.accounts import create_account
from reclaim.web.auth.roles import Role
from reclaim.web.auth.tokens import create_token
from reclaim.web.settings import WebSettings
from tests.integration.web.case_seed import seed_case
from tests.integration.web.conftest import (
    ADMIN_EMAIL,
    START,
    TEST_SECRET,
    ManualClock,
    admin_hash,
    client_for,
    csrf_from,
    sign_in,
)

pytestmark = pytest.mark.anyio

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
# Jinja2's autoescape spelling of each payload.
SCRIPT_ESC = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMG_ESC = "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
RAW = ("<script>alert(1)", "<img src=x onerror", '"><img')

POLICY = 'Visio"><img src=x onerror=alert(1)>'  # policy names may not hold "/"
POLICY_ESC = "Visio" + IMG_ESC
APP = f"VISIO{SCRIPT}"
UPN = f"{SCRIPT}@corp.example"


def _build(tmp_path: Path) -> tuple[object, Context, ManualClock]:
    clock = ManualClock()
    engine = make_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    policy = Policy(
        name=POLICY,
        apps=(APP,),
        group=GroupRef(entra_id="0f1e2d3c-0000-4000-8000-000000000001"),
        workflow=Workflow.ENTRA_ID,
        seat_cost=SeatCost(amount=Decimal("15.00")),
    )
    settings = Settings(data_dir=str(tmp_path / "data"), policies=(policy,))
    now = int(clock().timestamp())
    with engine.begin() as conn:
        sync_policies(conn, settings.policies, now=now)
        admin = create_account(
            conn,
            email=ADMIN_EMAIL,
            role=Role.ADMIN,
            password=None,
            actor=Actor("t", "system"),
            now=now,
        )
        conn.execute(
            update(accounts).where(accounts.c.id == admin.id).values(password_hash=admin_hash())
        )
    ctx = Context(settings=settings, engine=engine)
    app = create_app(
        ctx, now=clock, web_settings=WebSettings(secret=TEST_SECRET, max_upload_bytes=1 << 20)
    )
    return app, ctx, clock


def _assert_safe(page: httpx.Response, where: str, *shown: str) -> None:
    assert page.status_code == 200, (where, page.status_code)
    for raw in RAW:
        assert raw not in page.text, f"{where}: unescaped {raw!r}"
    for escaped in shown:
        assert escaped in page.text, f"{where}: {escaped!r} not shown"


async def test_payloads_come_back_escaped_on_every_page(tmp_path: Path) -> None:
    app, ctx, clock = _build(tmp_path)
    now = int(clock().timestamp())
    with ctx.engine.begin() as conn:
        _, ingest = create_token(
            conn, name="feed", role=Role.INGEST, actor=Actor("t", "system"), now=now
        )
        audit.record(
            conn,
            Actor(name=SCRIPT, kind="system"),
            "test.note",
            now=now,
            target=IMG,
            detail={"note": SCRIPT},
        )
    case_id = seed_case(ctx.engine, to="asked", user=UPN, policy=POLICY, at=START, reason=SCRIPT)
    async with client_for(app) as c:  # type: ignore[arg-type]
        upload = await c.post(
            "/api/v1/usage",
            params={"source": SCRIPT},
            content=f"user,app,date\nann@corp.example,{APP},2026-11-01\n".encode(),
            headers={"Authorization": f"Bearer {ingest}", "Content-Type": "text/csv"},
        )
        assert upload.status_code == 200, upload.text
        assert (await sign_in(c)).status_code == 303
        tokens_page = await c.get("/admin/tokens")
        made = await c.post(
            "/admin/tokens",
            data={"name": SCRIPT, "role": "viewer", "csrf_token": csrf_from(tokens_page.text)},
        )
        assert made.status_code == 200, made.text
        _assert_safe(made, "token created", SCRIPT_ESC)
        case_page = await c.get(f"/cases/{case_id}")
        answered = await c.post(
            f"/cases/{case_id}/answer",
            data={"choice": "keep", "reason": IMG, "csrf_token": csrf_from(case_page.text)},
        )
        assert answered.status_code == 303, answered.text

        pages = {
            "/": [POLICY_ESC, SCRIPT_ESC],  # policy name, usage source name
            "/policies": [POLICY_ESC, "VISIO" + SCRIPT_ESC],
            "/cases": [POLICY_ESC, SCRIPT_ESC],  # UPN
            f"/cases/{case_id}": [POLICY_ESC, SCRIPT_ESC, IMG_ESC],  # UPN + reasons
            "/audit": [SCRIPT_ESC],  # actor, detail, token name
            "/admin/tokens": [SCRIPT_ESC],
            "/plans": [],
            "/campaigns": [],
            "/control": [],
            # Filters echoed into the search boxes.
            f"/cases?user={httpx.QueryParams({'u': IMG})['u']}": [IMG_ESC],
            "/audit?" + str(httpx.QueryParams({"actor": IMG, "action": SCRIPT})): [
                IMG_ESC,
                SCRIPT_ESC,
            ],
        }
        for path, shown in pages.items():
            _assert_safe(await c.get(path), path, *shown)
        # Data downloads are not HTML: they are served as such, never as text/html.
        for path in ("/cases.csv", "/audit/export.csv", "/savings.csv"):
            r = await c.get(path)
            assert r.status_code == 200 and not r.headers["content-type"].startswith("text/html"), (
                path
            )
        for path in ("/charts/seats.svg", "/charts/savings.svg"):
            r = await c.get(path)
            assert r.status_code == 200
            for raw in RAW:
                assert raw not in r.text, path
        # The pages forbid inline script anyway (the second wall).
        csp = (await c.get("/")).headers["content-security-policy"]
        assert "script-src 'self'" in csp or "default-src 'self'" in csp
        assert "unsafe-inline" not in csp.split("script-src")[-1].split(";")[0]
