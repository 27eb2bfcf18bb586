"""Sign-in logs, usage reports (302 → CSV) and concealed names."""

from __future__ import annotations

import csv
import io

import httpx

from reclaim.testing.graph import GraphServer, ManualClock

from .conftest import DOMAIN, assert_graph_error

APP_A = "aaaa0000-0000-0000-0000-00000000000a"
APP_B = "bbbb0000-0000-0000-0000-00000000000b"


def _seed_sign_ins(server: GraphServer) -> None:
    server.tenant.sign_ins = [
        {
            "userPrincipalName": f"alice@{DOMAIN}",
            "appId": APP_A,
            "appDisplayName": "Visio",
            "createdDateTime": "2024-05-01T08:00:00Z",
        },
        {
            "userPrincipalName": f"bob@{DOMAIN}",
            "appId": APP_B,
            "appDisplayName": "Other",
            "createdDateTime": "2024-05-02T08:00:00Z",
        },
        {
            "userPrincipalName": f"bob@{DOMAIN}",
            "appId": APP_A,
            "appDisplayName": "Visio",
            "createdDateTime": "2024-04-01T08:00:00Z",
        },
    ]


def test_sign_ins_filter_by_app_and_date(server: GraphServer, client: httpx.Client) -> None:
    _seed_sign_ins(server)
    flt = f"appId eq '{APP_A}' and createdDateTime ge 2024-04-15T00:00:00Z"
    body = client.get("/auditLogs/signIns", params={"$filter": flt}).json()
    assert [e["userPrincipalName"] for e in body["value"]] == [f"alice@{DOMAIN}"]
    assert body["value"][0]["userId"] == "a11ce000-0000-0000-0000-000000000001"
    everything = client.get("/auditLogs/signIns").json()["value"]
    assert [e["createdDateTime"][:10] for e in everything] == [
        "2024-05-02",
        "2024-05-01",
        "2024-04-01",
    ]


def test_sign_ins_paging(server: GraphServer, client: httpx.Client) -> None:
    _seed_sign_ins(server)
    first = client.get("/auditLogs/signIns", params={"$top": "2"}).json()
    second = client.get(first["@odata.nextLink"]).json()
    assert len(first["value"]) == 2
    assert len(second["value"]) == 1
    assert "@odata.nextLink" not in second


def test_sign_ins_limit_5_per_10_seconds(
    server: GraphServer, client: httpx.Client, clock: ManualClock
) -> None:
    statuses = [client.get("/auditLogs/signIns").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    clock.advance(2)
    assert client.get("/auditLogs/signIns").status_code == 200


def test_report_redirects_to_csv(client: httpx.Client) -> None:
    resp = client.get("/reports/getOffice365ActiveUserDetail(period='D30')")
    assert resp.status_code == 302
    download = client.get(resp.headers["Location"])  # pre-authenticated, like the real URL
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert {r["User Principal Name"] for r in rows} >= {f"alice@{DOMAIN}", f"bob@{DOMAIN}"}
    assert "Teams Last Activity Date" in rows[0]


def test_app_user_detail_uses_tenant_rows(server: GraphServer, client: httpx.Client) -> None:
    server.tenant.usage_reports["m365AppUserDetail"] = [
        {
            "User Principal Name": f"alice@{DOMAIN}",
            "Last Activity Date": "2024-05-03",
            "Teams": "Yes",
        }
    ]
    resp = client.get("/reports/getM365AppUserDetail(period='D30')", follow_redirects=True)
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows == [rows[0]]
    assert rows[0]["Teams"] == "Yes"
    assert rows[0]["Report Period"] == "30"


def test_concealed_names_hash_user_columns(server: GraphServer, client: httpx.Client) -> None:
    assert client.get("/admin/reportSettings").json()["displayConcealedNames"] is False
    assert (
        client.patch("/admin/reportSettings", json={"displayConcealedNames": True}).status_code
        == 204
    )
    resp = client.get("/reports/getOffice365ActiveUserDetail(period='D7')", follow_redirects=True)
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    upns = {r["User Principal Name"] for r in rows}
    assert f"alice@{DOMAIN}" not in upns
    assert all(len(u) == 32 for u in upns)


def test_bad_period_is_400(client: httpx.Client) -> None:
    resp = client.get("/reports/getOffice365ActiveUserDetail(period='D31')")
    assert_graph_error(resp, 400, "BadRequest")


def test_report_limit_is_per_report_api(server: GraphServer, client: httpx.Client) -> None:
    url = "/reports/getOffice365ActiveUserDetail(period='D30')"
    statuses = [client.get(url).status_code for _ in range(15)]
    assert statuses == [302] * 14 + [429]
    assert client.get("/reports/getM365AppUserDetail(period='D30')").status_code == 302
