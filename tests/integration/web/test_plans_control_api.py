"""``/api/v1/plans``, ``/control``, ``/reports/*`` and ``/candidates``: roles, problems,
audit entries, and numbers equal to the services the CLI prints."""

from __future__ import annotations

import csv
import datetime as dt

import httpx
import pytest
from sqlalchemy import select

from reclaim.services.members_import import import_members
from reclaim.services.report import savings_report
from reclaim.store.leases import paused_in_store
from reclaim.store.web_tables import audit_log

from .case_seed import seed_case
from .conftest import START, WebEnv, assert_problem

pytestmark = pytest.mark.anyio


def actions(web: WebEnv) -> list[str]:
    with web.ctx.engine.connect() as conn:
        return list(conn.execute(select(audit_log.c.action).order_by(audit_log.c.id)).scalars())


async def test_plan_create_show_approve_and_reject(web: WebEnv, client: httpx.AsyncClient) -> None:
    op = web.auth("operator")
    assert_problem(await client.post("/api/v1/plans", json={}, headers=web.auth("viewer")), 403)
    assert_problem(await client.post("/api/v1/plans", json={"policy": "Nope"}, headers=op), 404)
    made = await client.post("/api/v1/plans", json={"policy": "Visio"}, headers=op)
    assert made.status_code == 201, made.text
    plan = made.json()
    assert plan["policies"] == ["Visio"] and plan["status"] == "proposed"
    assert plan["impact"]["Visio"]["shared_with"] == []
    shown = await client.get(f"/api/v1/plans/{plan['id']}", headers=web.auth("viewer"))
    assert shown.json()["content"]["content_hash"] == plan["content"]["content_hash"]
    approved = await client.post(
        f"/api/v1/plans/{plan['id']}/approve", json={"note": "checked"}, headers=op
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"].startswith("operator-token")
    # An approved plan cannot be rejected any more: a clear conflict.
    r = await client.post(f"/api/v1/plans/{plan['id']}/reject", headers=op)
    assert "already approved" in assert_problem(r, 409)["detail"]
    other = (await client.post("/api/v1/plans", headers=op)).json()  # every enabled policy
    assert other["policies"] == ["Miro", "Visio"]
    rejected = await client.post(f"/api/v1/plans/{other['id']}/reject", headers=op)
    assert rejected.json()["status"] == "rejected"
    assert_problem(await client.post("/api/v1/plans/9999/approve", headers=op), 404)
    assert actions(web)[-4:] == ["plan.create", "plan.approve", "plan.create", "plan.reject"]


async def test_plans_list_pages_and_filters(web: WebEnv, client: httpx.AsyncClient) -> None:
    op = web.auth("operator")
    ids = [(await client.post("/api/v1/plans", headers=op)).json()["id"] for _ in range(3)]
    await client.post(f"/api/v1/plans/{ids[0]}/reject", headers=op)
    first = (await client.get("/api/v1/plans?limit=2", headers=web.auth("viewer"))).json()
    assert [p["id"] for p in first["items"]] == [ids[2], ids[1]]
    rest = (await client.get(first["next"], headers=web.auth("viewer"))).json()
    assert [p["id"] for p in rest["items"]] == [ids[0]] and rest["next"] is None
    only = await client.get("/api/v1/plans?status=rejected", headers=web.auth("viewer"))
    assert [p["id"] for p in only.json()["items"]] == [ids[0]]
    assert_problem(await client.get("/api/v1/plans?status=odd", headers=web.auth("viewer")), 400)


async def test_pause_and_resume_the_kill_switch(web: WebEnv, client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/api/v1/control/pause", headers=web.auth("viewer")), 403)
    assert_problem(await client.post("/api/v1/control/pause"), 401)
    r = await client.post(
        "/api/v1/control/pause", json={"reason": "bad usage feed"}, headers=web.auth("operator")
    )
    assert r.status_code == 200, r.text
    assert r.json()["paused"] is True and "bad usage feed" in r.json()["updated_by"]
    with web.ctx.engine.connect() as conn:
        assert paused_in_store(conn)  # the same switch every worker reads
    shown = (await client.get("/api/v1/control", headers=web.auth("viewer"))).json()
    assert shown["paused"] is True and shown["paused_in_config"] is False
    resumed = await client.post("/api/v1/control/resume", headers=web.auth("operator"))
    assert resumed.json()["paused"] is False
    assert actions(web)[-2:] == ["control.pause", "control.resume"]


async def test_savings_report_equals_the_cli_service(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    e = web.ctx.engine
    for n in range(3):
        seed_case(e, to="removed", user=f"gone{n}@corp.example", at=START - dt.timedelta(days=3))
    seed_case(e, to="asked", user="open@corp.example", at=START)
    r = await client.get("/api/v1/reports/savings", headers=web.auth("viewer"))
    assert r.status_code == 200, r.text
    expected = savings_report(e, settings=web.ctx.settings, now=web.clock())
    assert r.json() == expected
    visio = next(p for p in r.json()["policies"] if p["policy"] == "Visio")
    assert visio["seats_reclaimed"] == 3 and visio["realized"]["monthly"] == "45.00"
    assert_problem(await client.get("/api/v1/reports/savings", headers=web.auth("ingest")), 403)


async def test_funnel_and_monthly_reports(web: WebEnv, client: httpx.AsyncClient) -> None:
    e = web.ctx.engine
    for n, state in enumerate(
        ["asked", "answered_keep", "removed", "removed", "restored", "no_response", "could_not_ask"]
    ):
        seed_case(e, to=state, user=f"p{n}@corp.example", at=START - dt.timedelta(days=40))
    funnel = (await client.get("/api/v1/reports/funnel", headers=web.auth("viewer"))).json()
    t = funnel["total"]
    assert (t["opened"], t["asked"], t["answered"], t["kept"], t["released"]) == (7, 6, 4, 1, 3)
    assert (t["no_response"], t["awaiting"], t["could_not_ask"]) == (1, 1, 1)
    assert (t["removed"], t["restored"]) == (2, 1)
    assert t["response_rate"] == round(4 / 6, 4) and t["regret_rate"] == round(1 / 3, 4)
    monthly = (
        await client.get("/api/v1/reports/monthly?months=3", headers=web.auth("viewer"))
    ).json()
    assert monthly["months"] == ["2026-09", "2026-10", "2026-11"]
    # Opened 2026-09-23, removed five hours later: both in September, at 15 USD a seat.
    assert monthly["seats"] == [2, 0, 0]
    assert monthly["per_policy"] == {"Visio": [2, 0, 0]}
    assert monthly["monthly_saving_added"] == {"USD": ["30.00", "0", "0"]}
    bad = await client.get("/api/v1/reports/monthly?months=0", headers=web.auth("viewer"))
    assert_problem(bad, 422)


def _members(web: WebEnv, tmp_path, policy: str, users: list[str]) -> None:
    """Import ``users`` as the policy's members (granted long ago)."""
    members = tmp_path / f"{policy}.csv"
    with members.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("user", "granted_at"))
        w.writerows((user, "2025-01-01") for user in users)
    import_members(
        web.ctx.engine,
        web.ctx.settings.policy(policy),
        members,
        configured=web.ctx.settings.policies,
        now=web.clock(),
    )


async def test_candidates_filter_and_page(web: WebEnv, client: httpx.AsyncClient, tmp_path) -> None:
    _members(web, tmp_path, "Miro", [f"m{n}@corp.example" for n in range(5)])
    auth = web.auth("viewer")
    url: str | None = "/api/v1/candidates?policy=Miro&verdict=all&limit=2"
    users: list[str] = []
    while url:
        body = (await client.get(url, headers=auth)).json()
        users += [i["user"] for i in body["items"]]
        url = body["next"]
    assert users == [f"m{n}@corp.example" for n in range(5)]
    assert_problem(await client.get("/api/v1/candidates?verdict=odd", headers=auth), 400)
    assert_problem(await client.get("/api/v1/candidates?policy=Nope", headers=auth), 404)
    assert_problem(await client.get("/api/v1/candidates", headers=web.auth("ingest")), 403)


async def test_candidates_pages_cross_policies_in_order(
    web: WebEnv, client: httpx.AsyncClient, tmp_path
) -> None:
    for name, prefix in (("Miro", "m"), ("Visio", "v")):
        _members(web, tmp_path, name, [f"{prefix}{n}@corp.example" for n in range(3)])
    auth = web.auth("viewer")
    whole = (await client.get("/api/v1/candidates?verdict=all&limit=500", headers=auth)).json()
    everyone = [(i["policy"], i["user"]) for i in whole["items"]]
    assert whole["next"] is None
    assert {("Miro", f"m{n}@corp.example") for n in range(3)} <= set(everyone)
    assert {("Visio", f"v{n}@corp.example") for n in range(3)} <= set(everyone)
    assert everyone == sorted(everyone)
    url: str | None = "/api/v1/candidates?verdict=all&limit=2"
    paged: list[tuple[str, str]] = []
    while url:  # pages of 2 end inside a policy and across policies
        body = (await client.get(url, headers=auth)).json()
        paged += [(i["policy"], i["user"]) for i in body["items"]]
        url = body["next"]
    assert paged == everyone
