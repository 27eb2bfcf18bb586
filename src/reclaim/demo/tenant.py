"""The demo's Entra ID tenant as a tenant file for the bundled Graph server.

:func:`tenant_document` turns a generated :class:`~reclaim.demo.people.DemoOrg` into the
tenant file format of ``docs/graph-server.md``: SKUs with seats to spare, users (hybrid
identities with SIDs, cloud-only ones, guests), the license groups with each member's
grant time, a synced and a dynamic license group, and a few groups that grant nothing.

The file holds no app credential: the demo registers its app with a fresh secret when
it starts the server (:func:`load_demo_tenant`), so the file is the same for the same
seed and never holds a secret.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path
from typing import Any

from reclaim.demo.catalog import DOMAIN, OTHER_GROUPS, PRODUCTS, Product
from reclaim.demo.people import DemoOrg
from reclaim.testing.graph import Tenant, load_tenant

_ID_NAMESPACE = uuid.UUID("0c9b7d1e-2f3a-4b5c-8d6e-7f8091a2b3c4")
SEAT_HEADROOM = 1.1  # seats bought per seat assigned: a realistic buffer


def tenant_id(seed: int) -> str:
    """The demo tenant's id for a seed."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"tenant:{seed}"))


def client_id(seed: int) -> str:
    """The demo app registration's client id for a seed."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"client:{seed}"))


def group_id(seed: int, name: str) -> str:
    """A group's object id (stable for a seed and group name)."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"group:{seed}:{name}"))


def _at(day: dt.date, rng: random.Random) -> str:
    return f"{day.isoformat()}T{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:00Z"


def _group(
    org: DemoOrg, product: Product, ids: dict[str, str], rng: random.Random
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": group_id(org.seed, product.group),
        "displayName": product.group,
        "description": f"Grants {product.name}",
        "assignedLicenses": [{"skuId": product.sku_id}],
        "members": [
            {"id": ids[h.upn], "since": _at(h.granted, rng)} for h in org.holdings[product.name]
        ],
    }
    if product.kind == "synced":
        rid = 5000 + PRODUCTS.index(product)
        doc |= {
            "onPremisesSyncEnabled": True,
            "onPremisesSamAccountName": product.group,
            "onPremisesSecurityIdentifier": f"S-1-5-21-3623811015-3361044348-30300820-{rid}",
        }
    if product.kind == "dynamic":
        doc |= {"groupTypes": ["DynamicMembership"], "membershipRule": product.rule}
    return doc


def _ids(org: DemoOrg) -> dict[str, str]:
    return {p.upn: p.object_id for p in org.people}


def _users(org: DemoOrg, rng: random.Random) -> list[dict[str, Any]]:
    direct: dict[str, list[str]] = {}
    for product in PRODUCTS:
        for h in org.holdings[product.name]:
            if h.direct:
                direct.setdefault(h.upn, []).append(product.sku)
    users = []
    for p in org.people:
        created = org.today - dt.timedelta(days=rng.randint(30, 2500))
        doc: dict[str, Any] = {
            "id": p.object_id,
            "userPrincipalName": p.upn,
            "displayName": p.display_name,
            "mail": None if p.guest else p.upn,
            "accountEnabled": True,
            "userType": "Guest" if p.guest else "Member",
            "department": p.department,
            "createdDateTime": _at(created, rng),
        }
        if p.synced:
            doc |= {
                "onPremisesSyncEnabled": True,
                "onPremisesSamAccountName": p.sam,
                "onPremisesSecurityIdentifier": p.sid,
            }
        if p.upn in direct:
            doc["licenses"] = direct[p.upn]
        users.append(doc)
    return users


def tenant_document(org: DemoOrg) -> dict[str, Any]:
    """The tenant file's contents (JSON-ready) for a generated organization."""
    rng = random.Random(org.seed + 2)
    held = {p.name: len(org.holdings[p.name]) for p in PRODUCTS}
    direct = {p.name: sum(h.direct for h in org.holdings[p.name]) for p in PRODUCTS}
    ids = _ids(org)
    others = []
    for name, kind in OTHER_GROUPS:
        members = [ids[p.upn] for p in org.people if not p.guest and rng.random() < 0.3]
        doc: dict[str, Any] = {"id": group_id(org.seed, name), "displayName": name}
        if kind == "synced":
            doc["onPremisesSyncEnabled"] = True
        doc["members"] = members
        others.append(doc)
    return {
        "tenantId": tenant_id(org.seed),
        "displayName": "Contoso (Reclaim demo)",
        "defaultDomain": DOMAIN,
        "clients": [],
        "skus": [
            {
                "skuPartNumber": p.sku,
                "skuId": p.sku_id,
                "prepaidUnits": {
                    "enabled": max(5, int((held[p.name] + direct[p.name]) * SEAT_HEADROOM) + 1)
                },
            }
            for p in PRODUCTS
        ],
        "users": _users(org, rng),
        "groups": [_group(org, p, ids, rng) for p in PRODUCTS] + others,
    }


def write_tenant(org: DemoOrg, path: Path) -> dict[str, Any]:
    """Write the tenant file (JSON); returns its contents."""
    doc = tenant_document(org)
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return doc


def load_demo_tenant(path: Path, *, client: str, secret: str) -> Tenant:
    """Load the tenant file, register the demo app, and date group licenses.

    The server stamps a group-based license with the time the member was added, which
    for a loaded file is "now"; Entra's ``lastUpdatedDateTime`` is when the license was
    granted, so each group license is re-dated to the member's ``since`` (otherwise
    every holder would look like a new joiner in the grace period).
    """
    tenant = load_tenant(path)
    tenant.add_client(client, secret, display_name="Reclaim demo")
    for group in tenant.groups.values():
        for member in group.members.values():
            user = tenant.users.get(member.member_id)
            if user is None or member.since is None:
                continue
            for state in user.license_states:
                if state.assigned_by_group == group.id:
                    state.last_updated = member.since
    return tenant
