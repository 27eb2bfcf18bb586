"""XSS in a real browser: the payload-laden pages open in Chromium and no script runs.

The server-side assertions are in test_xss.py; this is the browser's word for it:
no ``alert()`` dialog fires and no injected element exists on any page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reclaim.web import audit
from reclaim.web.audit import Actor
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.integration.campaigns.live import bind_loopback, serve
from tests.integration.web.case_seed import seed_case
from tests.integration.web.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, START

from .test_xss import IMG, POLICY, SCRIPT, UPN, _build


@pytest.mark.slow
def test_no_dialog_fires_on_any_page(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/install-test-deps.sh)")
    from playwright.sync_api import sync_playwright

    app, ctx, clock = _build(tmp_path)
    case_id = seed_case(
        ctx.engine, to="answered_keep", user=UPN, policy=POLICY, at=START, reason=IMG
    )
    with ctx.engine.begin() as conn:
        audit.record(
            conn,
            Actor(name=IMG, kind="system"),
            "test.note",
            now=int(clock().timestamp()),
            target=SCRIPT,
            detail={"note": IMG},
        )
    dialogs: list[str] = []
    sock = bind_loopback()
    # Playwright's sync API holds an event loop while open: keep it inside this test.
    with serve(app, sock) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page: Any = browser.new_page()
            page.set_default_timeout(10_000)

            def on_dialog(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.goto(f"{url}/login")
            page.fill("input[name=email]", ADMIN_EMAIL)
            page.fill("input[name=password]", ADMIN_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/")
            for path in (
                "/",
                "/policies",
                "/cases",
                f"/cases/{case_id}",
                "/audit",
                "/admin/tokens",
                "/plans",
                "/campaigns",
                "/control",
                f"/cases?user={IMG}",
                f"/audit?actor={SCRIPT}",
            ):
                page.goto(url + path)
                page.wait_for_load_state("load")
                assert page.locator("img[src=x]").count() == 0, path
                assert page.locator("main script").count() == 0, path
            assert "alert(1)" in page.content()  # the payload is there, as text
        finally:
            browser.close()
    assert dialogs == []
