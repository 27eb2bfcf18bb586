"""The case page and the dashboard's attention list read no whole table.

Every statement they send is captured and planned again with SQLite's
``EXPLAIN QUERY PLAN``: a full ``SCAN`` of a table that grows with the cases would
make the page slower as the store grows (bench/web_scale.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from reclaim.config import parse_settings
from reclaim.domain import case as dc
from reclaim.store import cases as store
from reclaim.store.engine import make_engine
from reclaim.store.keys import resolve_keys
from reclaim.store.migrate import upgrade
from reclaim.store.policies import sync_policies
from reclaim.web.case_queries import case_detail
from reclaim.web.report_queries import attention

USER = "someone@corp.example"
POLICY = """
data_dir: {data_dir}
policies:
  - name: Visio
    apps: [VISIO.EXE]
    group: {{name: Visio users}}
    workflow: manual
    seat_cost: {{amount: "15"}}
"""
GROWING = ("cases", "case_events", "directory_writes", "notifications", "manual_tasks")


def _plans(engine: Engine, run: Any) -> list[tuple[str, str]]:
    """(statement, plan line) of every SELECT ``run`` sends."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert sent, "nothing was read"
    out = []
    with engine.connect() as conn:
        for statement, params in sent:
            for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params):
                out.append((statement, str(row[-1])))
    return out


def _scans(plans: list[tuple[str, str]]) -> list[str]:
    return [
        f"{line}  <-  {statement.split()[0:12]}"
        for statement, line in plans
        if any(line == f"SCAN {t}" or line.startswith(f"SCAN {t} ") for t in GROWING)
        and "USING" not in line
    ]


def _store(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    return engine


def test_a_case_page_reads_its_rows_by_index(tmp_path: Path) -> None:
    engine = _store(tmp_path)
    settings = parse_settings(POLICY.format(data_dir=tmp_path), source="test.yaml")
    at = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:  # one case, so the page reads past the case itself
        pid = sync_policies(conn, settings.policies, now=int(at.timestamp()))["Visio"]
        (uid,) = [i for _, i in resolve_keys(conn, users=[USER], apps={}, now=0)[0]]
        case = dc.open_case(policy="Visio", user=USER, cycle=1, at=at)
        stored = store.insert_case(
            conn,
            case,
            policy_id=pid,
            user_id=uid,
            verdict="unused",
            reason="test",
            last_used=None,
            next_due_at=None,
        )
    plans = _plans(engine, lambda: case_detail(engine, stored.id))
    assert any("notifications" in statement for statement, _ in plans)
    assert _scans(plans) == []


def test_the_attention_list_counts_failed_cases_by_index(tmp_path: Path) -> None:
    engine = _store(tmp_path)
    settings = parse_settings(f"data_dir: {tmp_path}\n", source="test.yaml")
    now = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)

    def run() -> None:
        with engine.connect() as conn:
            attention(conn, settings, now=now)

    assert _scans(_plans(engine, run)) == []
