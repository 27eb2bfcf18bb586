"""Policies for the API and the pages: the configuration joined with the store's copy."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, select

from reclaim.bootstrap import Context
from reclaim.store.tables import memberships, policies


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def list_policies(ctx: Context) -> list[dict[str, Any]]:
    """Every stored policy, configured ones first, each with its active member count.

    A policy removed from the file stays in the store (disabled) so that its history
    can still be read; it is listed with ``in_config`` false and its last definition.
    """
    configured = {p.name: p for p in ctx.settings.policies}
    members = (
        select(memberships.c.policy_id, func.count().label("n"))
        .where(memberships.c.active)
        .group_by(memberships.c.policy_id)
        .subquery()
    )
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(policies, func.coalesce(members.c.n, 0).label("members"))
            .outerjoin(members, members.c.policy_id == policies.c.id)
            .order_by(policies.c.name)
        ).all()
    out = []
    for row in rows:
        policy = configured.get(row.name)
        definition = (
            policy.model_dump(mode="json") if policy is not None else json.loads(row.definition)
        )
        out.append(
            {
                "id": row.id,
                "name": row.name,
                "enabled": bool(row.enabled),
                "in_config": policy is not None,
                "updated": _iso(row.updated),
                "members": int(row.members),
                "definition": definition,
            }
        )
    out.sort(key=lambda p: (not p["in_config"], p["name"].lower()))
    return out


def get_policy(ctx: Context, name: str) -> dict[str, Any] | None:
    """One policy by name (case-insensitive), or None."""
    for policy in list_policies(ctx):
        if policy["name"].lower() == name.lower():
            return policy
    return None
