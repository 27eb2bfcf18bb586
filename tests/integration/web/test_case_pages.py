"""Cases, plans, campaigns and kill-switch pages: filters, paging, forms with CSRF,
escaping of what employees typed, CSV exports and the SVG charts."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import httpx
import pytest
from sqlalchemy import update

from reclaim.store.tables import cases

from .case_seed import seed_case
from .conftest import START, WebEnv, csrf_from, sign_in

pytestmark = pytest.mark.anyio

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


async def test_cases_page_filters_and_pages_on_the_server(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    for n in range(55):
        seed_case(web.ctx.engine, to="asked", user=f"u{n:02d}@corp.example", at=START)
    seed_case(web.ctx.engine, to="failed", user="broken@corp.example", at=START)
    await sign_in(client)
    first = (await client.get("/cases")).text
    assert first.count('data-testid="case-row"') == 50
    nxt = re.search(r'href="([^"]+)" rel="next"', first)
    assert nxt, "a second page link"
    second = (await client.get(nxt.group(1).replace("&amp;", "&"))).text
    assert second.count('data-testid="case-row"') == 6
    failed = (await client.get("/cases?state=failed")).text
    assert failed.count('data-testid="case-row"') == 1 and "broken@corp.example" in failed
    found = (await client.get("/cases?user=U07")).text
    assert found.count('data-testid="case-row"') == 1 and "u07@corp.example" in found
    bad = await client.get("/cases?state=nope", headers={"Accept": "text/html"})
    assert bad.status_code == 400 and "unknown state" in bad.text


async def test_case_page_answer_form_records_the_operator(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    case_id = seed_case(web.ctx.engine, to="asked", at=START)
    await sign_in(client)
    page = (await client.get(f"/cases/{case_id}")).text
    assert 'data-testid="answer-form"' in page and 'data-testid="restore-form"' not in page
    r = await client.post(
        f"/cases/{case_id}/answer",
        data={"choice": "release", "reason": XSS, "csrf_token": csrf_from(page)},
    )
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{case_id}?done=answered"
    after = (await client.get(r.headers["location"])).text
    assert "answered_release" in after
    # What the employee typed is shown, escaped, with who recorded it.
    assert "<script>alert" not in after and "<img src=x" not in after
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in after
    assert "(recorded by admin@corp.example)" in after


async def test_forms_without_the_csrf_token_are_refused(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    case_id = seed_case(web.ctx.engine, to="asked", at=START)
    await sign_in(client)
    for path, data in (
        (f"/cases/{case_id}/answer", {"choice": "keep"}),
        ("/control/pause", {"reason": "x"}),
        ("/plans", {}),
    ):
        r = await client.post(path, data=data)
        assert r.status_code == 403, path
    page = (await client.get(f"/cases/{case_id}")).text
    assert 'data-testid="case-state"><span class="state s-asked">asked' in page
    control = (await client.get("/control")).text
    assert "Running" in control


async def test_viewer_sees_no_action_forms(web: WebEnv, client: httpx.AsyncClient) -> None:
    from reclaim.web.audit import Actor
    from reclaim.web.auth.accounts import create_account
    from reclaim.web.auth.roles import Role

    with web.ctx.engine.begin() as conn:
        create_account(
            conn,
            email="viewer@corp.example",
            role=Role.VIEWER,
            password="viewer password 123",
            actor=Actor("t", "system"),
            now=int(web.clock().timestamp()),
        )
    case_id = seed_case(web.ctx.engine, to="asked", at=START)
    await sign_in(client, "viewer@corp.example", "viewer password 123")
    page = (await client.get(f"/cases/{case_id}")).text
    assert "answer-form" not in page
    r = await client.post(
        f"/cases/{case_id}/answer", data={"choice": "keep", "csrf_token": csrf_from(page)}
    )
    assert r.status_code == 403


async def test_plan_page_approve_with_the_form(web: WebEnv, client: httpx.AsyncClient) -> None:
    await sign_in(client)
    plans = (await client.get("/plans")).text
    made = await client.post("/plans", data={"policy": "Visio", "csrf_token": csrf_from(plans)})
    assert made.status_code == 303
    page = (await client.get(made.headers["location"])).text
    assert 'data-testid="approve-form"' in page and 'data-testid="cap"' in page
    plan_path = made.headers["location"]
    r = await client.post(
        f"{plan_path}/approve", data={"note": "ok", "csrf_token": csrf_from(page)}
    )
    assert r.status_code == 303
    after = (await client.get(r.headers["location"])).text
    assert 'data-testid="plan-status">approved' in after and "approve-form" not in after


async def test_pause_and_resume_from_the_page(web: WebEnv, client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = (await client.get("/control")).text
    await client.post("/control/pause", data={"reason": "audit", "csrf_token": csrf_from(page)})
    paused = (await client.get("/control")).text
    assert "Paused" in paused and "Resume" in paused
    dash = (await client.get("/")).text
    assert 'data-testid="attention-paused"' in dash
    await client.post("/control/resume", data={"csrf_token": csrf_from(paused)})
    assert "Running" in (await client.get("/control")).text


async def test_dashboard_attention_and_campaigns(web: WebEnv, client: httpx.AsyncClient) -> None:
    e = web.ctx.engine
    seed_case(e, to="failed", user="f@corp.example", at=START)
    seed_case(e, to="answered_keep", user="k@corp.example", at=START)
    seed_case(e, to="removed", user="r@corp.example", at=START)
    await sign_in(client)
    dash = (await client.get("/")).text
    assert 'data-testid="attention-failed"' in dash and "1 failed case(s)" in dash
    assert 'data-testid="reclaimed-month">1<' in dash
    assert 'data-testid="realized-monthly-USD">15.00<' in dash
    camp = (await client.get("/campaigns")).text
    assert 'data-testid="c-sent">3<' in camp and 'data-testid="c-answered">3<' in camp


async def test_charts_are_svg_images_with_their_own_csp(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    seed_case(web.ctx.engine, to="removed", at=START - dt.timedelta(days=31))
    await sign_in(client)
    for path in ("/charts/seats.svg", "/charts/savings.svg"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("image/svg+xml")
        assert (
            r.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
        )
        assert r.text.startswith("<svg") and "pygal" in r.text
    assert "Visio" in (await client.get("/charts/seats.svg")).text


async def test_cases_and_savings_csv(web: WebEnv, client: httpx.AsyncClient) -> None:
    case_id = seed_case(web.ctx.engine, to="removed", user="ann@corp.example", at=START)
    with web.ctx.engine.begin() as conn:  # a reason that a spreadsheet would run
        conn.execute(update(cases).where(cases.c.id == case_id).values(reason="=HYPERLINK(1)"))
    await sign_in(client)
    r = await client.get("/cases.csv?state=removed")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["id"], x["user"], x["state"]) for x in rows] == [
        (str(case_id), "ann@corp.example", "removed")
    ]
    assert rows[0]["reason"] == "'=HYPERLINK(1)"
    savings = list(csv.DictReader(io.StringIO((await client.get("/savings.csv")).text)))
    visio = next(x for x in savings if x["policy"] == "Visio")
    assert (visio["seats_reclaimed"], visio["realized_monthly"]) == ("1", "15.00")


async def test_dashboard_follows_changes_to_cases(web: WebEnv, client: httpx.AsyncClient) -> None:
    # The dashboard's figures are cached by a fingerprint of the data: a new removal
    # and an answer must both show on the next view, not a stale copy.
    await sign_in(client)
    first = (await client.get("/")).text
    assert 'data-testid="reclaimed-all">0<' in first
    seed_case(web.ctx.engine, to="removed", user="new@corp.example", at=START)
    second = (await client.get("/")).text
    assert 'data-testid="reclaimed-all">1<' in second
    assert 'data-testid="realized-monthly-USD">15.00<' in second
    asked = seed_case(web.ctx.engine, to="asked", user="q@corp.example", at=START)
    assert 'data-testid="funnel-answered">1<' in (await client.get("/")).text
    page = (await client.get(f"/cases/{asked}")).text
    await client.post(
        f"/cases/{asked}/answer", data={"choice": "keep", "csrf_token": csrf_from(page)}
    )
    assert 'data-testid="funnel-answered">2<' in (await client.get("/")).text
