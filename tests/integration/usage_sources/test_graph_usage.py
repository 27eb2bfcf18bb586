"""Graph pulls against the Graph test server: paging, pacing, 429, the report redirect,
concealed names, and incremental pulls that never count twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reclaim.connectors.graph.reports import UsageReads
from reclaim.services.graph_usage import pull_graph_usage
from reclaim.testing.graph import GraphServer
from tests.integration.graph.conftest import CLIENT_ID, CLIENT_SECRET, FakeTime
from tests.integration.usage_sources.conftest import DOMAIN, EXTRA_USERS, MIRO, TABLEAU, sign_ins
from tests.integration.usage_sources.helpers import daily, observed

NOW = dt.datetime(2026, 10, 8, 12, 0, tzinfo=dt.UTC)
ADA, BOB = f"ada@{DOMAIN}", f"bob@{DOMAIN}"


def pull(engine: Engine, reads: UsageReads, **kw):
    kw.setdefault("app_ids", [MIRO, TABLEAU])
    return pull_graph_usage(engine, reads, now=kw.pop("now", NOW), **kw)


def test_a_full_pull_exact_rollups(
    engine: Engine, usage_reads: UsageReads, graph_server: GraphServer
) -> None:
    report = pull(engine, usage_reads)
    assert report.ok, report.as_dict()
    by_part = {p.part: p for p in report.parts}
    assert by_part["activity"].observations == 2 + EXTRA_USERS  # ada twice, bob never
    assert by_part[f"sign-ins {MIRO}"].events == 3  # the failed sign-in is not use
    assert daily(engine) == [
        (ADA, MIRO, "2026-10-01", 0, 3),
        (ADA, "m365 apps word", "2026-10-05", 0, 1),
        (ADA, "m365 exchange", "2026-10-05", 0, 1),
        (ADA, "m365 teams", "2026-10-04", 0, 1),
        (BOB, TABLEAU, "2026-10-02", 0, 1),
    ]
    ada_days = [d for u, s, d in observed(engine) if u == ADA]
    assert ada_days == ["2026-10-01", "2026-10-03", "2026-10-04", "2026-10-05"]
    # Paging: 133 users at 120 a page; the report answered 302 and its CSV was fetched.
    assert graph_server.requests.count(path="/users", status=200) == 2
    assert graph_server.requests.count(path="getOffice365ActiveUserDetail", status=302) == 1


def test_sign_ins_paged_paced_and_retried_after_429(
    engine: Engine,
    usage_reads: UsageReads,
    graph_server: GraphServer,
    graph_time: FakeTime,
) -> None:
    graph_server.tenant.sign_ins = sign_ins(5_500, app_id=MIRO)  # 6 pages of 1,000
    graph_server.faults.throttle_next(1, retry_after=7, path=r"/auditLogs/signIns")
    report = pull(engine, usage_reads, parts=["sign-ins"], app_ids=[MIRO])
    assert report.ok and report.parts[0].events == 5_500
    assert graph_server.requests.count(path="/auditLogs/signIns", status=429) == 1
    assert graph_server.requests.count(path="/auditLogs/signIns", status=200) == 6
    assert 7.0 in graph_time.sleeps  # Retry-After honoured exactly
    # Never more than the documented 5 requests in 10 s (a refused one consumes nothing).
    assert usage_reads.sign_in_pacer.waited
    sent = [r.time for r in graph_server.requests.find(path="/auditLogs/signIns", status=200)]
    assert all(b - a >= 10.0 for a, b in zip(sent, sent[5:], strict=False))
    per_day = [960, 1440, 1440, 1440, 220]  # one a minute from Oct 1 08:00
    assert daily(engine) == [
        (ADA, MIRO, f"2026-10-0{d}", 0, n) for d, n in enumerate(per_day, start=1)
    ]


def test_concealed_names_are_refused_with_a_clear_message(
    engine: Engine, usage_reads: UsageReads, graph_server: GraphServer
) -> None:
    graph_server.tenant.display_concealed_names = True
    report = pull(engine, usage_reads, parts=["reports", "sign-ins"])
    assert not report.ok
    refused = [p for p in report.parts if p.status == "refused"]
    assert len(refused) == 2 and all("conceals user names" in p.message for p in refused)
    assert not any(app.startswith("m365") for _, app, *_ in daily(engine))
    assert any(app == MIRO for _, app, *_ in daily(engine))  # sign-ins are unaffected


def test_incremental_pulls_never_count_twice(
    engine: Engine, usage_reads: UsageReads, graph_server: GraphServer
) -> None:
    first = pull(engine, usage_reads)
    before = daily(engine)
    second = pull(engine, usage_reads, now=NOW + dt.timedelta(hours=1))
    assert second.ok
    assert sum(p.events for p in second.parts) == 0
    assert sum(p.repeats for p in second.parts) == sum(p.events for p in first.parts)
    assert daily(engine) == before
    # The second pull asked from the watermark minus the overlap, not from the start.
    filters = [r.query for r in graph_server.requests.find(path="/auditLogs/signIns")]
    assert "2026-10-01T06:02:00Z" in str(filters[-2])  # newest Miro sign-in 08:02 - 2 h
    # A new sign-in arrives; an explicit --since re-reads everything: still exact.
    graph_server.tenant.sign_ins.append(
        {"userPrincipalName": ADA, "appId": MIRO, "createdDateTime": "2026-10-07T16:00:00Z"}
    )
    third = pull(
        engine, usage_reads, since=dt.datetime(2026, 9, 1, tzinfo=dt.UTC), parts=["sign-ins"]
    )
    assert [p.events for p in third.parts] == [1, 0]
    assert (ADA, MIRO, "2026-10-07", 0, 1) in daily(engine)
    assert (ADA, MIRO, "2026-10-01", 0, 3) in daily(engine)


def test_cli_pull_says_why_reports_were_refused(
    graph_server: GraphServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from reclaim.cli import app

    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    monkeypatch.setenv("TEST_GRAPH_SECRET", CLIENT_SECRET)
    graph_server.tenant.display_concealed_names = True
    config = tmp_path / "reclaim.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "entra:\n"
        f"  tenant_id: {graph_server.tenant.tenant_id}\n"
        f"  client_id: {CLIENT_ID}\n"
        "  client_secret: env:TEST_GRAPH_SECRET\n"
        f"  authority_host: {graph_server.base_url}\n"
        f"  graph_url: {graph_server.base_url}\n"
        "policies:\n"
        "  - name: Miro\n"
        f"    apps: [Miro, {MIRO}]\n"
        "    group: {name: Miro users}\n"
        "    workflow: manual\n"
        "    seat_cost: {amount: 8}\n"
    )
    result = CliRunner().invoke(
        app, ["usage", "pull", "--since", "2026-09-01", "--config", str(config)]
    )
    assert result.exit_code == 1, result.stderr
    assert f"sign-ins {MIRO}: imported: 3 rows, 3 new uses" in result.stdout
    assert "report getOffice365ActiveUserDetail: refused" in result.stderr
    assert "conceals user names" in result.stdout
