"""``/api/v1/cases``: roles, filters, keyset paging, history, answers for a user, restore."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.store.web_tables import audit_log
from reclaim.testing.recording_directory import RecordingDirectory

from .case_seed import seed_case
from .conftest import START, WebEnv, assert_problem, client_for, make_env, sign_in

pytestmark = pytest.mark.anyio


async def test_cases_need_a_token_and_a_reading_role(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    assert_problem(await client.get("/api/v1/cases"), 401)
    assert_problem(await client.get("/api/v1/cases", headers=web.auth("ingest")), 403)
    assert (await client.get("/api/v1/cases", headers=web.auth("viewer"))).status_code == 200


async def test_cases_page_with_a_keyset_cursor_and_link_header(web_any_db: WebEnv) -> None:
    web = web_any_db
    ids = [
        seed_case(web.ctx.engine, to="asked", user=f"u{n}@corp.example", at=START) for n in range(5)
    ]
    seen: list[int] = []
    async with client_for(web.app) as c:
        url: str | None = "/api/v1/cases?limit=2"
        pages = 0
        while url:
            r = await c.get(url, headers=web.auth("viewer"))
            assert r.status_code == 200, r.text
            body = r.json()
            seen += [i["id"] for i in body["items"]]
            if body["next"]:
                assert r.headers["link"] == f'<{body["next"]}>; rel="next"'
            url = body["next"]
            pages += 1
    assert seen == sorted(ids, reverse=True)  # newest first, none repeated or missing
    assert pages == 3


async def test_a_foreign_cursor_is_a_400_problem(web: WebEnv, client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/cases?cursor=not-ours!", headers=web.auth("viewer"))
    assert_problem(r, 400)


async def test_cases_filter_by_state_policy_and_user(web_any_db: WebEnv) -> None:
    web = web_any_db
    e = web.ctx.engine
    ann = seed_case(e, to="removed", user="Ann.Lee@corp.example", at=START)
    bob = seed_case(e, to="asked", user="bob@corp.example", at=START)
    miro = seed_case(e, to="asked", user="bob@corp.example", policy="Miro", at=START)
    auth = web.auth("viewer")
    async with client_for(web.app) as c:

        async def ids(query: str) -> list[int]:
            r = await c.get(f"/api/v1/cases?{query}", headers=auth)
            assert r.status_code == 200, r.text
            return [i["id"] for i in r.json()["items"]]

        assert await ids("state=removed") == [ann]
        assert await ids("policy=Miro") == [miro]
        assert await ids("user=ANN.LEE") == [ann]  # part of the UPN, any case
        assert await ids("open=true") == [miro, bob]
        assert await ids("status=success") == [ann]
        assert await ids("user=%25") == []  # a LIKE wildcard is matched literally
        body = assert_problem(await c.get("/api/v1/cases?state=gone", headers=auth), 400)
        assert "unknown state 'gone'" in body["detail"]


async def test_case_detail_has_the_full_history(web: WebEnv, client: httpx.AsyncClient) -> None:
    case_id = seed_case(web.ctx.engine, to="failed", at=START)
    r = await client.get(f"/api/v1/cases/{case_id}", headers=web.auth("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "failed" and body["status"] == "failed"
    steps = [(h["step"], h["outcome"]) for h in body["history"]]
    assert steps == [
        ("opened", "candidate"),
        ("asked", "asked"),
        ("answered", "answered_release"),
        ("released", "removal_pending"),
        ("removal_sent", "removal_pending"),
        ("failed", "failed"),
    ]
    assert body["history"][-1]["error"] == "Rejected: 400"
    assert body["history"][0]["from"] is None
    assert_problem(await client.get("/api/v1/cases/999999", headers=web.auth("viewer")), 404)


async def test_answer_for_a_user_is_recorded_as_such(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    case_id = seed_case(web.ctx.engine, to="asked", at=START)
    path = f"/api/v1/cases/{case_id}/answer"
    body = {"choice": "keep", "reason": "needs it for the Q4 audit"}
    assert_problem(await client.post(path, json=body), 401)
    assert_problem(await client.post(path, json=body, headers=web.auth("viewer")), 403)
    r = await client.post(path, json=body, headers=web.auth("operator"))
    assert r.status_code == 200, r.text
    answered = r.json()
    assert answered["state"] == "answered_keep"
    last = answered["history"][-1]
    assert last["step"] == "answered"
    # A token is named by its label and prefix: "operator-token (rcl_AbCd…)".
    assert last["input"]["reason"].startswith(
        "needs it for the Q4 audit (recorded by operator-token"
    )
    with web.ctx.engine.connect() as conn:
        entry = conn.execute(select(audit_log).where(audit_log.c.action == "case.answer")).one()
    assert entry.actor.startswith("operator-token") and entry.target == f"case:{case_id}"
    assert entry.actor_kind == "token"
    assert '"on_behalf_of": "ann@corp.example"' in entry.detail
    # The question is closed now: a second answer is a conflict, not a silent change.
    again = await client.post(path, json=body, headers=web.auth("operator"))
    assert "no open question" in assert_problem(again, 409)["detail"]


async def test_answer_validates_its_body(web: WebEnv, client: httpx.AsyncClient) -> None:
    case_id = seed_case(web.ctx.engine, to="asked", at=START)
    r = await client.post(
        f"/api/v1/cases/{case_id}/answer", json={"choice": "maybe"}, headers=web.auth("operator")
    )
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "choice"
    r = await client.post(
        "/api/v1/cases/424242/answer", json={"choice": "keep"}, headers=web.auth("operator")
    )
    assert_problem(r, 404)


async def test_a_browser_write_without_csrf_token_is_refused(web: WebEnv) -> None:
    case_id = seed_case(web.ctx.engine, to="asked", at=START)
    async with client_for(web.app) as c:
        await sign_in(c)
        r = await c.post(f"/api/v1/cases/{case_id}/answer", json={"choice": "keep"})
        assert assert_problem(r, 403)["type"].endswith("/csrf")
        shown = await c.get(f"/api/v1/cases/{case_id}")
        assert shown.json()["state"] == "asked"  # nothing changed


@pytest.fixture
def restorable(tmp_path, monkeypatch: pytest.MonkeyPatch) -> tuple[WebEnv, RecordingDirectory]:
    """The app with the recording directory (our DirectoryPort's test peer) for restores."""
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    directory = RecordingDirectory()
    return make_env(engine, tmp_path / "data", directories=lambda _p: directory), directory


async def test_restore_gives_the_license_back(
    restorable: tuple[WebEnv, RecordingDirectory],
) -> None:
    web, directory = restorable
    case_id = seed_case(web.ctx.engine, to="removed", at=START)
    path = f"/api/v1/cases/{case_id}/restore"
    async with client_for(web.app) as c:
        denied = await c.post(path, json={"reason": "x"}, headers=web.auth("viewer"))
        assert_problem(denied, 403)
        assert_problem(await c.post(path, json={}, headers=web.auth("operator")), 422)
        r = await c.post(path, json={"reason": "needed after all"}, headers=web.auth("operator"))
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "restored"
        assert r.json()["history"][-1]["step"] == "admin"
        again = await c.post(path, json={"reason": "twice"}, headers=web.auth("operator"))
        assert "only a removed case can be restored" in assert_problem(again, 409)["detail"]
    assert [(w["action"], w["user"]) for w in directory.writes()] == [("add", "ann@corp.example")]
    with web.ctx.engine.connect() as conn:
        entry = conn.execute(select(audit_log).where(audit_log.c.action == "case.restore")).one()
    assert entry.target == f"case:{case_id}" and '"reason": "needed after all"' in entry.detail


async def test_restore_of_a_manual_policy_case_is_a_conflict(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    case_id = seed_case(web.ctx.engine, to="removed", policy="Miro", at=START)
    r = await client.post(
        f"/api/v1/cases/{case_id}/restore", json={"reason": "x"}, headers=web.auth("operator")
    )
    assert "manual workflow" in assert_problem(r, 409)["detail"]
    assert_problem(
        await client.post(
            "/api/v1/cases/777/restore", json={"reason": "x"}, headers=web.auth("operator")
        ),
        404,
    )
