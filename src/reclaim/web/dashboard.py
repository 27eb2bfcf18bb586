"""The dashboard's numbers: savings, seats reclaimed, the campaign funnel, monthly
trends, what needs attention, and usage sources, imports and policies.

Savings come from ``services.report.savings_report`` through the app's
:class:`~reclaim.web.savings_cache.SavingsCache`, so they are the numbers
``reclaim report`` prints for the same data; the rest are aggregate queries
(``web/report_queries.py``).

The slow parts (savings, funnel, trends) wait at most ``wait`` seconds for a
recomputation: after a change in a large store the page answers at once with the last
figures (or none yet) and says they are being recomputed (``recomputing``); attention
items, sources and imports are always read fresh.
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
from reclaim.web.savings_cache import SavingsCache, within

RECENT_IMPORTS = 10
AGGREGATES = ("funnel", "reclaimed", "monthly", "policies")  # cached together


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
    policies: list[dict[str, Any]] | None  # None: not read yet (recomputing)
    savings: dict[str, Any] | None = None  # None: not computed yet (recomputing)
    funnel: dict[str, Any] | None = None  # None with reclaimed and monthly: not computed yet
    reclaimed: dict[str, int] | None = field(default_factory=dict)
    monthly: dict[str, Any] | None = field(default_factory=dict)
    attention: list[Attention] = field(default_factory=list)
    savings_computed: dt.datetime | None = None
    recomputing: bool = False  # some figures are older than the data, or missing


def _seen(
    ctx: Context, *, cache: SavingsCache, now: dt.datetime, newest: tuple[Any, ...]
) -> tuple[int, int]:
    """(people seen, applications seen). Both are only ever added, never deleted, so
    the counts move only with the newest ids: counted again then (a count reads the
    whole table, ~0.1 s at 500,000 people), else taken from the cache."""

    def count() -> tuple[int, int]:
        with ctx.engine.connect() as conn:
            n_users = conn.execute(select(func.count()).select_from(users)).scalar_one()
            n_apps = conn.execute(select(func.count()).select_from(apps)).scalar_one()
        return int(n_users), int(n_apps)

    found: tuple[int, int] = cache.lookup(
        ctx.engine, "seen", count, now=now, extra=newest, base=()
    ).value
    return found


def build_dashboard(
    ctx: Context, *, now: dt.datetime, cache: SavingsCache, wait: float | None = None
) -> Dashboard:
    """Read the numbers (the slow ones from ``cache``, waiting up to ``wait`` seconds)."""

    def aggregates() -> dict[str, Any]:
        with ctx.engine.connect() as conn:
            return {
                "funnel": funnel(conn),
                "reclaimed": reclaimed_counts(conn, now=now),
                "monthly": reclaimed_by_month(conn, ctx.settings, today=now.date()),
                "policies": list_policies(ctx),
            }

    base = cache.fingerprint(ctx.engine, now)  # once for both lookups
    report, agg = within(
        wait,
        lambda w: cache.savings(ctx.engine, ctx.settings, now=now, wait=w, base=base),
        lambda w: cache.lookup(ctx.engine, "dashboard", aggregates, now=now, wait=w, base=base),
    )
    # Nothing cached yet (the first view after a start): the page says "computing…".
    figures: dict[str, Any] = agg.value or dict.fromkeys(AGGREGATES)
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
        newest = conn.execute(
            select(
                select(func.max(users.c.id)).scalar_subquery(),
                select(func.max(apps.c.id)).scalar_subquery(),
            )
        ).one()
    users_seen, apps_seen = _seen(ctx, cache=cache, now=now, newest=tuple(newest))
    return Dashboard(
        sources=src,
        recent_imports=recent,
        imports_total=int(imports_total),
        events_accepted=sum(int(s["rows_accepted"]) for s in src),
        events_rejected=sum(int(s["rows_rejected"]) for s in src),
        users_seen=int(users_seen),
        apps_seen=int(apps_seen),
        policies=figures["policies"],
        savings=report.value,
        funnel=figures["funnel"],
        reclaimed=figures["reclaimed"],
        monthly=figures["monthly"],
        attention=needs,
        savings_computed=report.computed_at,
        recomputing=not (report.fresh and agg.fresh),
    )
