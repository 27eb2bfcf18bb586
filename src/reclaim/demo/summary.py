"""The demo's closing summary: seats reclaimed, savings and outcomes, read back from the
store, next to what the Graph server saw.

Figures come from the cases table (what Reclaim recorded) and from the server's request
log (what actually reached Entra ID), so the summary shows that they agree: one
successful ``DELETE .../members/{id}/$ref`` per reclaimed seat.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from rich.console import Console
from rich.table import Column, Table
from sqlalchemy import Connection, Engine, select

from reclaim.config import Settings
from reclaim.domain.case import OPEN, CaseState
from reclaim.store import cases as store
from reclaim.store.tables import plans
from reclaim.testing.graph import RequestLog


@dataclass
class ProductOutcome:
    """One product's cases, by how they ended."""

    policy: str
    members: int  # group members at the first sync
    seat_cost: Decimal
    currency: str
    cases: int = 0
    released: int = 0  # answered "release"
    kept: int = 0  # answered "keep"
    no_answer: int = 0  # never answered: the policy's default applied
    kept_by_default: int = 0  # never answered, and the default is to keep
    removed: int = 0
    failed: int = 0
    cancelled: int = 0
    still_open: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # reason → cases
    held: int = 0  # candidates the last plan held: the group cannot be written
    held_because: str = ""  # that plan's alert: why, and what to change

    @property
    def monthly(self) -> Decimal:
        """What the reclaimed seats cost per month (and so save)."""
        return self.seat_cost * self.removed

    @property
    def yearly(self) -> Decimal:
        """Twelve months of :attr:`monthly`."""
        return self.monthly * 12


@dataclass
class Summary:
    """Every product's outcome and the Graph server's count of membership removals."""

    products: list[ProductOutcome]
    deletes_ok: int  # successful DELETE /groups/{g}/members/{u}/$ref the server answered
    deletes_failed: int  # DELETE .../$ref answered with an error
    user_deletes: int  # DELETE without /$ref (would delete the object): must stay 0
    graph_requests: int

    @property
    def removed(self) -> int:
        """Seats reclaimed, all products."""
        return sum(p.removed for p in self.products)

    def total(self, currency: str = "USD") -> tuple[Decimal, Decimal]:
        """(monthly, yearly) savings in one currency."""
        monthly = sum((p.monthly for p in self.products if p.currency == currency), Decimal(0))
        return monthly, monthly * 12


def _entered(stored: store.StoredCase, cause: str, state: CaseState | None = None) -> bool:
    return any(
        e.cause == cause and (state is None or e.to_state is state) for e in stored.case.history
    )


def summarize(
    engine: Engine, settings: Settings, *, members: dict[str, int], requests: RequestLog
) -> Summary:
    """Read every case back and count what the Graph server saw."""
    products = {
        p.name: ProductOutcome(
            p.name, members.get(p.name, 0), p.seat_cost.amount, p.seat_cost.currency
        )
        for p in settings.policies
    }
    with engine.connect() as conn:
        found = store.find_cases(conn)
        _held(conn, products)
    for stored in found:
        case = stored.case
        row = products[case.policy]
        row.cases += 1
        if case.state is CaseState.ANSWERED_KEEP:
            row.kept += 1
        elif _entered(stored, "answered", CaseState.ANSWERED_RELEASE):
            row.released += 1
        if _entered(stored, "no_response"):
            row.no_answer += 1
            row.kept_by_default += case.state is CaseState.NO_RESPONSE
        if case.state is CaseState.REMOVED:
            row.removed += 1
        elif case.state is CaseState.FAILED:
            row.failed += 1
            row.failures[stored.last_error or "no reason recorded"] += 1
        elif case.state is CaseState.CANCELLED:
            row.cancelled += 1
        elif case.state in OPEN:
            row.still_open += 1
    return Summary(
        products=list(products.values()),
        deletes_ok=len(requests.removals(ok=True)),
        deletes_failed=len(requests.removals(ok=False)),
        user_deletes=len(requests.refused_user_deletes()),
        graph_requests=len(requests.all()),
    )


def _held(conn: Connection, products: dict[str, ProductOutcome]) -> None:
    """From every run plan: the people held because the group cannot be written
    (synced from on-prem AD, dynamic) - each counted once - and the plan's alert."""
    held: dict[str, set[str]] = {}
    rows = conn.execute(select(plans.c.content).where(plans.c.kind == "run").order_by(plans.c.id))
    for (content,) in rows:
        for part in json.loads(content)["policies"]:
            row = products.get(part["policy"])
            users = {i["user"] for i in part["items"] if i["status"] == "blocked_group"}
            if row is None or not users:
                continue
            held.setdefault(row.policy, set()).update(users)
            row.held = len(held[row.policy])
            row.held_because = next(
                (a for a in part["alerts"] if "nobody is asked or removed" in a), ""
            )


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def print_summary(console: Console, summary: Summary) -> None:
    """The summary table, the reasons for failures and the Graph server's count."""
    currency = summary.products[0].currency if summary.products else "USD"
    table = Table(
        Column("product", no_wrap=True),
        "members",
        "asked",
        "released",
        "kept",
        "no answer",
        "removed",
        "failed",
        Column(f"{currency} / month", justify="right"),
        Column(f"{currency} / year", justify="right"),
        title="Seats reclaimed",
        title_justify="left",
    )
    for p in summary.products:
        table.add_row(
            p.policy,
            f"{p.members:,}",
            f"{p.cases:,}",
            str(p.released),
            str(p.kept),
            str(p.no_answer),
            f"[bold]{p.removed}[/]",
            f"[red]{p.failed}[/]" if p.failed else "0",
            f"{p.monthly:,.2f}",
            f"{p.yearly:,.2f}",
        )
    monthly, yearly = summary.total(currency)
    table.add_section()
    table.add_row(
        "total",
        f"{sum(p.members for p in summary.products):,}",
        f"{sum(p.cases for p in summary.products):,}",
        str(sum(p.released for p in summary.products)),
        str(sum(p.kept for p in summary.products)),
        str(sum(p.no_answer for p in summary.products)),
        f"[bold]{summary.removed}[/]",
        str(sum(p.failed for p in summary.products)),
        f"{monthly:,.2f}",
        f"{yearly:,.2f}",
    )
    # Piped output has no width to fit: keep the table whole rather than wrap its cells.
    wide = console if console.is_terminal else Console(file=console.file, width=120)
    wide.print(table)
    silent = sum(p.no_answer for p in summary.products)
    if silent:
        kept = sum(p.kept_by_default for p in summary.products)
        console.print(
            f"No answer within the response time: {silent} cases, the policy's default applied "
            f"({silent - kept} released, {kept} kept).",
            highlight=False,
        )
    for p in summary.products:
        for reason, n in p.failures.most_common():
            console.print(f"  [red]failed[/] {p.policy} ({n}): {reason}", highlight=False)
        if p.cancelled:
            console.print(f"  cancelled {p.policy}: {p.cancelled}", highlight=False)
        if p.held:
            console.print(
                f"  [yellow]held[/] {p.policy}: {p.held} candidate(s) never asked: "
                f"{p.held_because}",
                highlight=False,
            )
        if p.still_open:
            console.print(
                f"  still open {p.policy}: {p.still_open} (see its plan: a cap or the "
                "mass-removal guard holds them until an admin acts)",
                highlight=False,
            )
    console.print(
        f"Seats reclaimed: {summary.removed}; the Graph server saw {summary.deletes_ok} "
        f"successful DELETE /groups/{{id}}/members/{{id}}/$ref"
        + (f" ({summary.deletes_failed} refused)" if summary.deletes_failed else "")
        + f" in {summary.graph_requests:,} requests, and {summary.user_deletes} user deletes.",
        highlight=False,
    )
    console.print(
        f"Savings: {_money(monthly, currency)} per month, {_money(yearly, currency)} per year.",
        highlight=False,
    )
