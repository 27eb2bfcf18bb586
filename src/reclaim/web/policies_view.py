"""Policies for the API and the pages: the configuration joined with the store's copy,
and, for each enabled policy, what Reclaim currently thinks of it.

- **verdicts**: how many members get each verdict, evaluated now
  (``services.decisions.evaluate_in_runs``, the same evaluation a cycle runs);
- **savings**: realized and potential, from the savings report
  (``services.report.savings_report`` through the app's cache: ``reclaim report``'s
  numbers);
- **last run**: the newest plan a cycle stored for the policy; **next run**: the
  policy's cron schedule against the tick the scheduler last completed
  (``runner.scheduler``);
- **preview**: who the next run would ask or remove, and what it would hold back. It
  is the plan a cycle would build now (``services.cycle.preview_policy`` and
  ``domain.plan.build_plan``, as ``reclaim plan`` does) without storing it.

The verdicts and the preview are computed together and cached with the savings
report's fingerprint plus what else they depend on (the kill switch, approvals, and
the hour: waits and time-outs move with the clock), so a page view costs a few cheap
queries unless the data changed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from reclaim.bootstrap import Context
from reclaim.domain.case import Action
from reclaim.domain.plan import ItemStatus, build_plan
from reclaim.domain.policy import Policy
from reclaim.runner.scheduler import latest_tick, lease_name, next_tick
from reclaim.services.cycle import paused, preview_policy
from reclaim.services.decisions import evaluate_in_runs
from reclaim.store.plans import approved
from reclaim.store.tables import approved_keys, leases, memberships, plans, policies
from reclaim.web.paging import cursor_int, decode_cursor, encode_cursor
from reclaim.web.problems import Problem
from reclaim.web.savings_cache import Cached, SavingsCache, within

PREVIEW_SHOWN = 10  # preview rows on the policies page; the policy's page pages them all
_HELD = (ItemStatus.DEFERRED_BY_CAP, ItemStatus.HALTED, ItemStatus.BLOCKED_PAUSED)


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


# -- verdicts and the next run's preview ---------------------------------------------------
@dataclass(frozen=True)
class Outlook:
    """One policy's verdicts and the plan its next run would make, as of ``evaluated_at``."""

    verdicts: dict[str, int]
    cap: int
    halted: bool
    alerts: list[str]
    items: list[dict[str, Any]]  # the plan's order: asks by user, then removals by priority
    evaluated_at: str
    # Counted once, when made: every view of the policies page shows them, and a large
    # tenant's previews hold hundreds of thousands of items.
    counts: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tally = Counter((i["action"], i["status"]) for i in self.items)

        def n(action: str, statuses: tuple[str, ...]) -> int:
            return sum(tally[action, s] for s in statuses)

        planned = (ItemStatus.PLANNED.value,)
        held = tuple(s.value for s in (*_HELD, ItemStatus.BLOCKED_GROUP))
        counts = {
            "ask": n(Action.ASK.value, planned),
            "remove": n(Action.REMOVE.value, planned),
            "remove_awaiting_approval": sum(1 for i in self.items if i["needs_approval"]),
            "held": n(Action.ASK.value, held) + n(Action.REMOVE.value, held),
            "total": len(self.items),
        }
        object.__setattr__(self, "counts", counts)  # frozen: set once, here

    def summary(self) -> dict[str, Any]:
        """Counts of the preview (what the API and the page show next to the policy)."""
        return {
            **self.counts,
            "cap": self.cap,
            "halted": self.halted,
            "alerts": self.alerts,
            "evaluated_at": self.evaluated_at,
        }


def _item(item: Any, *, needs_approval: bool) -> dict[str, Any]:
    return {
        "user": item.user,
        "action": item.action.value,
        "status": item.status.value,
        "basis": item.basis.value,
        "reason": item.reason,
        "last_used": item.last_used.isoformat() if item.last_used else None,
        "waiting_since": (
            item.waiting_since.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            if item.waiting_since
            else None
        ),
        "needs_approval": needs_approval,
    }


def _compute_outlooks(ctx: Context, now: dt.datetime) -> dict[str, Outlook]:
    settings = ctx.settings
    enabled = [p for p in settings.policies if p.enabled]
    if not enabled:
        return {}
    # By runs of policies (as the savings report): each policy's verdicts are dropped
    # once its preview is made, so a large tenant's members are not all held at once.
    verdicts = evaluate_in_runs(
        ctx.engine,
        enabled,
        as_of=now.date(),
        now=now,
        freshness_days=settings.usage.freshness_days,
        configured=settings.policies,
    )
    out: dict[str, Outlook] = {}
    with ctx.engine.connect() as conn:
        stopped = paused(conn, settings)
    for pv in verdicts:
        with ctx.engine.connect() as conn:
            policy_input, _, _ = preview_policy(
                conn, pv=pv, policy_id=pv.policy_id, now=now, safety=settings.safety
            )
            plan = build_plan(
                inputs=[policy_input], as_of=now.date(), created_at=now, paused=stopped
            )
            part = plan.policies[0]
            removals = [i.idempotency_key for i in part.items if i.action is Action.REMOVE]
            ok = approved(conn, removals) if part.require_approval else set(removals)
            items = [
                _item(
                    i,
                    needs_approval=i.action is Action.REMOVE
                    and i.status is ItemStatus.PLANNED
                    and i.idempotency_key not in ok,
                )
                for i in part.items
            ]
            out[pv.policy.name] = Outlook(
                verdicts=pv.breakdown(),
                cap=part.cap,
                halted=part.halted,
                alerts=list(part.alerts),
                items=items,
                evaluated_at=_iso(int(now.timestamp())),
            )
    return out


def _volatile(conn: Connection, ctx: Context, now: dt.datetime) -> tuple[Any, ...]:
    """What the preview depends on beyond the savings fingerprint."""
    approvals = conn.execute(select(func.count(), func.max(approved_keys.c.approved_at))).one()
    return (paused(conn, ctx.settings), tuple(approvals), int(now.timestamp()) // 3600)


def outlooks(
    ctx: Context,
    *,
    now: dt.datetime,
    cache: SavingsCache,
    wait: float | None = None,
    base: tuple[Any, ...] | None = None,
) -> Cached:
    """Every enabled policy's :class:`Outlook` by name, from the cache (see the module
    docstring); ``wait`` and ``base`` as in :meth:`SavingsCache.lookup`."""
    with ctx.engine.connect() as conn:
        extra = _volatile(conn, ctx, now)
    return cache.lookup(
        ctx.engine,
        "policy_outlooks",
        lambda: _compute_outlooks(ctx, now),
        now=now,
        extra=extra,
        wait=wait,
        base=base,
    )


# -- runs ----------------------------------------------------------------------------------
def _last_runs(conn: Connection) -> dict[str, dict[str, Any]]:
    """Policy name → the newest plan a cycle stored for it (a cycle plans one policy)."""
    newest = (
        select(func.max(plans.c.id).label("id"))
        .where(plans.c.kind == "run")
        .group_by(plans.c.policies)
        .subquery()
    )
    rows = conn.execute(
        select(plans.c.id, plans.c.policies, plans.c.created_at, plans.c.status).where(
            plans.c.id.in_(select(newest.c.id))
        )
    ).all()
    return {
        r.policies: {"at": _iso(int(r.created_at)), "plan_id": int(r.id), "status": r.status}
        for r in rows
    }


def _next_run(policy: Policy, lease: Any, *, now: dt.datetime, tz: str) -> dict[str, Any] | None:
    """When the scheduler runs the policy next: the latest cron tick if no worker has
    completed it yet (``due``: the next worker poll runs it), else the next tick."""
    if not policy.enabled:
        return None
    now_s = int(now.timestamp())
    latest = latest_tick(policy.schedule, now, tz=tz)
    done = None if lease is None or lease.tick_done < 0 else int(lease.tick_done)
    running = lease is not None and lease.owner is not None and (lease.until or 0) >= now_s
    if done is None or done < int(latest.timestamp()):
        return {"at": _iso(int(latest.timestamp())), "due": True, "running": running}
    following = next_tick(policy.schedule, now, tz=tz)
    return {"at": _iso(int(following.timestamp())), "due": False, "running": running}


# -- what the API and the pages show -------------------------------------------------------
def policy_overview(
    ctx: Context,
    *,
    now: dt.datetime,
    cache: SavingsCache,
    name: str | None = None,
    wait: float | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Every policy (or the one named, case-insensitive) with verdicts, savings, runs
    and the preview's counts, and whether some of those are being recomputed.

    Policies that are disabled or no longer configured get ``None`` for what only an
    evaluation can tell; so do all of them while the first evaluation runs (``wait``
    as in :meth:`SavingsCache.lookup`; None waits for it).
    """
    base = cache.fingerprint(ctx.engine, now)  # once for every lookup
    stored = _stored_policies(ctx, now=now, cache=cache, wait=wait, base=base)
    listed = [dict(p) for p in stored.value]  # shared by every view: each fills in copies
    if name is not None:
        listed = [p for p in listed if p["name"].lower() == name.lower()]
        if not listed:
            return [], False
    report, looked = within(
        wait,
        lambda w: cache.savings(ctx.engine, ctx.settings, now=now, wait=w, base=base),
        lambda w: outlooks(ctx, now=now, cache=cache, wait=w, base=base),
    )
    savings = {row["policy"]: row for row in (report.value or {}).get("policies", [])}
    looks: dict[str, Outlook] = looked.value or {}
    configured = {p.name: p for p in ctx.settings.policies}
    with ctx.engine.connect() as conn:
        last = _last_runs(conn)
        held = {r.name: r for r in conn.execute(select(leases))}
    for p in listed:
        policy = configured.get(p["name"])
        look = looks.get(p["name"])
        row = savings.get(p["name"])
        p["verdicts"] = look.verdicts if look else None
        p["preview"] = look.summary() if look else None
        p["savings"] = (
            None
            if row is None
            else {
                "candidates": row["candidates"],
                "seats_reclaimed": row["seats_reclaimed"],
                "seats_pending": row["seats_pending"],
                "realized": row["realized"],
                "potential": row["potential"],
            }
        )
        p["last_run"] = last.get(p["name"])
        p["next_run"] = (
            None
            if policy is None
            else _next_run(policy, held.get(lease_name(policy)), now=now, tz=ctx.settings.timezone)
        )
    return listed, not (stored.fresh and report.fresh and looked.fresh)


def _stored_policies(
    ctx: Context, *, now: dt.datetime, cache: SavingsCache, wait: float | None, base: Any
) -> Cached:
    """:func:`list_policies` from the cache: its member counts read every membership
    (about 0.3 s at 1.5 million), so they are counted again only when the data changed.
    A page (``wait`` not None) shows the last list meanwhile; the first view, with no
    list yet, and the API wait for it."""

    def lookup(w: float | None) -> Cached:
        return cache.lookup(
            ctx.engine, "policy_list", lambda: list_policies(ctx), now=now, wait=w, base=base
        )

    found = lookup(None if wait is None else 0)
    return found if found.value is not None else lookup(None)


@dataclass(frozen=True)
class PreviewSlice:
    """One page of a policy's preview (``fresh`` False: being recomputed; empty when
    nothing was computed yet)."""

    items: list[dict[str, Any]]
    next: str | None  # the cursor of the next page
    total: int
    start: int  # the position of the first item in the whole preview
    evaluated_at: str | None
    fresh: bool = True


def preview_page(
    ctx: Context,
    name: str,
    *,
    now: dt.datetime,
    cache: SavingsCache,
    limit: int,
    cursor: str | None,
    wait: float | None = None,
) -> PreviewSlice | None:
    """One page of the named policy's preview; ``None`` when no enabled policy has
    that name.

    The preview is a snapshot computed again when the data changes; the cursor is the
    position in it, so a page after a change continues in the new snapshot.
    """
    enabled = [p.name for p in ctx.settings.policies if p.enabled]
    key = next((k for k in enabled if k.lower() == name.lower()), None)
    if key is None:
        return None
    start = cursor_int(decode_cursor(cursor), "after") or 0
    if start < 0:
        raise Problem(400, "The cursor is not valid; start again without one.")
    looked = outlooks(ctx, now=now, cache=cache, wait=wait)
    look: Outlook | None = (looked.value or {}).get(key)
    if look is None:
        return PreviewSlice([], None, 0, start, None, fresh=False)
    items = look.items[start : start + limit]
    end = start + len(items)
    nxt = encode_cursor({"after": end}) if end < len(look.items) else None
    return PreviewSlice(items, nxt, len(look.items), start, look.evaluated_at, fresh=looked.fresh)
