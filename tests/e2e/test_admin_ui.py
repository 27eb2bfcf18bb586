"""The admin UI in a real browser: sign in, dashboard numbers, pages, CSRF, escaping."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer, screenshot

XSS_SOURCE = '<img src=x onerror="window.__xss=1">'
XSS_APP = "<script>window.__xss=2</script>Visio"


@pytest.fixture(scope="module")
def fed(live_server: LiveServer) -> LiveServer:
    """Usage uploaded through the API once for the module: 3 good rows, 1 bad."""
    headers = {"Authorization": f"Bearer {live_server.ingest_token}"}
    csv_body = (
        "user,app,date,seconds\n"
        "ann@corp.example,VISIO.EXE,2026-11-01,600\n"
        "bob@corp.example,VISIO.EXE,2026-11-01,60\n"
        "cy@corp.example,Miro,not-a-date,1\n"
    )
    r = httpx.post(
        f"{live_server.url}/api/v1/usage?source=laptops",
        content=csv_body,
        headers=headers | {"Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{live_server.url}/api/v1/usage",
        params={"source": XSS_SOURCE},
        json=[{"user": "dee@corp.example", "app": XSS_APP, "date": "2026-11-01"}],
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return live_server


def sign_in(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/")
    assert "/login" in page.url  # anonymous: sent to the sign-in page
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")


def test_sign_in_and_dashboard_numbers(page: Any, fed: LiveServer) -> None:
    page.goto(f"{fed.url}/login")
    screenshot(page, "login")
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", "not the password!")
    page.click("button[type=submit]")
    assert "wrong e-mail address or password" in page.inner_text("[data-testid=login-error]")
    sign_in(page, fed)
    assert page.inner_text("[data-testid=who]").startswith(ADMIN_EMAIL)
    assert page.inner_text("[data-testid=events-accepted]") == "3"
    assert page.inner_text("[data-testid=events-rejected]") == "1"
    assert page.inner_text("[data-testid=users-seen]") == "3"
    assert page.inner_text("[data-testid=policies-count]") == "1"
    assert "laptops" in page.inner_text("main")
    screenshot(page, "dashboard")


def test_main_pages_render(page: Any, fed: LiveServer) -> None:
    sign_in(page, fed)
    page.click("nav >> text=Policies")
    assert "0f1e2d3c-0000-4000-8000-000000000001" in page.inner_text("main")
    assert "next run" in page.inner_text("[data-testid=policy-card]")
    screenshot(page, "policies")
    page.click("[data-testid=policy-card] h2 a")
    assert page.inner_text("h1").startswith("Visio")
    assert page.inner_text("[data-testid=preview-total]") == "0"
    screenshot(page, "policy")
    page.click("nav >> text=Audit log")
    table = page.inner_text("[data-testid=audit-table]")
    assert "auth.login" in table and "usage.upload" in table
    screenshot(page, "audit-log")
    page.click("nav >> text=API tokens")
    assert "e2e-ingest" in page.inner_text("main")
    screenshot(page, "api-tokens")


def test_payloads_are_shown_as_text_never_run(page: Any, fed: LiveServer) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_in(page, fed)
    sources = page.locator("[data-testid=source-name]").all_inner_texts()
    assert XSS_SOURCE in sources  # the markup is shown as text
    page.goto(f"{fed.url}/audit?action=usage.upload")
    assert XSS_SOURCE in page.inner_text("[data-testid=audit-table]")
    assert page.evaluate("window.__xss") is None and dialogs == []
    assert page.locator("main img").count() == 0  # no element was injected
    screenshot(page, "escaped-payload")


def test_form_post_without_csrf_token_is_rejected(page: Any, fed: LiveServer) -> None:
    sign_in(page, fed)
    page.goto(f"{fed.url}/admin/tokens")
    # The page's own form, minus its CSRF field: what a forged cross-site form amounts to.
    page.evaluate(
        "document.querySelector('form[action=\"/admin/tokens\"] input[name=csrf_token]').remove()"
    )
    page.fill("input[name=name]", "forged")
    with page.expect_response(re.compile(r"/admin/tokens$")) as caught:
        page.click("form[action='/admin/tokens'] button[type=submit]")
    assert caught.value.status == 403
    assert "CSRF" in page.inner_text("body")
    screenshot(page, "csrf-rejected")
    # The same with the browser's cookies but no token at all (page.request shares them).
    direct = page.request.post(f"{fed.url}/admin/tokens", form={"name": "forged", "role": "admin"})
    assert direct.status == 403
    page.goto(f"{fed.url}/admin/tokens")
    assert "forged" not in page.inner_text("main")  # nothing was created
    # With its token the same form works, and shows the new token once.
    page.fill("input[name=name]", "made in the browser")
    page.select_option("select[name=role]", "viewer")
    page.click("form[action='/admin/tokens'] button[type=submit]")
    assert page.inner_text("[data-testid=new-token] code").startswith("rcl_")


def test_sign_out(page: Any, fed: LiveServer) -> None:
    sign_in(page, fed)
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r"/login$"))
    page.goto(f"{fed.url}/audit")
    assert "/login" in page.url
