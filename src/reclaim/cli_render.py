"""Tables and summaries the decision commands print (``cli_decisions``); no logic here."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table

from reclaim.domain.case import Action
from reclaim.domain.plan import ItemStatus, Plan
from reclaim.services.cycle import CycleOutcome
from reclaim.services.decisions import PolicyVerdicts, verdict_row
from reclaim.services.runtime import StepReport


def verdict_rows(
    verdicts: Sequence[PolicyVerdicts], *, only_candidates: bool
) -> list[dict[str, Any]]:
    """One dict per member (or per candidate), policy by policy."""
    out = []
    for pv in verdicts:
        rows = pv.candidates() if only_candidates else list(pv.rows())
        rows.sort(key=lambda r: r.user)
        out += [verdict_row(pv.policy.name, r, window_days=pv.window_days) for r in rows]
    return out


def breakdown_line(pv: PolicyVerdicts) -> str:
    """``Visio: 120 members — in_use 80, unused 12, …`` (kinds with zero left out)."""
    parts = [f"{k} {n}" for k, n in pv.breakdown().items() if n]
    return f"{pv.policy.name}: {pv.group_size} members — " + (", ".join(parts) or "none")


def verdict_table(title: str, rows: Iterable[dict[str, Any]], *, limit: int | None = None) -> Table:
    """Members with their verdict, last use, minutes in the window and reason."""
    rows = list(rows)
    table = Table(
        "user", "verdict", "last used", "minutes", "reason", title=title, title_justify="left"
    )
    for r in rows[:limit]:
        minutes = r["minutes_in_window"]
        table.add_row(
            r["user"],
            r["verdict"],
            r["last_used"] or "never",
            "—" if minutes is None else f"{minutes:,.0f}",
            r["reason"],
        )
    if limit is not None and len(rows) > limit:
        table.caption = f"… and {len(rows) - limit} more"
    return table


def plan_lines(
    plan: Plan, *, plan_id: int | None = None, status: str | None = None, items: bool = True
) -> list[str]:
    """A plan as plain lines: per policy, who would be asked and removed, and savings
    (``items=False``: the counts only, not one line per person)."""
    head = f"Plan #{plan_id}" if plan_id is not None else "Plan"
    lines = [
        f"{head} as of {plan.as_of}"
        + (f" — {status.replace('_', ' ')}" if status else "")
        + (" — KILL SWITCH ON: no removal will happen" if plan.paused else "")
    ]
    for p in plan.policies:
        asks = [i for i in p.items if i.action is Action.ASK and i.status is ItemStatus.PLANNED]
        removals = [i for i in p.items if i.action is Action.REMOVE]
        counts = Counter(i.status for i in removals)
        save = p.savings()
        lines.append(
            f"{p.policy}: {len(asks)} to ask, {counts.get(ItemStatus.PLANNED, 0)} to remove now "
            f"(cap {p.cap} of {p.group_size} members"
            + (", approval required" if p.require_approval else "")
            + f") — saves {save.monthly:,.2f} {save.currency}/month, "
            f"{save.yearly:,.2f} {save.currency}/year"
            + (
                f"; up to {len(asks) * p.seat_cost.amount:,.2f} {save.currency}/month more "
                "if everyone asked releases"
                if asks
                else ""
            )
        )
        held = {s: n for s, n in counts.items() if s is not ItemStatus.PLANNED}
        held_asks = Counter(
            i.status
            for i in p.items
            if i.action is Action.ASK and i.status is not ItemStatus.PLANNED
        )
        if held or held_asks:
            lines.append(
                "  held back: "
                + ", ".join(
                    [f"{n} {s.value.replace('_', ' ')}" for s, n in held.items()]
                    + [f"{n} ask(s) {s.value.replace('_', ' ')}" for s, n in held_asks.items()]
                )
            )
        for i in p.items if items else ():
            if (
                i.status is ItemStatus.PLANNED
                or i.action is Action.REMOVE
                or i.status is ItemStatus.BLOCKED_GROUP
            ):
                verb = "ask" if i.action is Action.ASK else "remove"
                tag = "" if i.status is ItemStatus.PLANNED else f" [{i.status.value}]"
                lines.append(f"  {verb:6} {i.user} ({i.basis.value}){tag}: {i.reason}")
        lines += [f"  ! {a}" for a in p.alerts]
    for cur, s in plan.savings().items():
        lines.append(f"Total: {s.monthly:,.2f} {cur}/month, {s.yearly:,.2f} {cur}/year")
    return lines


def cycle_lines(outcome: CycleOutcome) -> list[str]:
    """What a cycle decided, in a few lines."""
    lines = [
        f"{outcome.policy}: opened {len(outcome.opened)} case(s), closed {len(outcome.closed)}, "
        f"allowed {outcome.authorized} step(s) (plan #{outcome.plan_id})"
        + (
            f", {outcome.awaiting_approval} removal(s) await approval"
            if outcome.awaiting_approval
            else ""
        )
    ]
    lines += [f"  closed {user}: {cause}" for user, cause in outcome.closed]
    if outcome.blocked:
        lines.append(f"  nobody asked or removed: {outcome.blocked}")
    return lines


def step_lines(reports: Sequence[StepReport]) -> list[str]:
    """One line per executed step, then a count per result."""
    lines = [
        f"  #{r.case_id} {r.user}: {r.step} → {r.result}" + (f" ({r.detail})" if r.detail else "")
        for r in reports
    ]
    counts = Counter(r.result for r in reports)
    if counts:
        lines.append("  " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return lines


def when(ts: int | None) -> str:
    """Epoch seconds as a short UTC time, or an em dash."""
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M")
