"""The dashboard's numbers: usage sources, imports, people and apps seen, policies.

Slots for what Issue 3's report service computes (savings, response funnel,
candidates) are returned as ``None`` until that service is wired in; the template
shows them as "not available yet" rather than as zeros, which would be a lie.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from reclaim.bootstrap import Context
from reclaim.store.tables import apps, imports, sources, users
from reclaim.web.policies_view import list_policies

RECENT_IMPORTS = 10


@dataclass
class Dashboard:
    """Everything the dashboard page shows."""

    sources: list[dict[str, Any]]
    recent_imports: list[dict[str, Any]]
    imports_total: int
    events_accepted: int
    events_rejected: int
    users_seen: int
    apps_seen: int
    policies: list[dict[str, Any]]
    # Integration point (Issue 3): services/report.py fills these.
    savings: dict[str, Any] | None = None
    funnel: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def build_dashboard(ctx: Context) -> Dashboard:
    """Read the numbers in one connection (a consistent snapshot on both databases)."""
    with ctx.engine.connect() as conn:
        src = [
            dict(r._mapping)
            for r in conn.execute(
                select(
                    sources.c.name,
                    sources.c.kind,
                    sources.c.last_received,
                    sources.c.rows_accepted,
                    sources.c.rows_rejected,
                ).order_by(sources.c.name)
            )
        ]
        recent = [
            {**dict(r._mapping), "file_name": os.path.basename(r.file_name)}
            for r in conn.execute(
                select(
                    imports.c.id,
                    imports.c.file_name,
                    imports.c.format,
                    imports.c.finished,
                    imports.c.rows_accepted,
                    imports.c.rows_rejected,
                    sources.c.name.label("source"),
                )
                .join(sources, sources.c.id == imports.c.source_id)
                .order_by(imports.c.id.desc())
                .limit(RECENT_IMPORTS)
            )
        ]
        imports_total = conn.execute(select(func.count()).select_from(imports)).scalar_one()
        users_seen = conn.execute(select(func.count()).select_from(users)).scalar_one()
        apps_seen = conn.execute(select(func.count()).select_from(apps)).scalar_one()
    return Dashboard(
        sources=src,
        recent_imports=recent,
        imports_total=int(imports_total),
        events_accepted=sum(int(s["rows_accepted"]) for s in src),
        events_rejected=sum(int(s["rows_rejected"]) for s in src),
        users_seen=int(users_seen),
        apps_seen=int(apps_seen),
        policies=list_policies(ctx),
    )
