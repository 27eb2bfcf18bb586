"""Directory sync of Entra policies into the store, against the Graph test server."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from reclaim.connectors.graph import GraphClient
from reclaim.domain.policy import Policy, Workflow
from reclaim.services.entra_sync import SyncReport, stored_group, sync_policy
from reclaim.store.identity_tables import identities
from reclaim.store.policies import policy_id
from reclaim.store.tables import memberships, users
from reclaim.testing.graph import GraphServer

from .conftest import (
    ALICE,
    BIG,
    BIG_GROUP,
    CLIENT_ID,
    DOMAIN,
    DORA,
    DYNAMIC_GROUP,
    E3_GROUP,
    E3_SKU,
    ERIN,
    GRANTED,
    OBRIEN,
    SYNCED_GROUP,
    UPNS,
    policy,
)

NOW = dt.datetime(2026, 11, 28, 8, 0, tzinfo=dt.UTC)
E3 = policy("E3", E3_GROUP)
BIGP = policy("Big", BIG_GROUP)
ALL = (E3, BIGP)


def sync(engine: Engine, client: GraphClient, pol: Policy, **kw: Any) -> SyncReport:
    configured = kw.pop("configured", ALL)
    return sync_policy(engine, client, pol, configured=configured, now=NOW, **kw)


def active_members(engine: Engine, name: str) -> dict[str, tuple[int, str]]:
    """UPN → (granted_at, granted_source) of the policy's active members."""
    with engine.connect() as conn:
        pid = policy_id(conn, name)
        rows = conn.execute(
            select(users.c.upn, memberships.c.granted_at, memberships.c.granted_source)
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.policy_id == pid, memberships.c.active.is_(True))
        )
        return {r.upn: (r.granted_at, r.granted_source) for r in rows}


def test_big_group_full_then_delta_without_rereading(
    engine: Engine, big_server: GraphServer, client: GraphClient
) -> None:
    server = big_server
    first = sync(engine, client, BIGP)
    assert (first.mode, first.members, first.joined, first.left) == ("full", BIG, BIG, 0)
    # 2,500 members at $top=999: three pages of GET /groups/{id}/members.
    assert server.requests.count("GET", rf"/groups/{BIG_GROUP}/members$") >= 3
    with engine.connect() as conn:
        state = stored_group(conn, policy_id(conn, "Big") or 0)
    assert state is not None and state["delta_link"] and state["member_count"] == BIG

    gone = f"big00007@{DOMAIN}"
    server.tenant.remove_member(BIG_GROUP, gone)
    server.tenant.add_member(BIG_GROUP, ERIN)
    server.requests.clear()

    second = sync(engine, client, BIGP)

    assert (second.mode, second.members, second.joined, second.left) == ("delta", BIG, 1, 1)
    assert server.requests.count("GET", rf"/groups/{BIG_GROUP}/members") == 0  # no re-read
    assert server.requests.count("GET", r"/groups/delta") >= 1
    members = active_members(engine, "Big")
    assert gone not in members and UPNS[ERIN] in members and len(members) == BIG

    third = sync(engine, client, BIGP, full=True)  # --full replaces, same result
    assert (third.mode, third.members, third.joined, third.left) == ("full", BIG, 0, 0)


def test_delta_on_licensed_group_keeps_grants(
    engine: Engine, server: GraphServer, client: GraphClient
) -> None:
    sync(engine, client, E3)
    server.tenant.users[ERIN].account_enabled = False
    server.tenant.remove_member(E3_GROUP, OBRIEN)
    server.tenant.add_member(E3_GROUP, ERIN)
    report = sync(engine, client, E3)
    assert (report.mode, report.left, report.joined, report.disabled) == ("delta", 1, 1, 1)
    again = sync(engine, client, E3)  # nothing changed: flags come from the stored members
    assert (again.mode, again.joined, again.left, again.disabled) == ("delta", 0, 0, 1)
    members = active_members(engine, "E3")
    assert UPNS[OBRIEN] not in members
    assert members[UPNS[ALICE]] == (int(GRANTED.timestamp()), "directory")
    assert report.direct_license_users == [UPNS[DORA]]  # kept from the stored members


def test_awkward_upns_grant_dates_direct_licenses_identities(
    engine: Engine, server: GraphServer, client: GraphClient
) -> None:
    report = sync(engine, client, E3)

    members = active_members(engine, "E3")
    expected = {UPNS[u].lower() for u in UPNS if u != ERIN}
    assert set(members) == expected  # guest #EXT#, o'brien, $admin included
    assert members[UPNS[ALICE]] == (int(GRANTED.timestamp()), "directory")
    assert report.direct_license_users == [UPNS[DORA]]
    assert not report.dynamic and not report.synced and report.warnings == []
    with engine.connect() as conn:
        state = stored_group(conn, policy_id(conn, "E3") or 0)
        ident = conn.execute(
            select(identities)
            .join(users, users.c.id == identities.c.user_id)
            .where(users.c.upn == UPNS[ALICE])
        ).one()
    assert state is not None and state["sku_ids"] == [E3_SKU]
    assert state["direct_license_count"] == 1 and state["display_name"] == "E3 Users"
    assert (ident.entra_object_id, ident.on_prem_sid, ident.sam_account_name) == (
        ALICE,
        "S-1-5-21-1-2-3-1101",
        "alice",
    )
    assert ident.source == "entra"


def test_dynamic_group_is_reported_and_never_written(
    engine: Engine, server: GraphServer, client: GraphClient
) -> None:
    dyn = policy("Dyn", DYNAMIC_GROUP)
    report = sync(engine, client, dyn, configured=(dyn,))
    assert report.dynamic and any("dynamic membership" in w for w in report.warnings)
    assert report.members == 1
    writes = [r for r in server.requests.all() if r.method in ("POST", "DELETE", "PATCH")]
    assert [w.path for w in writes if "token" not in w.path] == []


@pytest.mark.parametrize("workflow", [Workflow.ENTRA_ID, Workflow.ONPREM_AD])
def test_synced_group_flagged_for_entra_policies(
    engine: Engine, server: GraphServer, client: GraphClient, workflow: Workflow
) -> None:
    syn = policy("Syn", SYNCED_GROUP, workflow)
    report = sync(engine, client, syn, configured=(syn,))
    assert report.synced
    flagged = [w for w in report.warnings if "onprem_ad" in w]
    assert len(flagged) == (1 if workflow is Workflow.ENTRA_ID else 0)


def test_cli_directory_sync_json(
    server: GraphServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reclaim.cli import app

    from .conftest import CLIENT_SECRET

    monkeypatch.setenv("RECLAIM_TEST_ENTRA_SECRET", CLIENT_SECRET)
    config = tmp_path / "reclaim.yaml"
    config.write_text(
        f"data_dir: {tmp_path}\n"
        "entra:\n"
        f"  tenant_id: {server.tenant.tenant_id}\n"
        f"  client_id: {CLIENT_ID}\n"
        "  client_secret: env:RECLAIM_TEST_ENTRA_SECRET\n"
        f"  authority_host: {server.base_url}\n"
        f"  graph_url: {server.base_url}\n"
        "policies:\n"
        "  - name: E3\n"
        "    apps: [excel]\n"
        f"    group: {{entra_id: {E3_GROUP}}}\n"
        "    workflow: entra_id\n"
        "    seat_cost: {amount: 20}\n"
        "  - name: Syn\n"
        "    apps: [excel]\n"
        f"    group: {{entra_id: {SYNCED_GROUP}}}\n"
        "    workflow: entra_id\n"
        "    seat_cost: {amount: 20}\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(app, ["directory", "sync", "--json", "-c", str(config)])
    assert result.exit_code == 0, result.output
    reports = {r["policy"]: r for r in json.loads(result.stdout)}
    assert reports["E3"]["members"] == 5 and reports["E3"]["mode"] == "full"
    assert reports["E3"]["direct_license_users"] == [UPNS[DORA]]
    assert reports["Syn"]["synced"] and "onprem_ad" in reports["Syn"]["warnings"][0]

    text = runner.invoke(app, ["directory", "sync", "--policy", "E3", "-c", str(config)])
    assert text.exit_code == 0, text.output
    assert "delta round" in text.stdout and "also licensed directly" in text.stdout


def test_expired_delta_link_falls_back_to_a_full_round(
    engine: Engine, server: GraphServer, client: GraphClient
) -> None:
    from reclaim.testing.graph import FaultRule

    sync(engine, client, E3)
    server.tenant.remove_member(E3_GROUP, OBRIEN)
    server.faults.add(FaultRule("status", count=1, status=410, path=r"/groups/delta"))
    server.requests.clear()

    report = sync(engine, client, E3)

    assert report.mode == "full" and any("expired" in w for w in report.warnings)
    assert (report.members, report.left) == (4, 1)
    assert server.requests.count("GET", rf"/groups/{E3_GROUP}/members$") == 1
    after = sync(engine, client, E3)  # the link stored by the full round works
    assert (after.mode, after.joined, after.left) == ("delta", 0, 0)
