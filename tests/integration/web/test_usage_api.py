"""POST /api/v1/usage: formats, bad rows, size limit, duplicates and Idempotency-Key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from reclaim.store.tables import imports, sources, usage_daily
from reclaim.store.web_tables import api_tokens, audit_log
from reclaim.web import idempotency
from reclaim.web.usage_upload import ENDPOINT, request_hash
from tests.integration.web.conftest import WebEnv, assert_problem, client_for

pytestmark = pytest.mark.anyio

CSV_WITH_BAD_ROWS = (
    b"user,app,timestamp,seconds\n"
    b"ann@corp.example,VISIO.EXE,2026-11-01T09:00:00Z,600\n"
    b",VISIO.EXE,2026-11-01T09:00:00Z,60\n"  # line 3: no user
    b"bob@corp.example,Miro,2026-11-01T10:00:00Z,-5\n"  # line 4: negative seconds
    b"bob@corp.example,Miro,2026-11-01T11:00:00Z,120\n"
    b"cy@corp.example,Miro,not-a-time,1\n"  # line 6
)


def totals(web: WebEnv) -> tuple[int, int, int, int]:
    """(events accepted, rejected, imports, daily rows) as the store has them."""
    with web.ctx.engine.connect() as conn:
        accepted, rejected = conn.execute(
            select(
                func.coalesce(func.sum(sources.c.rows_accepted), 0),
                func.coalesce(func.sum(sources.c.rows_rejected), 0),
            )
        ).one()
        n_imports = conn.execute(select(func.count()).select_from(imports)).scalar_one()
        daily = conn.execute(select(func.count()).select_from(usage_daily)).scalar_one()
    return int(accepted), int(rejected), int(n_imports), int(daily)


async def upload(
    c: httpx.AsyncClient, web: WebEnv, body: bytes, ctype: str = "text/csv", **headers: str
) -> httpx.Response:
    h = web.auth("ingest") | {"Content-Type": ctype}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    return await c.post("/api/v1/usage", content=body, headers=h)


async def test_bad_rows_are_listed_and_good_rows_kept(web_any_db: WebEnv) -> None:
    web = web_any_db
    async with client_for(web.app) as c:
        response = await upload(c, web, CSV_WITH_BAD_ROWS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "imported" and body["format"] == "csv"
    assert (body["rows_accepted"], body["rows_rejected"]) == (2, 3)
    assert [e["row"] for e in body["errors"]] == [3, 4, 6]
    assert "user" in body["errors"][0]["reason"]
    assert body["errors_truncated"] is False
    assert totals(web)[:2] == (2, 3)  # the good rows are in the store
    assert "/" not in json.dumps(body["errors"])  # no server paths leak into errors
    with web.ctx.engine.connect() as conn:
        entry = conn.execute(select(audit_log).where(audit_log.c.action == "usage.upload")).one()
    assert entry.actor_kind == "token" and entry.target == "api"
    assert json.loads(entry.detail)["rows_accepted"] == 2


async def test_ndjson_and_json_array(web: WebEnv, client) -> None:
    ndjson = (
        b'{"user":"ann@corp.example","app":"Miro","date":"2026-11-01"}\n'
        b"this is not json\n"
        b'{"user":"bob@corp.example","app":"Miro","date":"2026-11-01","seconds":30}\n'
    )
    r = await upload(client, web, ndjson, "application/x-ndjson")
    assert r.status_code == 200, r.text
    assert (r.json()["rows_accepted"], [e["row"] for e in r.json()["errors"]]) == (2, [2])
    array = [
        "not an object",
        {"user": "cy@corp.example", "app": "Miro", "date": "2026-11-02"},
        {"user": "cy@corp.example"},
        7,
    ]
    r = await upload(client, web, json.dumps(array).encode(), "application/json; charset=utf-8")
    body = r.json()
    assert r.status_code == 200 and body["format"] == "json"
    assert body["rows_accepted"] == 1 and body["rows_rejected"] == 3
    assert body["errors"][0] == {"row": 1, "reason": "not a JSON object"}
    assert [e["row"] for e in body["errors"]] == [1, 3, 4]  # array positions, 1-based


async def test_only_the_first_errors_are_listed(web: WebEnv, client) -> None:
    rows = b"".join(b"u%d@corp.example,Miro,bad-date,1\n" % i for i in range(30))
    body = (await upload(client, web, b"user,app,timestamp,seconds\n" + rows)).json()
    assert body["rows_rejected"] == 30 and len(body["errors"]) == 20
    assert body["errors_truncated"] is True


@pytest.mark.parametrize(
    ("payload", "ctype", "status", "words"),
    [
        (b"name,when\nx,y\n", "text/csv", 400, "header lacks"),
        (b'{"user": "a"}', "application/json", 400, "array"),
        (b"[{", "application/json", 400, "not a valid JSON array"),
        (b"[1] trailing", "application/json", 400, "after the array"),
        (b"", "application/x-ndjson", 400, "empty"),
        (b"user,app,date\n", "application/xml", 415, "text/csv"),
        (b"user,app,date\n", "", 415, "no Content-Type"),
    ],
)
async def test_unusable_bodies_import_nothing(
    web: WebEnv, client, payload: bytes, ctype: str, status: int, words: str
) -> None:
    body = assert_problem(await upload(client, web, payload, ctype), status)
    assert words in body["detail"]
    assert str(web.ctx.settings.data_dir) not in body["detail"]
    assert totals(web) == (0, 0, 0, 0)


async def test_size_limit_refuses_a_declared_oversize_before_reading(web: WebEnv, client) -> None:
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(4):
            pulled += 1
            yield b"x" * (512 << 10)

    headers = web.auth("ingest") | {"Content-Type": "text/csv", "Content-Length": str(2 << 20)}
    response = await client.post("/api/v1/usage", content=body(), headers=headers)
    problem = assert_problem(response, 413)
    assert problem["limit_bytes"] == 1 << 20
    assert pulled <= 1  # at most what the transport buffers: the app read nothing


async def test_size_limit_stops_a_chunked_upload_early(web: WebEnv, client) -> None:
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b"user,app,date\n"
        for _ in range(64):  # 16 MiB offered, 1 MiB allowed
            pulled += 1
            yield b"a@b.c,Miro,2026-11-01\n" * 12000  # ~256 KiB

    headers = web.auth("ingest") | {"Content-Type": "text/csv"}
    response = await client.post("/api/v1/usage", content=body(), headers=headers)
    assert_problem(response, 413)
    assert pulled < 10  # refused as soon as it crossed the limit, not after reading it all
    assert totals(web) == (0, 0, 0, 0)


async def test_same_bytes_twice_without_a_key_are_a_duplicate(web: WebEnv, client) -> None:
    first = (await upload(client, web, CSV_WITH_BAD_ROWS)).json()
    again = await upload(client, web, CSV_WITH_BAD_ROWS)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["sha256"] == first["sha256"]
    assert totals(web)[:3] == (2, 3, 1)


async def test_idempotency_key_replays_the_first_answer(web_any_db: WebEnv) -> None:
    web = web_any_db
    async with client_for(web.app) as c:
        first = await upload(c, web, CSV_WITH_BAD_ROWS, Idempotency_Key="batch-2026-11-01")
        before = totals(web)
        again = await upload(c, web, CSV_WITH_BAD_ROWS, Idempotency_Key="batch-2026-11-01")
        assert again.status_code == first.status_code == 200
        assert again.json() == first.json()  # the same answer, "imported", not "duplicate"
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert totals(web) == before == (2, 3, 1, before[3])
        reused = await upload(
            c,
            web,
            b"user,app,date\nz@corp.example,Miro,2026-11-01\n",
            Idempotency_Key="batch-2026-11-01",
        )
        assert assert_problem(reused, 422)["type"].endswith("/idempotency-key-reused")
        other_source = await c.post(
            "/api/v1/usage?source=other",
            content=CSV_WITH_BAD_ROWS,
            headers=web.auth("ingest")
            | {"Content-Type": "text/csv", "Idempotency-Key": "batch-2026-11-01"},
        )
        assert_problem(other_source, 422)  # another source is another request
    with web.ctx.engine.connect() as conn:
        uploads = conn.execute(
            select(func.count()).where(audit_log.c.action == "usage.upload")
        ).scalar_one()
    assert uploads == 1  # a replay is not a second upload


async def test_keys_belong_to_one_caller(web: WebEnv, client) -> None:
    await upload(client, web, CSV_WITH_BAD_ROWS, Idempotency_Key="k1")
    admin = await client.post(
        "/api/v1/usage",
        content=CSV_WITH_BAD_ROWS,
        headers=web.auth("admin") | {"Content-Type": "text/csv", "Idempotency-Key": "k1"},
    )
    assert "idempotent-replayed" not in admin.headers
    assert admin.json()["status"] == "duplicate"  # judged on its own: the bytes are known


async def test_a_failed_request_frees_its_key(web: WebEnv, client) -> None:
    bad = await upload(client, web, b"name,when\nx,y\n", Idempotency_Key="retry-me")
    assert_problem(bad, 400)
    fixed = await upload(client, web, CSV_WITH_BAD_ROWS, Idempotency_Key="retry-me")
    assert fixed.status_code == 200 and fixed.json()["status"] == "imported"


async def test_a_key_in_flight_is_409(web: WebEnv, client) -> None:
    with web.ctx.engine.connect() as conn:
        token_id = conn.execute(
            select(api_tokens.c.id).where(api_tokens.c.name == "ingest-token")
        ).scalar_one()
    # Another request with this key has started and not finished.
    slot = idempotency.Slot(f"token:{token_id}", ENDPOINT, "busy")
    same = request_hash("csv", "api", hashlib.sha256(CSV_WITH_BAD_ROWS).hexdigest())
    now = int(web.clock().timestamp())
    assert idempotency.reserve(web.ctx.engine, slot, request_hash=same, now=now) is None
    busy = await upload(client, web, CSV_WITH_BAD_ROWS, Idempotency_Key="busy")
    assert assert_problem(busy, 409)["type"].endswith("/idempotency-key-in-flight")
    assert busy.headers["retry-after"]
    assert totals(web)[2] == 0
    web.clock.advance(idempotency.STALE + 1)  # the first request died: the slot is taken over
    taken = await upload(client, web, CSV_WITH_BAD_ROWS, Idempotency_Key="busy")
    assert taken.status_code == 200 and taken.json()["status"] == "imported"


@pytest.mark.parametrize("key", [b"has space", "é".encode(), b"x" * 201, b""])
async def test_malformed_keys_are_refused(web: WebEnv, client, key: bytes) -> None:
    response = await client.post(
        "/api/v1/usage",
        content=CSV_WITH_BAD_ROWS,
        headers=web.auth("ingest") | {"Content-Type": "text/csv", "Idempotency-Key": key},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert totals(web)[2] == 0
