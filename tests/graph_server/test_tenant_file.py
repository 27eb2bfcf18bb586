"""Tenant files (YAML and JSON), the in-code builder, and running standalone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from reclaim.testing.graph import GraphServer, load_tenant, running_graph_server

DATA = Path(__file__).parent / "data"
E3_GROUP = "1c9e7a11-0000-4000-8000-00000000e3e3"


@pytest.mark.parametrize("name", ["tenant.yaml", "tenant.json"])
def test_load_tenant_file(name: str) -> None:
    t = load_tenant(DATA / name)
    assert t.tenant_id == "0d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"
    assert len(t.users) == 3
    grace = t.find_user("grace@fabrikam.example")
    assert grace is not None
    assert grace.id == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    e3 = t.groups[E3_GROUP]
    since = e3.members[grace.id].since
    assert since is not None
    assert since.year == 2023
    assert t.is_member("ada@fabrikam.example", "Everyone Licensed", transitive=True)
    assert not t.is_member("ada@fabrikam.example", "Everyone Licensed")
    assert t.require_group("Sales (dynamic)").is_dynamic
    guest = t.find_user("partner_contoso.example#EXT#@fabrikam.example")
    assert guest is not None
    assert guest.is_guest
    assert not guest.account_enabled


def test_tenant_file_licensing_is_applied() -> None:
    t = load_tenant(DATA / "tenant.yaml")
    ada = t.find_user("ada@fabrikam.example")
    assert ada is not None
    states = {(s.sku_id, s.assigned_by_group) for s in ada.license_states}
    e3 = t.resolve_sku("SPE_E3").sku_id
    visio = t.resolve_sku("VISIOCLIENT").sku_id
    assert states == {(visio, None), (e3, E3_GROUP)}


def test_server_from_tenant_file_serves_graph() -> None:
    with running_graph_server(DATA / "tenant.yaml") as srv:
        token = srv.issue_token()
        resp = httpx.get(
            f"{srv.graph_url}/groups/{E3_GROUP}/members",
            headers={"Authorization": f"Bearer {token}"},
            verify=srv.ssl_context(),
        )
        assert {m["userPrincipalName"] for m in resp.json()["value"]} == {
            "ada@fabrikam.example",
            "grace@fabrikam.example",
        }


def test_builder_and_inspection(server: GraphServer) -> None:
    t = server.tenant
    user = t.add_user("new@contoso.example", "New Person")
    group = t.add_group("New Group")
    t.add_member(group.id, user.id)
    assert server.is_member("new@contoso.example", "New Group")
    t.remove_member(group.id, user.id)
    assert not server.is_member(user.id, group.id)
    assert [c.added for c in t.changes[-2:]] == [True, False]


def test_standalone_entry_point(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reclaim.testing.graph",
            "--tenant",
            str(DATA / "tenant.yaml"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        ca_line = next(line for line in lines if "CA file" in line)
        ca_file = ca_line.split(":", 1)[1].split()[0]
        deadline = time.monotonic() + 10
        while True:
            try:
                conf = httpx.get(
                    f"https://127.0.0.1:{port}/0d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6/v2.0/"
                    ".well-known/openid-configuration",
                    verify=__import__("ssl").create_default_context(cafile=ca_file),
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert conf.json()["token_endpoint"].startswith(f"https://127.0.0.1:{port}/")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
