"""The dashboard's numbers: savings, seats reclaimed, the campaign funnel, monthly
trends, what needs attention, and usage sources, imports and policies.

Savings come from ``services.report.savings_report`` through the app's
:class:`~reclaim.web.savings_cache.SavingsCache`, so they are the numbers
``reclaim report`` prints for the same data; the rest are aggregate queries
(``web/report_queries.py``).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from reclaim.bootstrap import Context
from reclaim.store.tables import apps, imports, sources, users
from reclaim.web.policies_view import list_policies
from reclaim.web.report_queries import (
    Attention,
    attention,
    funnel,
    reclaimed_by_month,
    reclaimed_counts,
)
from reclaim.web.savings_cache import SavingsCache

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
    savings: dict[str, Any] | None = None
    funnel: dict[str, Any] | None = None
    reclaimed: dict[str, int] = field(default_factory=dict)
    monthly: dict[str, Any] = field(default_factory=dict)
    attention: list[Attention] = field(default_factory=list)
    savings_computed: dt.datetime | None = None


def build_dashboard(ctx: Context, *, now: dt.datetime, cache: SavingsCache) -> Dashboard:
    """Read the numbers (the savings report from ``cache``, the rest in one connection)."""
    report = cache.get(ctx.engine, ctx.settings, now=now)

    def aggregates() -> dict[str, Any]:
        with ctx.engine.connect() as conn:
            return {
                "funnel": funnel(conn),
                "reclaimed": reclaimed_counts(conn, now=now),
                "monthly": reclaimed_by_month(conn, ctx.settings, today=now.date()),
                "policies": list_policies(ctx),
            }

    agg = cache.derived(ctx.engine, "dashboard", aggregates, now=now)
    with ctx.engine.connect() as conn:
        needs = attention(conn, ctx.settings, now=now)
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
        policies=agg["policies"],
        savings=report,
        funnel=agg["funnel"],
        reclaimed=agg["reclaimed"],
        monthly=agg["monthly"],
        attention=needs,
        savings_computed=cache.computed_at,
    )
