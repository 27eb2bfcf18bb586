"""Pages: what they show, escaping of user data, the token admin page, CSV export."""

from __future__ import annotations

import csv
import io

import pytest

from reclaim.web import audit
from reclaim.web.audit import Actor
from tests.integration.web.conftest import WebEnv, csrf_from, sign_in

pytestmark = pytest.mark.anyio

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


async def test_dashboard_shows_imported_numbers(web: WebEnv, client) -> None:
    csv_body = b"user,app,date\nann@corp.example,VISIO.EXE,2026-11-01\nbob@corp.example,Miro,bad\n"
    r = await client.post(
        "/api/v1/usage?source=laptops",
        content=csv_body,
        headers=web.auth("ingest") | {"Content-Type": "text/csv"},
    )
    assert r.status_code == 200
    await sign_in(client)
    page = (await client.get("/")).text
    assert 'data-testid="events-accepted">1<' in page
    assert 'data-testid="events-rejected">1<' in page
    assert 'data-testid="policies-count">2<' in page
    assert ">laptops<" in page and "Visio" in page and "Miro" in page
    assert 'data-testid="savings-Visio"' in page and 'data-testid="funnel"' in page


async def test_user_data_is_escaped_everywhere(web: WebEnv, client) -> None:
    r = await client.post(
        "/api/v1/usage",
        params={"source": XSS},
        content=b"user,app,date\nann@corp.example,VISIO.EXE,2026-11-01\n",
        headers=web.auth("ingest") | {"Content-Type": "text/csv"},
    )
    assert r.status_code == 200
    with web.ctx.engine.begin() as conn:
        audit.record(
            conn,
            Actor(name=XSS, kind="system"),
            "test.note",
            now=int(web.clock().timestamp()),
            target=XSS,
            detail={"note": XSS},
        )
    await sign_in(client)
    for path in ("/", "/audit"):
        page = (await client.get(path)).text
        assert "<script>alert" not in page and "<img src=x" not in page, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page, path


async def test_policies_page(web: WebEnv, client) -> None:
    await sign_in(client)
    page = (await client.get("/policies")).text
    assert "VISIO.EXE, Microsoft Visio" in page
    assert "0f1e2d3c-0000-4000-8000-000000000001" in page
    assert "60 days" in page and "8.00 EUR" in page


async def test_audit_page_pages_on_the_server(web: WebEnv, client) -> None:
    now = int(web.clock().timestamp())
    with web.ctx.engine.begin() as conn:
        for i in range(60):
            audit.record(
                conn, Actor(name="bot", kind="system"), "test.tick", now=now, target=str(i)
            )
    await sign_in(client)
    first = (await client.get("/audit?action=test.tick")).text
    assert first.count("<code>test.tick</code>") == 50
    next_url = first.split('rel="next" data-testid="next-page"')[0].rsplit('href="', 1)[1]
    next_url = next_url.split('"')[0].replace("&amp;", "&")
    second = (await client.get(next_url)).text
    assert second.count("<code>test.tick</code>") == 10
    assert 'data-testid="next-page"' not in second


async def test_audit_csv_export_defuses_formulas(web: WebEnv, client) -> None:
    with web.ctx.engine.begin() as conn:
        audit.record(
            conn,
            Actor(name="=HYPERLINK(1)", kind="system"),
            "test.csv",
            now=int(web.clock().timestamp()),
            target="+cmd",
        )
    await sign_in(client)
    response = await client.get("/audit/export.csv?action=test.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    assert rows[0]["actor"] == "'=HYPERLINK(1)" and rows[0]["target"] == "'+cmd"


async def test_admin_creates_a_token_shown_once_and_revokes_it(web: WebEnv, client) -> None:
    await sign_in(client)
    page = await client.get("/admin/tokens")
    created = await client.post(
        "/admin/tokens",
        data={"name": "laptop agent", "role": "ingest", "csrf_token": csrf_from(page.text)},
    )
    assert created.status_code == 200
    secret = created.text.split('<code class="secret">')[1].split("<")[0]
    assert secret.startswith("rcl_")
    who = await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
    assert who.json() == {"kind": "token", "name": who.json()["name"], "role": "ingest"}
    listing = (await client.get("/admin/tokens")).text
    assert secret not in listing and "laptop agent" in listing  # shown once only
    token_id = listing.split("laptop agent")[0].rsplit("<td>", 2)[1].split("<")[0]
    revoked = await client.post(
        f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf_from(listing)}
    )
    assert revoked.status_code == 303
    gone = await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
    assert gone.status_code == 401
    actions = (await client.get("/api/v1/audit?action=token.", headers=web.auth("admin"))).json()
    latest = [(e["action"], e["actor"], e["actor_kind"]) for e in actions["items"][:2]]
    assert latest == [
        ("token.revoke", "admin@corp.example", "account"),
        ("token.create", "admin@corp.example", "account"),
    ]


async def test_token_form_without_csrf_or_with_a_bad_role(web: WebEnv, client) -> None:
    await sign_in(client)
    no_csrf = await client.post("/admin/tokens", data={"name": "x", "role": "viewer"})
    assert no_csrf.status_code == 403
    page = await client.get("/admin/tokens")
    bad_role = await client.post(
        "/admin/tokens", data={"name": "x", "role": "root", "csrf_token": csrf_from(page.text)}
    )
    assert bad_role.status_code == 400 and "unknown role" in bad_role.text
