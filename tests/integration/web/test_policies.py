"""Policies in the API (``/api/v1/policies``) and on the pages (``/policies``): verdicts,
savings, last and next run, and the next run's preview, with exact numbers for a small
store seeded through the same services the CLI uses."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import httpx
import pytest

from reclaim.runner.scheduler import run_due_cycles
from reclaim.services.members_import import import_members
from reclaim.services.report import savings_report
from reclaim.store.leases import set_control

from .case_seed import seed_case
from .conftest import START, WebEnv, assert_problem, client_for, sign_in

pytestmark = pytest.mark.anyio

#: Miro's members: four who never used Miro (seen by the usage source using Visio),
#: one who uses it, one the source never saw, one granted a week ago (grace).
UNUSED = [f"m{n}@corp.example" for n in range(4)]
USER_IN_USE, NO_DATA, NEW = "m4@corp.example", "m5@corp.example", "m6@corp.example"


async def seed(
    web: WebEnv, client: httpx.AsyncClient, tmp_path: Path, unused: list[str] = UNUSED
) -> None:
    members = tmp_path / "miro.csv"
    with members.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("user", "granted_at"))
        for user in [*unused, USER_IN_USE, NO_DATA]:
            w.writerow((user, "2025-01-01"))
        w.writerow((NEW, "2026-10-26"))
    settings = web.ctx.settings
    import_members(
        web.ctx.engine,
        settings.policy("Miro"),
        members,
        configured=settings.policies,
        now=web.clock(),
    )
    # Seen by the source since August (longer than Miro's 60 days), never using Miro.
    rows = [f"{u},VISIO.EXE,{d}" for u in unused for d in ("2026-08-01", "2026-11-01")]
    rows.append(f"{USER_IN_USE},Miro,2026-11-01")
    body = ("user,app,date\n" + "\n".join(rows) + "\n").encode()
    r = await client.post(
        "/api/v1/usage",
        content=body,
        headers=web.auth("ingest") | {"Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["rows_accepted"] == 2 * len(unused) + 1, r.text
    # Two of the unused already said "release"; two people were reclaimed earlier.
    before = START - dt.timedelta(days=5)
    for user in UNUSED[:2]:
        seed_case(web.ctx.engine, to="answered_release", user=user, policy="Miro", at=before)
    for n in range(2):
        seed_case(
            web.ctx.engine, to="removed", user=f"gone{n}@corp.example", policy="Miro", at=before
        )


async def test_policies_show_verdicts_savings_runs_and_preview(
    web_any_db: WebEnv, tmp_path: Path
) -> None:
    web = web_any_db
    async with client_for(web.app) as client:
        await _show_verdicts_savings_runs_and_preview(web, client, tmp_path)


async def _show_verdicts_savings_runs_and_preview(
    web: WebEnv, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await seed(web, client, tmp_path)
    viewer = web.auth("viewer")
    first = (await client.get("/api/v1/policies/miro", headers=viewer)).json()
    # Never run: the scheduler's tick of this morning (06:00, a Monday) is due.
    assert first["last_run"] is None
    assert first["next_run"] == {"at": "2026-11-02T06:00:00Z", "due": True, "running": False}

    done = run_due_cycles(web.ctx.engine, settings=web.ctx.settings, now=web.clock(), owner="t")
    miro_run = next(o for o in done if o.policy == "Miro")

    r = await client.get("/api/v1/policies", headers=viewer)
    assert r.status_code == 200, r.text
    listed = {p["name"]: p for p in r.json()["items"]}
    miro = listed["Miro"]
    assert miro["members"] == 7
    assert miro["verdicts"] == {
        "excluded": 0,
        "grace": 1,
        "in_use": 1,
        "no_data": 1,
        "seasonal": 0,
        "unused": 4,
        "underused": 0,
    }
    # 2 removed x 8 EUR realized; 4 candidates (all with open cases now) x 8 EUR potential.
    assert miro["savings"] == {
        "candidates": 4,
        "seats_reclaimed": 2,
        "seats_pending": 4,
        "realized": {"currency": "EUR", "monthly": "16.00", "yearly": "192.00"},
        "potential": {"currency": "EUR", "monthly": "32.00", "yearly": "384.00"},
    }
    report = savings_report(web.ctx.engine, settings=web.ctx.settings, now=web.clock())
    row = next(p for p in report["policies"] if p["policy"] == "Miro")
    assert (row["realized"], row["potential"]) == (
        miro["savings"]["realized"],
        miro["savings"]["potential"],
    )  # the numbers `reclaim report` prints
    assert miro["last_run"] == {
        "at": "2026-11-02T09:00:00Z",
        "plan_id": miro_run.plan_id,
        "status": "applied",
    }
    assert miro["next_run"] == {"at": "2026-11-03T06:00:00Z", "due": False, "running": False}
    # Group of 7, 10 % cap: one removal per run; the other release waits; two to ask.
    preview = miro["preview"]
    assert {k: preview[k] for k in ("ask", "remove", "held", "total", "cap", "halted")} == {
        "ask": 2,
        "remove": 1,
        "held": 1,
        "total": 4,
        "cap": 1,
        "halted": False,
    }
    assert preview["remove_awaiting_approval"] == 0
    assert preview["evaluated_at"] == "2026-11-02T09:00:00Z"
    visio = listed["Visio"]
    assert visio["members"] == 0 and visio["verdicts"]["unused"] == 0
    assert visio["preview"]["total"] == 0

    items = (await client.get("/api/v1/policies/Miro/preview", headers=viewer)).json()
    assert items["total"] == 4 and items["next"] is None
    # The plan's order: asks by user, then removals in the order the run takes them.
    assert [(i["action"], i["status"]) for i in items["items"]] == [
        ("ask", "planned"),
        ("ask", "planned"),
        ("remove", "planned"),
        ("remove", "deferred_by_cap"),
    ]
    assert [i["user"] for i in items["items"][:2]] == UNUSED[2:]
    assert {i["user"] for i in items["items"][2:]} == set(UNUSED[:2])
    assert all(i["basis"] == "released" for i in items["items"][2:])
    assert items["items"][0]["basis"] == "ask" and items["items"][0]["last_used"] is None


async def test_preview_pages_and_follows_the_kill_switch(
    web: WebEnv, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await seed(web, client, tmp_path)
    viewer = web.auth("viewer")
    url: str | None = "/api/v1/policies/Miro/preview?limit=3"
    pages = []
    while url:
        r = await client.get(url, headers=viewer)
        assert r.status_code == 200, r.text
        pages.append([i["user"] for i in r.json()["items"]])
        url = r.json()["next"]
        assert (r.headers.get("link") is None) == (url is None)
    assert [len(p) for p in pages] == [3, 1]
    assert len({u for p in pages for u in p}) == 4
    with web.ctx.engine.begin() as conn:  # the kill switch, as `reclaim pause` sets it
        set_control(conn, "paused", "1", by="test", now=int(web.clock().timestamp()))
    paused = (await client.get("/api/v1/policies/Miro/preview", headers=viewer)).json()
    statuses = [i["status"] for i in paused["items"] if i["action"] == "remove"]
    assert statuses == ["blocked_paused", "deferred_by_cap"]  # the cap still applies
    assert any(
        "kill switch on" in a
        for a in paused_alerts(await client.get("/api/v1/policies/Miro", headers=viewer))
    )


def paused_alerts(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return list(r.json()["preview"]["alerts"])


async def test_policy_errors_are_problems(web: WebEnv, client: httpx.AsyncClient) -> None:
    viewer = web.auth("viewer")
    assert_problem(await client.get("/api/v1/policies/Nope", headers=viewer), 404)
    assert_problem(await client.get("/api/v1/policies/Nope/preview", headers=viewer), 404)
    bad = await client.get("/api/v1/policies/Miro/preview?cursor=%%%", headers=viewer)
    assert_problem(bad, 400)
    assert_problem(await client.get("/api/v1/policies/Miro/preview?limit=0", headers=viewer), 422)
    assert_problem(await client.get("/api/v1/policies/Miro/preview"), 401)
    ingest = web.auth("ingest")
    assert_problem(await client.get("/api/v1/policies/Miro/preview", headers=ingest), 403)


async def test_policies_page_shows_the_same_numbers(
    web: WebEnv, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await seed(web, client, tmp_path)
    done = run_due_cycles(web.ctx.engine, settings=web.ctx.settings, now=web.clock(), owner="t")
    plan_id = next(o.plan_id for o in done if o.policy == "Miro")
    await sign_in(client)
    page = (await client.get("/policies")).text
    cards = page.split('data-testid="policy-card"')[1:]
    miro = next(c for c in cards if '<h2><a href="/policies/Miro">Miro</a></h2>' in c)
    assert 'data-verdict="unused">unused: 4<' in miro and 'data-verdict="grace">grace: 1<' in miro
    assert 'data-verdict="seasonal"' not in miro  # zero counts are left out
    assert "realized 16.00 EUR/month (192.00/year, 2 seats)" in miro
    assert "potential 32.00/month (384.00/year, 4 seats)" in miro
    assert f'<a href="/plans/{plan_id}">plan #{plan_id}</a>' in miro
    assert "2026-11-03 06:00 UTC" in miro  # next run
    assert "ask 2 · remove 1 · hold back 1" in miro
    assert miro.count('data-testid="preview-item"') == 4
    assert "1 of 2 removals deferred by the cap of 1" in miro  # the plan's alert

    detail = await client.get("/policies/miro")
    assert detail.status_code == 200
    assert 'data-testid="preview-total">4<' in detail.text
    assert detail.text.count('data-testid="preview-item"') == 4
    missing = await client.get("/policies/Nope")
    assert missing.status_code == 404


async def test_policy_page_pages_the_preview_on_the_server(
    web: WebEnv, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    many = [f"u{n:03d}@corp.example" for n in range(60)]
    await seed(web, client, tmp_path, unused=many)
    await sign_in(client)
    overview = (await client.get("/policies")).text
    assert 'data-testid="preview-all">all 60 »<' in overview
    first = (await client.get("/policies/Miro")).text
    assert first.count('data-testid="preview-item"') == 50
    assert "<td>u000@corp.example</td>" in first and "u050@corp.example" not in first
    next_url = first.split('rel="next" data-testid="next-page"')[0].rsplit('href="', 1)[1]
    second = (await client.get(next_url.split('"')[0].replace("&amp;", "&"))).text
    assert second.count('data-testid="preview-item"') == 10
    assert '<td class="r">51</td><td>u050@corp.example</td>' in second
    assert 'data-testid="next-page"' not in second
