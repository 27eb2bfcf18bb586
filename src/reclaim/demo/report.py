"""What the demo prints as the simulated days go by: the sync, the verdicts, each plan
and its approval, the answers, and what the worker did."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

from reclaim.cli_render import plan_lines
from reclaim.demo.timeline import APPROVER, Day, Timeline
from reclaim.services.entra_sync import SyncReport

_WEEKDAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def print_sync(console: Console, reports: Sequence[SyncReport]) -> None:
    """``reclaim directory sync``: one line per group, then what is flagged."""
    total = sum(r.members for r in reports)
    console.print(
        f"[green]✓[/] directory sync (Graph, read-only): {len(reports)} license groups, "
        f"{total:,} members",
        highlight=False,
    )
    for r in reports:
        flags = [f for f, on in (("dynamic", r.dynamic), ("synced from AD", r.synced)) if on]
        direct = len(r.direct_license_users)
        console.print(
            f"    {r.policy}: {r.display_name!r} {r.members:,} members"
            + (f" [yellow]({', '.join(flags)})[/]" if flags else "")
            + (f", {direct} also licensed directly (kept on removal)" if direct else ""),
            highlight=False,
        )
    flagged = [(r.policy, w) for r in reports for w in r.warnings if r.dynamic or r.synced]
    if flagged:
        console.print(
            "  [yellow]flagged before any run[/] (the plan holds their people: nobody there "
            "is asked or removed):"
        )
        for policy, warning in flagged:
            console.print(f"    [yellow]![/] {policy}: {warning}", highlight=False)


class DayPrinter:
    """Called by the timeline after each simulated day."""

    def __init__(self, console: Console, timeline: Timeline) -> None:
        self.console = console
        self.timeline = timeline

    def __call__(self, day: Day) -> None:
        """Print what ``day`` did."""
        out = self.console
        if day.number == 0:
            print_sync(out, self.timeline.syncs)
            out.print("[bold]Verdicts[/] (reclaim candidates):")
            for c in day.cycles:
                parts = ", ".join(f"{k} {n}" for k, n in c.breakdown.items() if n)
                out.print(f"    {c.policy}: {parts}", highlight=False)
        if not day.busy() and day.number:
            return
        weekday = _WEEKDAY[day.date.weekday()]
        out.print(
            f"[bold]Day {day.number}[/] ({weekday} {day.date}, simulated in {day.seconds:.1f} s)",
            highlight=False,
        )
        if day.answers:
            answered = ", ".join(f"{n} {k}" for k, n in sorted(day.answers.items()))
            out.print(f"    answers from employees (simulated): {answered}", highlight=False)
        if day.left:
            left = f"{day.left} left license groups"
            out.print(f"    directory sync (delta): {left}", highlight=False)
        self._plans(day)
        if day.steps:
            done = ", ".join(f"{k} {n}" for k, n in sorted(day.steps.items()))
            out.print(f"    worker: {done}", highlight=False)
        for stop in day.stops:
            out.print(f"    [red]stopped:[/] {stop}", highlight=False)

    def _plans(self, day: Day) -> None:
        shown = 0
        for c in day.cycles:
            p = c.plan.policies[0] if c.plan.policies else None
            if p is None or not p.items:
                continue
            line = plan_lines(c.plan, items=False)[1:]
            text = "; ".join(x.strip() for x in line if not x.startswith("Total"))
            self.console.print(f"    plan #{c.plan_id} {text}", highlight=False, markup=False)
            shown += 1
        if day.approved:
            ids = ", ".join(f"#{i}" for i in day.approved)
            self.console.print(
                f"    [cyan]plans {ids} approved automatically[/] by {APPROVER!r} — a real "
                "deployment waits for an admin (reclaim plan approve ID)",
                highlight=False,
            )
        elif shown and day.number == 0:
            self.console.print("    asks need no approval; removals will", highlight=False)
