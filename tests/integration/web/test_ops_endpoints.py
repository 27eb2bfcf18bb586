"""/healthz, /readyz and /metrics: what load balancers and Prometheus see."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, insert

from reclaim.config import EntraSettings
from reclaim.ops.logs import JsonFormatter
from reclaim.store.leases import PAUSED, set_control
from reclaim.store.tables import cases, directory_writes, imports, sources, users
from tests.integration.web.conftest import WebEnv, client_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port that accepts connections (nothing answers on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_healthz_needs_no_sign_in_and_echoes_a_request_id(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "probe-42"})
    fresh = await client.get("/healthz")
    assert given.status_code == fresh.status_code == 200
    assert given.headers["x-request-id"] == "probe-42"
    assert len(fresh.headers["x-request-id"]) == 32  # a new uuid4 hex


async def test_readyz_reports_database_and_schema(web_any_db: WebEnv) -> None:
    async with client_for(web_any_db.app) as c:
        response = await c.get("/readyz")
    assert response.status_code == 200, response.text
    checks = {c["name"]: c for c in response.json()["checks"]}
    assert set(checks) == {"database", "schema"}
    assert checks["database"]["detail"] == web_any_db.ctx.engine.dialect.name
    assert all(c["ok"] for c in checks.values())


def with_graph(web: WebEnv, port: int) -> None:
    web.ctx.settings = web.ctx.settings.model_copy(
        update={
            "entra": EntraSettings(
                tenant_id="t",
                client_id="c",
                client_secret="env:NOT_READ_BY_READYZ",  # type: ignore[arg-type]
                graph_url=f"http://127.0.0.1:{port}",
            )
        }
    )


async def test_readyz_is_503_when_graph_is_unreachable(web: WebEnv) -> None:
    with_graph(web, closed_port())
    async with client_for(web.app) as c:
        response = await c.get("/readyz")
    assert response.status_code == 503
    graph = next(c for c in response.json()["checks"] if c["name"] == "graph")
    assert graph["ok"] is False and "Connection" in graph["detail"]


async def test_readyz_is_ready_when_graph_answers(web: WebEnv, listening: int) -> None:
    with_graph(web, listening)
    async with client_for(web.app) as c:
        response = await c.get("/readyz")
    assert response.status_code == 200, response.text


async def test_metrics_need_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 401


def seed(engine: Engine, now: int) -> None:
    """Three cases (two asked, one removed), one removal, one import of 90+10 rows."""
    with engine.begin() as conn:
        conn.execute(
            insert(users),
            [{"id": i, "upn": f"u{i}@corp.example", "first_seen": now} for i in (1, 2, 3)],
        )
        base = {
            "policy_id": 1,
            "cycle": 1,
            "status": "in_progress",
            "verdict": "unused",
            "reason": "r",
            "reminders_sent": 0,
            "attempts": 0,
            "failures": 0,
            "version": 1,
            "opened_at": now - 3600,
            "updated_at": now - 3600,
        }
        conn.execute(
            insert(cases),
            [
                {
                    **base,
                    "id": 1,
                    "user_id": 1,
                    "state": "asked",
                    "is_open": True,
                    "remove_key": "k1",
                    "next_due_at": now - 120,
                },
                {
                    **base,
                    "id": 2,
                    "user_id": 2,
                    "state": "asked",
                    "is_open": True,
                    "remove_key": "k2",
                    "next_due_at": now + 600,
                },
                {
                    **base,
                    "id": 3,
                    "user_id": 3,
                    "state": "removed",
                    "is_open": False,
                    "remove_key": "k3",
                    "status": "success",
                    "next_due_at": None,
                },
            ],
        )
        conn.execute(
            insert(directory_writes).values(
                idempotency_key="k3",
                case_id=3,
                action="remove",
                workflow="entra_id",
                sends=1,
                sent_at=now - 60,
                finished_at=now - 59,
                result="done",
            )
        )
        conn.execute(insert(sources).values(id=1, name="files", kind="file"))
        conn.execute(
            insert(imports).values(
                source_id=1,
                sha256="0" * 64,
                size=1,
                file_name="u.csv",
                format="csv",
                started=now,
                finished=now,
                rows_accepted=90,
                rows_rejected=10,
            )
        )
        set_control(conn, PAUSED, "1", by="test", now=now)


async def test_metrics_show_the_store_for_a_known_scenario(web_any_db: WebEnv) -> None:
    now = web_any_db.clock().timestamp()
    seed(web_any_db.ctx.engine, int(now))
    async with client_for(web_any_db.app) as c:
        response = await c.get("/metrics", headers=web_any_db.auth("viewer"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = set(response.text.splitlines())
    for expected in (
        'reclaim_cases{state="asked"} 2.0',
        'reclaim_cases{state="removed"} 1.0',
        'reclaim_directory_writes_total{action="remove",workflow="entra_id"} 1.0',
        'reclaim_ingested_rows_total{outcome="accepted"} 90.0',
        'reclaim_ingested_rows_total{outcome="rejected"} 10.0',
        "reclaim_imports 1.0",
        "reclaim_paused 1.0",
    ):
        assert expected in lines, expected
    assert "reclaim_queue_lag_seconds 120.0" in lines  # case 1 was due 2 minutes ago


def test_json_log_lines_carry_the_request_and_case_ids() -> None:
    from reclaim.ops.logs import REQUEST_ID, case_context

    record = logging.LogRecord("reclaim.x", logging.INFO, __file__, 1, "hi %s", ("there",), None)
    token = REQUEST_ID.set("req-1")
    try:
        with case_context(7):
            line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["message"] == "hi there"
    assert line["request_id"] == "req-1" and line["case_id"] == 7
    assert line["level"] == "info" and line["logger"] == "reclaim.x"
