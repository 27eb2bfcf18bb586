"""Plans as the API and pages show them: paged lists, and one plan with its impact.

**Impact** answers "what else does each person lose when they leave this group?": a
group can grant more than the one product a policy is about. Every other configured
policy whose license group is the same group is listed, with the planned people who
are members of it too, and the SKUs the directory sync saw the group grant.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Engine, select

from reclaim.config import Settings
from reclaim.domain.policy import GroupRef, Policy
from reclaim.store.directory_tables import directory_groups
from reclaim.store.plans import StoredPlan, load_plan
from reclaim.store.tables import memberships, plans, policies, users
from reclaim.web.case_queries import iso
from reclaim.web.paging import cursor_int, decode_cursor, encode_cursor

PLAN_STATUSES = ("proposed", "awaiting_approval", "applied", "approved", "rejected")


def summary(p: StoredPlan) -> dict[str, Any]:
    """A plan as listed."""
    return {
        "id": p.id,
        "kind": p.kind,
        "status": p.status,
        "created_at": iso(p.created_at),
        "policies": [x["policy"] for x in p.content.get("policies", [])],
        "decided_by": p.decided_by,
        "decided_at": iso(p.decided_at),
    }


def plan_page(
    engine: Engine, *, limit: int, cursor: str | None, status: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of plans, newest first, and the next cursor."""
    before = cursor_int(decode_cursor(cursor), "before")
    query = select(plans).order_by(plans.c.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(plans.c.id < before)
    if status:
        query = query.where(plans.c.status == status)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found = [
        StoredPlan(
            id=int(r.id),
            kind=r.kind,
            status=r.status,
            created_at=int(r.created_at),
            content=json.loads(r.content),
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            note=r.note,
        )
        for r in rows
    ]
    more = len(found) > limit
    found = found[:limit]
    nxt = encode_cursor({"before": found[-1].id}) if more and found else None
    return [summary(p) for p in found], nxt


def _group_key(g: GroupRef) -> tuple[str, str]:
    """What identifies a group across policies: the strongest reference it has."""
    for kind, value in (
        ("entra_id", g.entra_id),
        ("ad_sid", g.ad_sid),
        ("ad_dn", g.ad_dn and g.ad_dn.lower()),
        ("ad_sam", g.ad_sam and g.ad_sam.lower()),
        ("name", g.name and g.name.lower()),
    ):
        if value:
            return kind, value
    return "none", ""


def impact(conn: Connection, plan: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Per policy in ``plan``: the other policies sharing its group, which planned users
    hold them, and the SKUs the group grants (when the directory sync has read it)."""
    configured = {p.name: p for p in settings.policies}
    by_group: dict[tuple[str, str], list[Policy]] = defaultdict(list)
    for p in settings.policies:
        by_group[_group_key(p.group)].append(p)
    ids = {str(n): int(i) for i, n in conn.execute(select(policies.c.id, policies.c.name))}
    out: dict[str, Any] = {}
    for part in plan.get("policies", []):
        name = part["policy"]
        policy = configured.get(name)
        if policy is None:
            out[name] = {"group": None, "shared_with": [], "users": {}, "skus": []}
            continue
        others = [o for o in by_group[_group_key(policy.group)] if o.name != name]
        planned = sorted({i["user"] for i in part.get("items", []) if i["action"] == "remove"})
        holders: dict[str, list[str]] = defaultdict(list)
        for other in others:
            if other.name not in ids or not planned:
                continue
            for i in range(0, len(planned), 900):
                rows = conn.execute(
                    select(users.c.upn)
                    .join(memberships, memberships.c.user_id == users.c.id)
                    .where(
                        memberships.c.policy_id == ids[other.name],
                        memberships.c.active.is_(True),
                        users.c.upn.in_(planned[i : i + 900]),
                    )
                )
                for (upn,) in rows:
                    holders[str(upn)].append(other.name)
        skus: list[str] = []
        if name in ids:
            raw = conn.execute(
                select(directory_groups.c.sku_ids).where(directory_groups.c.policy_id == ids[name])
            ).scalar()
            skus = list(json.loads(raw)) if raw else []
        out[name] = {
            "group": policy.group.label(),
            "shared_with": [o.name for o in others],
            "users": dict(sorted(holders.items())),
            "skus": skus,
        }
    return out


def plan_detail(engine: Engine, settings: Settings, plan_id: int) -> dict[str, Any] | None:
    """One stored plan in full, with its impact; None when there is no such plan."""
    with engine.connect() as conn:
        stored = load_plan(conn, plan_id)
        if stored is None:
            return None
        effect = impact(conn, stored.content, settings)
    return plan_out(stored, effect)


def plan_out(stored: StoredPlan, effect: dict[str, Any]) -> dict[str, Any]:
    """The API form of a stored plan."""
    return {**summary(stored), "note": stored.note, "content": stored.content, "impact": effect}


def age_days(stored_created: int, now: dt.datetime) -> int:
    """Whole days since a plan was made."""
    return int((now.timestamp() - stored_created) // 86400)
