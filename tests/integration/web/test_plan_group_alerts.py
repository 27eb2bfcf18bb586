"""The web plan page and the plans API show the alert for a group Reclaim can never
write (here: dynamic membership, as the last directory sync stored it)."""

from __future__ import annotations

import html
import json

import httpx
import pytest
from sqlalchemy import insert

from reclaim.store.directory_tables import directory_groups
from reclaim.store.policies import policy_id

from .conftest import WebEnv, sign_in

pytestmark = pytest.mark.anyio
VISIO_GROUP = "0f1e2d3c-0000-4000-8000-000000000001"


def store_group(web: WebEnv, *, dynamic: bool) -> None:
    with web.ctx.engine.begin() as conn:
        pid = policy_id(conn, "Visio")
        assert pid is not None
        conn.execute(
            insert(directory_groups).values(
                policy_id=pid,
                object_id=VISIO_GROUP,
                display_name="Visio Users",
                is_dynamic=dynamic,
                is_synced=False,
                sku_ids=json.dumps([]),
                delta_link=None,
                member_count=0,
                direct_license_count=0,
                synced_at=int(web.clock().timestamp()),
            )
        )


async def test_plan_page_shows_the_dynamic_group_alert(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    store_group(web, dynamic=True)
    made = await client.post(
        "/api/v1/plans", json={"policy": "Visio"}, headers=web.auth("operator")
    )
    assert made.status_code == 201, made.text
    alerts = made.json()["content"]["alerts"]
    assert any("dynamic membership: change the rule" in a for a in alerts), alerts
    await sign_in(client)
    page = await client.get(f"/plans/{made.json()['id']}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "'Visio Users'" in text and "dynamic membership: change the rule" in text


async def test_plan_page_says_when_no_sync_checked_the_group(
    web: WebEnv, client: httpx.AsyncClient
) -> None:
    made = await client.post(
        "/api/v1/plans", json={"policy": "Visio"}, headers=web.auth("operator")
    )
    await sign_in(client)
    page = await client.get(f"/plans/{made.json()['id']}")
    assert "no directory sync has run for this policy yet" in html.unescape(page.text)
